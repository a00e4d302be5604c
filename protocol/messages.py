"""Every message that crosses a ZeroMQ socket, as frozen tagged msgspec Structs.

One union per direction:

* :data:`ToWorker`: gateway → worker inbox;
* :data:`ToGateway`: worker → one gateway's own endpoint;
* :data:`ToSupervisor`: any child → the supervisor's heartbeat socket.

Schema evolution (msgspec rules): new fields get defaults, no field changes type, and a new
message type needs its receivers deployed first. ``PROTOCOL_VERSION`` travels in the hellos
(:class:`GatewayHello`, :class:`Welcome`) and is bumped on an incompatible change. Field types
carry their bounds (:mod:`protocol.limits`): the decoder refuses a frame with a value out of
them, so a hostile peer's frame is dropped whole.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from protocol.limits import (
    AnswerText,
    Count,
    Endpoint,
    GatewayId,
    MattermostId,
    MaybeMattermostId,
    Millis,
    Pid,
    PromptText,
    Seconds,
    ShortText,
)

__all__ = [
    "EMPTY_ANSWER",
    "PROTOCOL_VERSION",
    "Accepted",
    "Activity",
    "Answer",
    "ApprovalShow",
    "ApprovalShown",
    "Attachment",
    "BindThread",
    "Command",
    "Decision",
    "Delivered",
    "FileRequest",
    "GatewayBye",
    "GatewayHeartbeat",
    "GatewayHello",
    "OutFile",
    "Progress",
    "Prompt",
    "Role",
    "ToGateway",
    "ToSupervisor",
    "ToWorker",
    "Welcome",
    "WorkerHeartbeat",
]

PROTOCOL_VERSION = 1

# What an answer with no text says (Mattermost refuses an empty post): the worker puts it in
# the Answer, and a gateway given an empty Answer anyway posts the same words.
EMPTY_ANSWER = "(Claude finished this turn without writing any text.)"

Role = Literal["gateway", "worker"]


class _Message(msgspec.Struct, frozen=True, kw_only=True, tag=True, tag_field="type"):
    """Base of every wire message: frozen, keyword-only, tagged by class name."""


# --- gateway → worker ----------------------------------------------------------------------


class GatewayHello(_Message, frozen=True):
    """A gateway announces itself and the endpoint it listens on.

    Sent at start and then every second as a keepalive: the worker answers a hello from a
    gateway it does not know (or after its own restart) with :class:`Welcome` and re-sends the
    undelivered answers to it.
    """

    gateway_id: GatewayId
    endpoint: Endpoint
    pid: Pid
    protocol_version: Count = PROTOCOL_VERSION


class GatewayBye(_Message, frozen=True):
    """A gateway stops cleanly: the worker forgets it at once instead of timing it out."""

    gateway_id: GatewayId


class BindThread(_Message, frozen=True):
    """A gateway proposes the thread to serve (configured, or a root post it just made).

    The worker keeps the first binding it accepts (a configured thread replaces it) and
    answers with :class:`Welcome` carrying the thread actually bound, which may differ from
    the proposal.
    """

    gateway_id: GatewayId
    thread_id: MattermostId
    channel_id: MattermostId
    bind_token: ShortText = ""
    # True when the operator configured this thread (MATTERMOST_THREAD_ID): it replaces a
    # remembered binding instead of yielding to it.
    configured: bool = False
    # The thread's history: posts with create_at (ms) <= floor were there before the binding
    # and are never prompts. Kept with a new binding, ignored when one is already in force.
    floor: Millis = 0


class Attachment(msgspec.Struct, frozen=True, kw_only=True):
    """One file of a prompt, downloaded by the gateway (only it holds the token).

    ``skipped`` names why there are no bytes (too large, unreadable); ``name`` is the
    client's file name, untrusted: the worker sanitizes it before it touches the disk.
    """

    # Not bounded tighter than a sender can produce: a refused Prompt is re-sent forever.
    file_id: PromptText
    name: PromptText
    size: int
    data: bytes = b""
    skipped: ShortText = ""


class Prompt(_Message, frozen=True):
    """An accepted-by-the-filter post of the thread, re-sent until :class:`Accepted`.

    ``attachments`` carry the post's files; the worker writes them to the workdir before it
    acknowledges, so a crash never loses or doubles them.
    """

    gateway_id: GatewayId
    post_id: MattermostId
    create_at: Millis
    user_id: MattermostId
    text: PromptText
    username: ShortText = ""
    attachments: tuple[Attachment, ...] = ()


class FileRequest(_Message, frozen=True):
    """``!file PATH`` from an allowed user: answered at once (not a turn), exactly once, with
    the file's bytes in the :class:`Answer`; re-sent until :class:`Accepted`."""

    gateway_id: GatewayId
    post_id: MattermostId
    create_at: Millis
    user_id: MattermostId
    path: PromptText
    username: ShortText = ""


class Delivered(_Message, frozen=True):
    """Every part of the answer to ``post_id`` is in the thread; ``reply_ids`` in order."""

    gateway_id: GatewayId
    post_id: MattermostId
    reply_ids: tuple[MattermostId, ...]


class Command(_Message, frozen=True):
    """An accepted post whose first word is a command (``!stop``…), re-sent until
    :class:`Accepted`. Its reply is an :class:`Answer` to ``post_id`` like any answer.

    ``name`` is the command without ``!`` (lower case), ``args`` the rest of the text.
    """

    gateway_id: GatewayId
    post_id: MattermostId
    create_at: Millis
    user_id: MattermostId
    name: ShortText
    args: PromptText = ""
    username: ShortText = ""


