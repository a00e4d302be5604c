"""The stream-json dialect of the ``claude`` CLI, as pure code: framing, the lines we write,
and the interpretation of the events of one turn.

Nothing here does I/O. :class:`LineSplitter` frames stdout chunks of any size into lines,
:func:`decode_line` turns one line into an event (or raises :class:`ChildProtocolError`),
:func:`route` says where an event goes (a reply to one of our control requests, a request of
the CLI that must be answered at once, or an event of the running turn), and
:class:`TurnInterpreter` collects one turn's answer. Facts about the protocol are in
``shared/docs/claude-stream-json.md``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from session_worker.errors import ChildProtocolError

__all__ = [
    "MAX_LINE",
    "NO_CONVERSATION",
    "OVERLONG",
    "ControlReply",
    "ControlRequestFromCli",
    "LineSplitter",
    "Overlong",
    "RequestSubtype",
    "TurnEvent",
    "TurnInterpreter",
    "TurnOutcome",
    "decode_line",
    "encode_control_request",
    "encode_control_response",
    "encode_refusal",
    "encode_user",
    "route",
    "says_no_conversation",
]

Event = Mapping[str, Any]

# What the CLI prints (result.errors and stderr) when ``--resume`` names an unknown session.
NO_CONVERSATION = "No conversation found with session ID"

_SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
MAX_UNKNOWN_TYPES = 32  # distinct unknown event types remembered per turn (to log once each)

# The event the stdout reader puts in place of a line over MAX_LINE (never a CLI type).
OVERLONG = "mmclaude_overlong_line"

# Every top-level type the CLI is known to print (claude-stream-json.md §3.1). A type not in
# here is still ignored, but logged once so that protocol drift is visible.
KNOWN_TYPES = frozenset(
    {
        "system",
        "assistant",
        "user",
        "result",
        "stream_event",
        "control_request",
        "control_response",
        "control_cancel_request",
        "keep_alive",
        "tool_progress",
        "command_lifecycle",
        "rate_limit_event",
        "auth_status",
        "tool_use_summary",
        "prompt_suggestion",
        "conversation_reset",
        "transcript_mirror",
    }
)


# --- framing ---------------------------------------------------------------------------------


# The longest stdout line we read (bytes). The recorded streams' longest line is ~18 KB (the
# initialize answer); tool results and images are the big ones: an image block is at most
# ~7 MB of base64 (the API's 5 MB per image), and the Agent SDK caps a message at 1 MB.
MAX_LINE = 16 * 1024 * 1024
OVERLONG_HEAD = 256  # bytes of an over-long line kept to tell what it was

_TYPE_AT_START = re.compile(rb'^\s*\{\s*"type"\s*:\s*"([A-Za-z0-9_]{1,64})"')


@dataclass(frozen=True)
class Overlong:
    """A line over the limit, skipped: its length and its first bytes (never the rest)."""

    size: int
    head: bytes

    @property
    def event_type(self) -> str:
        """The event's ``type`` when the line starts with it (the CLI writes it first)."""
        match = _TYPE_AT_START.match(self.head)
        return match.group(1).decode() if match else ""


