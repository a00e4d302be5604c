"""Every message that crosses a ZeroMQ socket, as frozen tagged msgspec Structs.

One union per direction:

* :data:`ToWorker`: gateway → worker inbox;
* :data:`ToGateway`: worker → one gateway's own endpoint;
* :data:`ToSupervisor`: any child → the supervisor's heartbeat socket.

Schema evolution (msgspec rules): new fields get defaults, no field changes type, and a new
message type needs its receivers deployed first. ``PROTOCOL_VERSION`` travels in the hellos
(:class:`GatewayHello`, :class:`Welcome`) and is bumped on an incompatible change.
"""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = [
    "PROTOCOL_VERSION",
    "Accepted",
    "Activity",
    "Answer",
    "Attachment",
    "BindThread",
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

    gateway_id: str
    endpoint: str
    pid: int
    protocol_version: int = PROTOCOL_VERSION


class GatewayBye(_Message, frozen=True):
    """A gateway stops cleanly: the worker forgets it at once instead of timing it out."""

    gateway_id: str


class BindThread(_Message, frozen=True):
    """A gateway proposes the thread to serve (configured, or a root post it just made).

    The worker keeps the first binding it accepts (a configured thread replaces it) and
    answers with :class:`Welcome` carrying the thread actually bound, which may differ from
    the proposal.
    """

    gateway_id: str
    thread_id: str
    channel_id: str
    bind_token: str = ""
    # True when the operator configured this thread (MATTERMOST_THREAD_ID): it replaces a
    # remembered binding instead of yielding to it.
    configured: bool = False


class Attachment(msgspec.Struct, frozen=True, kw_only=True):
    """One file of a prompt, downloaded by the gateway (only it holds the token).

    ``skipped`` names why there are no bytes (too large, unreadable); ``name`` is the
    client's file name, untrusted: the worker sanitizes it before it touches the disk.
    """

    file_id: str
    name: str
    size: int
    data: bytes = b""
    skipped: str = ""


class Prompt(_Message, frozen=True):
    """An accepted-by-the-filter post of the thread, re-sent until :class:`Accepted`.

    ``attachments`` carry the post's files; the worker writes them to the workdir before it
    acknowledges, so a crash never loses or doubles them.
    """

    gateway_id: str
    post_id: str
    create_at: int
    user_id: str
    text: str
    username: str = ""
    attachments: tuple[Attachment, ...] = ()


class FileRequest(_Message, frozen=True):
    """``!file PATH`` from an allowed user: answered at once (not a turn), exactly once, with
    the file's bytes in the :class:`Answer`; re-sent until :class:`Accepted`."""

    gateway_id: str
    post_id: str
    create_at: int
    user_id: str
    path: str
    username: str = ""


class Delivered(_Message, frozen=True):
    """Every part of the answer to ``post_id`` is in the thread; ``reply_ids`` in order."""

    gateway_id: str
    post_id: str
    reply_ids: tuple[str, ...]


ToWorker = GatewayHello | GatewayBye | BindThread | Prompt | Delivered | FileRequest


# --- worker → gateway ----------------------------------------------------------------------


class Welcome(_Message, frozen=True):
    """The worker's answer to a hello or a binding: who it is and what thread it serves.

    ``thread_id`` is empty while no thread is bound; the gateway then binds one, creating the
    root post with ``bind_token`` (stable across restarts) so that a retry finds the post it
    already made instead of making a second one. ``catch_up_from`` is the ``create_at`` (ms)
    of the newest post in the journal: the gateway pages the thread from there.
    """

    worker_pid: int
    incarnation: str
    thread_id: str
    channel_id: str
    bind_token: str
    catch_up_from: int
    protocol_version: int = PROTOCOL_VERSION


class Accepted(_Message, frozen=True):
    """``post_id`` is committed to the journal. ``first`` is false for a repeat."""

    post_id: str
    first: bool = True


class OutFile(msgspec.Struct, frozen=True, kw_only=True):
    """A file the answer carries (``!file``): the gateway uploads it and attaches it."""

    name: str
    data: bytes


class Answer(_Message, frozen=True):
    """The answer to ``post_id``, re-sent until :class:`Delivered`.

    ``attempt`` counts sends: from 2 on, the gateway first looks in the thread for parts
    already posted. ``files`` are attached to the first part. ``activity`` is the one line
    the turn's activity post (if it has one) is reduced to once the answer is posted.
    """

    post_id: str
    create_at: int
    text: str
    is_error: bool = False
    attempt: int = 1
    files: tuple[OutFile, ...] = ()
    activity: str = ""


class Progress(_Message, frozen=True):
    """A turn for ``post_id`` is running (about every few seconds): show typing."""

    post_id: str
    elapsed_s: float = 0.0


class Activity(_Message, frozen=True):
    """The running turn of ``post_id`` as a short human view (MMCLAUDE_LIVE), from 2 s of
    turn on, at most once a second; only the latest counts (``seq`` grows within one try of
    the turn), a lost one is superseded. Never acknowledged: the turn's end reaches the
    gateway as :attr:`Answer.activity`, which is re-sent until delivered.
    """

    post_id: str
    create_at: int
    text: str
    elapsed_s: float = 0.0
    seq: int = 0


ToGateway = Welcome | Accepted | Answer | Progress | Activity


# --- any child → supervisor ----------------------------------------------------------------


class WorkerHeartbeat(_Message, frozen=True):
    """The worker is alive; what the supervisor shows in ``status``."""

    pid: int
    claude_pid: int | None
    session_id: str | None
    queue: int
    thread_id: str
    claude_restarts: int = 0
    state: str = "running"


class GatewayHeartbeat(_Message, frozen=True):
    """A gateway is alive."""

    pid: int
    gateway_id: str
    connected: bool
    thread_id: str = ""


ToSupervisor = WorkerHeartbeat | GatewayHeartbeat