class Decision(_Message, frozen=True):
    """An allowed user decided the approval ``request_id`` with a reaction on its post.

    ``behavior`` is ``allow`` (once), ``always`` or ``deny``. The worker applies it only to
    that request and only while it is pending; a repeat changes nothing. Not acknowledged:
    the approval's next :class:`ApprovalShow` says what became of it.
    """

    gateway_id: GatewayId
    request_id: ShortText
    behavior: Literal["allow", "always", "deny"]
    user_id: MattermostId
    username: ShortText = ""


class ApprovalShown(_Message, frozen=True):
    """The approval post of ``request_id`` shows ``state`` (``post_id`` is that post)."""

    gateway_id: GatewayId
    request_id: ShortText
    state: ShortText
    post_id: MattermostId
    # The post's create_at (ms, the server's clock): !allow and the like reach only requests
    # whose post existed before the command was posted.
    post_create_at: Millis = 0


ToWorker = (
    GatewayHello
    | GatewayBye
    | BindThread
    | Prompt
    | Delivered
    | Command
    | Decision
    | ApprovalShown
    | FileRequest
)


# --- worker → gateway ----------------------------------------------------------------------


class Welcome(_Message, frozen=True):
    """The worker's answer to a hello or a binding: who it is and what thread it serves.

    ``thread_id`` is empty while no thread is bound; the gateway then binds one, creating the
    root post with ``bind_token`` (stable across restarts) so that a retry finds the post it
    already made instead of making a second one. ``catch_up_from`` is the ``create_at`` (ms)
    of the newest post in the journal: the gateway pages the thread from there.
    """

    worker_pid: Pid
    incarnation: ShortText
    thread_id: MaybeMattermostId
    channel_id: MaybeMattermostId
    bind_token: ShortText
    catch_up_from: Millis
    floor: Millis = 0  # the binding's floor (BindThread.floor): older posts are never prompts
    protocol_version: Count = PROTOCOL_VERSION


class Accepted(_Message, frozen=True):
    """``post_id`` is committed to the journal. ``first`` is false for a repeat."""

    post_id: MattermostId
    first: bool = True


class OutFile(msgspec.Struct, frozen=True, kw_only=True):
    """A file the answer carries (``!file``): the gateway uploads it and attaches it."""

    name: PromptText
    data: bytes


class Answer(_Message, frozen=True):
    """The answer to ``post_id``, re-sent until :class:`Delivered`.

    ``attempt`` counts sends: from 2 on, the gateway first looks in the thread for parts
    already posted. ``files`` are attached to the first part. ``activity`` is the one line
    the turn's activity post (if it has one) is reduced to once the answer is posted.
    """

    post_id: MattermostId
    create_at: Millis
    text: AnswerText
    is_error: bool = False
    attempt: Count = 1
    files: tuple[OutFile, ...] = ()
    activity: AnswerText = ""


class Progress(_Message, frozen=True):
    """A turn for ``post_id`` is running (about every few seconds): show typing."""

    post_id: MattermostId
    elapsed_s: Seconds = 0.0


class ApprovalShow(_Message, frozen=True):
    """Make the thread's post for approval ``request_id`` show ``text`` (re-sent until
    :class:`ApprovalShown` with the same ``state``).

    The gateway creates the post (``props.mmclaude_approval`` or ``props.mmclaude_question``
    = ``request_id``, ``pending_post_id`` derived from it) or finds it again by its props,
    and edits it when ``text`` differs. ``state`` is ``pending`` while it waits for a
    decision, then the outcome (``allowed``, ``always``, ``denied``, ``answered``,
    ``timeout``, ``withdrawn``, ``expired``). ``create_at`` is the prompt's (the post is
    newer), ``kind`` is ``approval`` or ``question``.
    """

    request_id: ShortText
    prompt_post_id: MattermostId
    create_at: Millis
    kind: Literal["approval", "question"]
    state: ShortText
    text: AnswerText


class Activity(_Message, frozen=True):
    """The running turn of ``post_id`` as a short human view (MMCLAUDE_LIVE), from 2 s of
    turn on, at most once a second; only the latest counts (``seq`` grows within one try of
    the turn), a lost one is superseded. Never acknowledged: the turn's end reaches the
    gateway as :attr:`Answer.activity`, which is re-sent until delivered.
    """

    post_id: MattermostId
    create_at: Millis
    text: AnswerText
    elapsed_s: Seconds = 0.0
    seq: Count = 0


ToGateway = Welcome | Accepted | Answer | Progress | ApprovalShow | Activity


# --- any child → supervisor ----------------------------------------------------------------


class WorkerHeartbeat(_Message, frozen=True):
    """The worker is alive; what the supervisor shows in ``status``."""

    pid: Pid
    claude_pid: Pid | None
    session_id: str | None  # claude's word, any length: a refused heartbeat kills the worker
    queue: Count
    thread_id: MaybeMattermostId
    claude_restarts: Count = 0
    state: ShortText = "running"
    model: str | None = None
    permission_mode: ShortText = "default"
    pending_approvals: Count = 0
    turns: Count = 0
    cost_usd: float = 0.0


class GatewayHeartbeat(_Message, frozen=True):
    """A gateway is alive."""

    pid: Pid
    gateway_id: GatewayId
    connected: bool
    thread_id: MaybeMattermostId = ""


ToSupervisor = WorkerHeartbeat | GatewayHeartbeat