class LineSplitter:
    """Frames a byte stream into lines of up to ``max_line`` bytes (a line may be megabytes).

    asyncio's ``readline`` refuses lines over its 64 KiB limit; this keeps the partial line
    itself up to ``max_line``. Past that it keeps only the first bytes and counts (never
    stores) the rest until the line ends, then yields an :class:`Overlong` in its place:
    memory stays bounded whatever the child writes.
    """

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self._parts: list[bytes] = []
        self._size = 0
        self._skipping: bytes | None = None  # the head of the over-long line being skipped

    def feed(self, chunk: bytes) -> list[bytes | Overlong]:
        """The complete lines ``chunk`` finishes, without their ``\\n``; blank lines dropped."""
        lines: list[bytes | Overlong] = []
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                break
            self._add(chunk[start:end])
            if self._skipping is not None:
                lines.append(Overlong(self._size, self._skipping))
            else:
                piece = b"".join(self._parts)
                if piece.strip():
                    lines.append(piece)
            self._reset()
            start = end + 1
        if start < len(chunk):
            self._add(chunk[start:])
        return lines

    def _add(self, piece: bytes) -> None:
        self._size += len(piece)
        if self._skipping is not None:
            return
        self._parts.append(piece)
        if self._size > self.max_line:
            head = b""
            for part in self._parts:  # not a join of it all: that would copy max_line bytes
                head += part[: OVERLONG_HEAD - len(head)]
                if len(head) >= OVERLONG_HEAD:
                    break
            self._skipping = head
            self._parts.clear()

    def _reset(self) -> None:
        self._parts.clear()
        self._size = 0
        self._skipping = None

    def pending(self) -> int:
        """Bytes of an unfinished line (at EOF: a truncated last line)."""
        return self._size

    def held(self) -> int:
        """Bytes kept in memory for the unfinished line (at most ``max_line`` + a chunk)."""
        return sum(len(p) for p in self._parts) + len(self._skipping or b"")


_decoder = msgspec.json.Decoder()


def decode_line(line: bytes) -> dict[str, Any]:
    """One stdout line as an event object; :class:`ChildProtocolError` if it is not one."""
    try:
        value = _decoder.decode(line)
    except msgspec.DecodeError as exc:
        raise ChildProtocolError(
            f"claude wrote a non-JSON line ({len(line)} bytes): {exc}"
        ) from exc
    except RecursionError:  # msgspec's answer to JSON nested past ~1000 levels
        raise ChildProtocolError(
            f"claude wrote a JSON line nested too deep ({len(line)} bytes)"
        ) from None
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise ChildProtocolError(
            f"claude wrote a JSON line that is not an event object ({len(line)} bytes)"
        )
    return value


# --- what we write on stdin --------------------------------------------------------------------
# Every line is a msgspec-encoded Struct: one malformed stdin line kills the CLI (§5.1).


class _UserContent(msgspec.Struct, frozen=True):
    content: str | list[dict[str, Any]]
    role: Literal["user"] = "user"


class _UserLine(msgspec.Struct, frozen=True, tag="user", tag_field="type"):
    message: _UserContent
    parent_tool_use_id: None = None


class _Request(msgspec.Struct, frozen=True, tag_field="subtype"):
    pass


class _Initialize(_Request, frozen=True, tag="initialize"):
    hooks: None = None


class _Interrupt(_Request, frozen=True, tag="interrupt"):
    pass


class _SetModel(_Request, frozen=True, tag="set_model"):
    model: str | None = None


class _SetPermissionMode(_Request, frozen=True, tag="set_permission_mode"):
    mode: str = "default"


class _ControlRequestLine(msgspec.Struct, frozen=True, tag="control_request", tag_field="type"):
    request_id: str
    request: _Initialize | _Interrupt | _SetModel | _SetPermissionMode


class _ErrorResponse(msgspec.Struct, frozen=True, tag="error", tag_field="subtype"):
    request_id: str
    error: str


class _Deny(msgspec.Struct, frozen=True):
    message: str
    behavior: Literal["deny"] = "deny"


class _DenyResponse(msgspec.Struct, frozen=True, tag="success", tag_field="subtype"):
    request_id: str
    response: _Deny


class _BodyResponse(msgspec.Struct, frozen=True, tag="success", tag_field="subtype"):
    request_id: str
    response: dict[str, Any]


class _ControlResponseLine(msgspec.Struct, frozen=True, tag="control_response", tag_field="type"):
    response: _ErrorResponse | _DenyResponse | _BodyResponse


_encoder = msgspec.json.Encoder()


