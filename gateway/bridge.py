"""The gateway's pure decisions, without I/O: which posts are prompts, how an answer is cut
into posts and put back together, where a catch-up starts, what a WebSocket ``seq`` means,
and how long to wait before a retry. Everything here is synchronous and unit-tested.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from gateway.errors import (
    AuthError,
    ForbiddenError,
    MattermostError,
    PendingPostError,
    RateLimitedError,
    ServerError,
    TransportError,
)
from gateway.filtering import (  # re-exported: the filter used to live here
    Allowlist,
    build_allowlist,
    names_to_resolve,
    reject_reason,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from gateway.models import Post, PostList, WsFrame
    from protocol.backoff import Backoff

__all__ = [
    "POST_LIMIT",
    "Allowlist",
    "Fence",
    "WsCursor",
    "build_allowlist",
    "catchup_start",
    "names_to_resolve",
    "open_fence",
    "reassemble",
    "reject_reason",
    "retry_delay",
    "split",
    "thread_page",
]

# --- splitting answers (contract.md: 16383 runes per post) -----------------------------------

POST_LIMIT = 16383  # runes (code points): Mattermost's PostMessageMaxRunesV2
# Fences with a longer opening line are not closed/reopened: reopening them would eat the
# budget of the next part. Both split and reassemble use this same rule.
MAX_FENCE_LINE = 100
_CLOSE_RESERVE = MAX_FENCE_LINE + 1  # "\n" + the longest fence run we ever add
_MIN_LIMIT = 256

_FENCE_OPEN = re.compile(r"( {0,3})(`{3,}|~{3,})(.*)")


@dataclass(frozen=True)
class Fence:
    """An open code fence: its opening ``line`` as written and its ``run`` (e.g. ``````)."""

    line: str
    run: str


def _closes(line: str, fence: Fence) -> bool:
    body = line.rstrip(" \t\r")
    run = body.lstrip(" ")
    return (
        len(body) - len(run) <= 3 and len(run) >= len(fence.run) and run == fence.run[0] * len(run)
    )


def _opens(line: str) -> Fence | None:
    if len(line) <= MAX_FENCE_LINE:
        match = _FENCE_OPEN.fullmatch(line)
        if match and not (match[2][0] == "`" and "`" in match[3]):
            return Fence(line, match[2])
    return None


def _closes_at(text: str, start: int, end: int, fence: Fence) -> bool:
    """``_closes(text[start:end], fence)`` without copying a long line: only a line of
    spaces and fence characters can close, so anything else is refused at its first runes."""
    head = start
    while head < end and head - start < 4 and text[head] == " ":
        head += 1
    if head >= end or text[head] != fence.run[0]:
        return False
    return _closes(text[start:end], fence)


def _step(text: str, start: int, end: int, fence: Fence | None) -> Fence | None:
    """The fence state after the line ``text[start:end]`` (no newline in it)."""
    if fence is None:
        return _opens(text[start:end]) if end - start <= MAX_FENCE_LINE else None
    return None if _closes_at(text, start, end, fence) else fence


class _Fences:
    """The open fence at any position of one text, in time linear in the text overall.

    The state at the start of the current line (``line``) is kept, and the one at the start
    of the line last asked about (``_mark``): asking at a position scans forward from the
    nearest of these, so positions asked in increasing order (as the splitter does, with
    steps back inside the current window) cost about the text's length once.
    """

    def __init__(self, text: str, fence: Fence | None = None) -> None:
        self.text = text
        self.start = fence
        self.line = 0  # start of a line whose fence state is ``fence``
        self.fence = fence
        self._mark: tuple[int, Fence | None] = (0, fence)
        self.scanned = 0  # runes of complete lines stepped over (for tests of the cost)

    def _from(self, pos: int) -> tuple[int, Fence | None]:
        if pos < self.line:  # pragma: no cover - the splitter never asks behind itself
            self.line, self.fence = 0, self.start
            self._mark = (0, self.start)
        mark_line, mark_fence = self._mark
        if self.line <= mark_line <= pos:
            return mark_line, mark_fence
        return self.line, self.fence

    def _scan(self, line: int, fence: Fence | None, pos: int) -> tuple[int, Fence | None]:
        """Step over the complete lines from ``line`` up to the line holding ``pos``."""
        text = self.text
        while True:
            nl = text.find("\n", line, pos)
            if nl < 0:
                return line, fence
            fence = _step(text, line, nl, fence)
            self.scanned += nl + 1 - line
            line = nl + 1

    def advance(self, pos: int) -> None:
        """Move the kept state to the start of the line holding ``pos``."""
        self.line, self.fence = self._scan(*self._from(pos), pos)

    def at(self, pos: int) -> Fence | None:
        """``open_fence(text[:pos])``: the last, partial line counts."""
        line, fence = self._scan(*self._from(pos), pos)
        self._mark = (line, fence)
        return _step(self.text, line, pos, fence)


def open_fence(text: str) -> Fence | None:
    """The code fence still open at the end of ``text`` (a last, partial line counts)."""
    return _Fences(text).at(len(text))


def _marker(i: int, n: int) -> str:
    return f"\n\n({i}/{n})"


def _added_close(fences: _Fences, pos: int, end: int) -> bool:
    """True when ``text[pos:end]`` ends with a line the splitter would have added: the run of
    the fence open just before that line (so reassemble would take it for ours)."""
    text = fences.text
    end = len(text) if end < 0 else end
    cut = text.rfind("\n", pos, end)
    if cut < 0:
        return False
    fence = fences.at(cut + 1)  # an empty last line changes nothing: the state after cut
    run_len = end - cut - 1
    return fence is not None and len(fence.run) == run_len and text.startswith(fence.run, cut + 1)


def _choose_cut(text: str, pos: int, end: int) -> int:
    """The best cut in ``(pos, end]``: after a blank line, else a newline, else a space, in
    the second half of the window so that parts stay large; else a hard cut at ``end``."""
    floor = pos + (end - pos) // 2
    for sep in ("\n\n", "\n", " "):
        found = text.rfind(sep, floor, end)
        if found != -1:
            return found + len(sep)
    return end


def _settle(fences: _Fences, pos: int, end: int) -> tuple[int, str]:
    """The final cut and the closing line to add there (empty when no fence is open)."""
    while True:
        fence = fences.at(end)
        if fence is not None:
            return end, "\n" + fence.run
        if not _added_close(fences, pos, end):
            return end, ""
        # The text itself closes a fence right at the cut, which reassemble would take for
        # a close we added: cut one rune earlier, where that fence is still open.
        end -= 1
        assert end > pos  # a closing run is 3+ runes after a newline, so this stays in range


def _cut(text: str, budget: int, fences: _Fences | None = None) -> list[str]:
    fences = fences or _Fences(text)
    bodies: list[str] = []
    pos = 0
    while True:
        fences.advance(pos)
        fence = fences.at(pos)
        reopen = "" if fence is None else fence.line + "\n"
        room = budget - len(reopen)
        if len(text) - pos <= room:
            bodies.append(reopen + text[pos:])
            return bodies
        end, close = _settle(fences, pos, _choose_cut(text, pos, pos + room - _CLOSE_RESERVE))
        bodies.append(reopen + text[pos:end] + close)
        pos = end


def split(text: str, limit: int = POST_LIMIT) -> list[str]:
    """Cut ``text`` into posts of at most ``limit`` runes (Python ``len``: code points).

    One part is the text unchanged. With n > 1 parts, part i is: the opening line of the
    code fence open at its start (if any) and a newline; its slice of the text; a newline and
    the fence run if a fence is open at its end; then ``"\\n\\n(i/n)"``.
    """
    if limit < _MIN_LIMIT:
        raise ValueError(f"limit must be at least {_MIN_LIMIT} runes, got {limit}")
    if len(text) <= limit:
        return [text]
    # n parts hold at most ``limit`` runes each, so n has at least this many digits:
    # starting there skips passes that could only fail (the result is the same).
    digits = len(str(max(1, len(text) // limit)))
    while True:
        widest = 10**digits - 1
        bodies = _cut(text, limit - len(_marker(widest, widest)))
        n = len(bodies)
        if len(str(n)) <= digits:
            return [body + _marker(i, n) for i, body in enumerate(bodies, 1)]
        digits += 1  # pragma: no cover - needs 10+ parts (over 160 000 runes)


def reassemble(parts: Sequence[str]) -> str:
    """The text that :func:`split` cut into ``parts``: exactly what it added is removed."""
    n = len(parts)
    if n <= 1:
        return parts[0] if parts else ""
    out: list[str] = []
    # The text put back so far is scanned once: ``line_fence`` is the state at the start of
    # its last line, ``pending`` that (partial) line, ``fence`` the state at its end.
    line_fence: Fence | None = None
    pending = ""
    fence: Fence | None = None
    for i, part in enumerate(parts, 1):
        marker = _marker(i, n)
        if not part.endswith(marker):
            raise ValueError(f"part {i} of {n} does not end with {marker.strip()!r}")
        body = part[: -len(marker)]
        if fence is not None:
            reopen = fence.line + "\n"
            if not body.startswith(reopen):
                raise ValueError(f"part {i} of {n} does not reopen the fence {fence.line!r}")
            body = body[len(reopen) :]
        if i < n and _added_close(_Fences(pending + body, line_fence), len(pending), -1):
            body = body[: body.rfind("\n")]
        out.append(body)
        fences = _Fences(pending + body, line_fence)
        fence = fences.at(len(fences.text))
        fences.advance(len(fences.text))
        line_fence, pending = fences.fence, fences.text[fences.line :]
    return "".join(out)


# --- catch-up ----------------------------------------------------------------------------

# Events may have been lost, and a missed post can be older than one accepted after it:
# re-reading a minute costs a few repeats (the worker de-duplicates), missing one costs an
# answer.
CATCHUP_MARGIN_MS = 60_000


def catchup_start(catch_up_from: int, margin_ms: int = CATCHUP_MARGIN_MS) -> int:
    """The ``create_at`` (ms) from which to page the thread: the worker's newest post minus
    a generous margin (not this gateway's newest accepted post: an older post may have been
    missed while a newer one got through); 0 means from the start."""
    return max(0, catch_up_from - margin_ms) if catch_up_from > 0 else 0


def thread_page(page: PostList, thread_id: str) -> tuple[list[Post], tuple[int, str] | None]:
    """The replies of one thread page in ``(create_at, id)`` order, and the cursor after them.

    The thread endpoint puts the requested (root) post first on every page; it is dropped.
    """
    listed = set(page.order)
    posts = sorted(
        (p for pid, p in page.posts.items() if pid != thread_id and pid in listed),
        key=lambda p: (p.create_at, p.id),
    )
    cursor = (posts[-1].create_at, posts[-1].id) if posts else None
    return posts, cursor


# --- WebSocket sequence ------------------------------------------------------------------

WsStep = Literal["hello_new", "hello_same", "event", "duplicate", "gap", "response"]


@dataclass
class WsCursor:
    """Tracks ``connection_id`` and the next expected ``seq`` across reconnects."""

    connection_id: str = ""
    expected_seq: int = 0
    _last_gap: int | None = field(default=None, repr=False)

    def observe(self, frame: WsFrame) -> WsStep:
        """Classify a frame and advance: a ``gap`` means close and reconnect to get a replay."""
        if not frame.event:
            return "response"
        seq = frame.seq if frame.seq is not None else self.expected_seq
        if frame.event == "hello":
            data = frame.data or {}
            new_id = data.get("connection_id")
            new_id = new_id if isinstance(new_id, str) else ""
            fresh = new_id != self.connection_id or not new_id
            self.connection_id = new_id
            self.expected_seq = seq + 1
            self._last_gap = None
            return "hello_new" if fresh else "hello_same"
        if seq == self.expected_seq:
            self.expected_seq += 1
            self._last_gap = None
            return "event"
        if seq < self.expected_seq:
            return "duplicate"
        if self._last_gap == self.expected_seq:
            # The replay did not fill the same hole twice: give the connection up, so the
            # server starts a fresh one (new hello) and the REST catch-up covers the hole.
            self.connection_id = ""
            self.expected_seq = 0
            self._last_gap = None
        else:
            self._last_gap = self.expected_seq
        return "gap"


# --- backoff and retries -----------------------------------------------------------------


PENDING_RETRY_S = 0.25  # the duplicate create is still in flight on the server
FORBIDDEN_RETRY_S = 10.0  # the bot is not a member: an operator must add it; poll slowly


def retry_delay(error: MattermostError, backoff: Backoff) -> float | None:
    """Seconds to wait before retrying after ``error``, or None when retrying is pointless."""
    if isinstance(error, AuthError):
        return None
    if isinstance(error, RateLimitedError):
        return max(0.05, error.retry_after)
    if isinstance(error, PendingPostError):
        return PENDING_RETRY_S
    if isinstance(error, ServerError | TransportError):
        return backoff.next()
    if isinstance(error, ForbiddenError):
        return FORBIDDEN_RETRY_S
    return None