def encode_user(text: str, images: list[dict[str, Any]] | None = None) -> bytes:
    """The stdin line carrying one user message (the post text as is); with ``images``
    (base64 ``image`` content blocks) the content is a list: the text block, then them."""
    content: str | list[dict[str, Any]] = text
    if images:
        content = [{"type": "text", "text": text}, *images]
    return _encoder.encode(_UserLine(message=_UserContent(content=content))) + b"\n"


RequestSubtype = Literal["initialize", "interrupt", "set_model", "set_permission_mode"]


def encode_control_request(request_id: str, subtype: RequestSubtype, value: str = "") -> bytes:
    """The stdin line of one of our control requests (``value``: the model or the mode)."""
    request: _Initialize | _Interrupt | _SetModel | _SetPermissionMode
    if subtype == "initialize":
        request = _Initialize()
    elif subtype == "interrupt":
        request = _Interrupt()
    elif subtype == "set_model":
        request = _SetModel(model=value or None)
    else:
        request = _SetPermissionMode(mode=value)
    line = _ControlRequestLine(request_id=request_id, request=request)
    return _encoder.encode(line) + b"\n"


def encode_control_response(request_id: str, body: dict[str, Any]) -> bytes:
    """Our answer to the CLI's ``can_use_tool`` request ``request_id`` (§2.3)."""
    line = _ControlResponseLine(response=_BodyResponse(request_id=request_id, response=body))
    return _encoder.encode(line) + b"\n"


REFUSAL = "mmclaude answers no interactive requests; configure permissions with CLAUDE_ARGS"


def encode_refusal(request_id: str, subtype: str) -> bytes:
    """The answer to a control request of the CLI: deny a tool, refuse anything else.

    The CLI waits for an answer, so every request gets one at once (§2.3).
    """
    response: _ErrorResponse | _DenyResponse
    if subtype == "can_use_tool":
        response = _DenyResponse(request_id=request_id, response=_Deny(message=REFUSAL))
    else:
        response = _ErrorResponse(request_id=request_id, error=REFUSAL)
    return _encoder.encode(_ControlResponseLine(response=response)) + b"\n"


# --- routing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ControlReply:
    """The CLI answered our control request ``request_id``."""

    request_id: str
    ok: bool
    body: Mapping[str, Any]
    error: str = ""


@dataclass(frozen=True)
class ControlRequestFromCli:
    """The CLI asks us something (``can_use_tool``…): send ``reply`` right away."""

    request_id: str
    subtype: str
    reply: bytes


@dataclass(frozen=True)
class TurnEvent:
    """Anything else: an event for the turn interpreter (or ignorable noise while idle)."""

    event: Event


def route(event: Event) -> ControlReply | ControlRequestFromCli | TurnEvent | None:
    """Where one decoded event goes; ``None`` for control noise (cancel requests, keep-alives)."""
    kind = event.get("type")
    if kind == "control_response":
        response = event.get("response")
        if not isinstance(response, Mapping):
            return None
        body = response.get("response")
        return ControlReply(
            request_id=str(response.get("request_id", "")),
            ok=response.get("subtype") == "success",
            body=body if isinstance(body, Mapping) else {},
            error=str(response.get("error", "")),
        )
    if kind == "control_request":
        request = event.get("request")
        subtype = str(request.get("subtype", "")) if isinstance(request, Mapping) else ""
        request_id = str(event.get("request_id", ""))
        if subtype == "can_use_tool" and request_id:
            return TurnEvent(event)  # asks the user: the turn's runner answers it
        return ControlRequestFromCli(request_id, subtype, encode_refusal(request_id, subtype))
    if kind == "control_cancel_request":
        return TurnEvent(event)  # withdraws a can_use_tool: the runner marks it
    if kind == "keep_alive":
        return None
    return TurnEvent(event)


# --- one turn ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TurnOutcome:
    """How a turn ended, from its ``result`` event.

    ``text`` is ``result.result`` when the CLI gave one (success, and API errors, which are
    ``success`` with ``is_error``), else what the assistant wrote during the turn.
    ``interrupted`` marks the result of an interrupt (``error_during_execution``).
    """

    text: str
    is_error: bool
    subtype: str
    session_id: str | None
    errors: tuple[str, ...] = ()
    skipped: tuple[int, ...] = ()  # sizes of over-long lines skipped during the turn

    @property
    def interrupted(self) -> bool:
        return self.subtype == "error_during_execution"

    @property
    def no_conversation(self) -> bool:
        """The CLI refused ``--resume``: it does not know the session."""
        return says_no_conversation(self.errors)


def says_no_conversation(errors: object) -> bool:
    """A result's ``errors`` say the CLI refused ``--resume``: it does not know the session.

    The one rule, for the interpreted outcome and for the child's reader (which sees the
    startup result of a refused resume before any turn listens).
    """
    return isinstance(errors, list | tuple) and any(NO_CONVERSATION in str(e) for e in errors)


@dataclass
class TurnInterpreter:
    """Feed the events of one turn in order; :meth:`feed` returns the outcome at ``result``.

    It also learns the session id (``system/init``, every turn) and the event types it does
    not know (``unknown_types``, for the caller to log once each).
    """

    session_id: str | None = None
    unknown_types: set[str] = field(default_factory=set)
    skipped: list[int] = field(default_factory=list)
    _texts: list[str] = field(default_factory=list)

    def feed(self, event: Event) -> TurnOutcome | None:
        kind = event.get("type")
        if kind == OVERLONG:
            size = event.get("size")
            self.skipped.append(size if isinstance(size, int) else 0)
            if event.get("event_type") == "result":
                # The turn's result itself was too long to read: the turn is over.
                return TurnOutcome(
                    text=self.partial_text,
                    is_error=True,
                    subtype=OVERLONG,
                    session_id=self.session_id,
                    skipped=tuple(self.skipped),
                )
            return None
        if kind == "system":
            if event.get("subtype") == "init":
                self._learn_session(event)
        elif kind == "assistant":
            self._collect(event)
        elif kind == "result":
            self._learn_session(event)
            return self._outcome(event)
        elif (not isinstance(kind, str) or kind not in KNOWN_TYPES) and len(
            self.unknown_types
        ) < MAX_UNKNOWN_TYPES:
            self.unknown_types.add(str(kind)[:64])
        return None

    @property
    def partial_text(self) -> str:
        """What the assistant wrote so far in this turn (for a turn that never ends)."""
        return "\n\n".join(self._texts)

    def _learn_session(self, event: Event) -> None:
        # The id goes into the journal and onto the next claude's command line (--resume):
        # only a plain token is taken (the CLI's are UUIDs).
        session_id = event.get("session_id")
        if isinstance(session_id, str) and _SESSION_ID.match(session_id):
            self.session_id = session_id

    def _collect(self, event: Event) -> None:
        # Sub-agent messages (parent_tool_use_id set) are not the answer to the user.
        if event.get("parent_tool_use_id") is not None:
            return
        message = event.get("message")
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, str):
            blocks: list[Any] = [{"type": "text", "text": content}]
        elif isinstance(content, list):
            blocks = content
        else:
            return
        text = "".join(
            str(b.get("text", ""))
            for b in blocks
            if isinstance(b, Mapping) and b.get("type") == "text"
        )
        if text:
            self._texts.append(text)

    def _outcome(self, event: Event) -> TurnOutcome:
        subtype = str(event.get("subtype", ""))
        result = event.get("result")
        text = result if isinstance(result, str) else self.partial_text
        errors = event.get("errors")
        return TurnOutcome(
            text=text,
            is_error=bool(event.get("is_error")) or subtype != "success",
            subtype=subtype,
            session_id=self.session_id,
            errors=tuple(str(e) for e in errors) if isinstance(errors, list) else (),
            skipped=tuple(self.skipped),
        )
