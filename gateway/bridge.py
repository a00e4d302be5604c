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


def open_fence(text: str) -> Fence | None:
    """The code fence still open at the end of ``text`` (a last, partial line counts)."""
    fence: Fence | None = None
    for line in text.split("\n"):
        if fence is None:
            if len(line) <= MAX_FENCE_LINE:
                match = _FENCE_OPEN.fullmatch(line)
                if match and not (match[2][0] == "`" and "`" in match[3]):
                    fence = Fence(line, match[2])
        elif _closes(line, fence):
            fence = None
    return fence


def _marker(i: int, n: int) -> str:
    return f"\n\n({i}/{n})"


def _strip_added_close(prefix: str, body: str) -> str | None:
    """``body`` without the fence-closing line the splitter appended, or None if it has none.

    The splitter appends ``"\\n" + run`` exactly when a fence is open at the cut, so the close
    was added iff the body minus its last line leaves that very fence open.
    """
    cut = body.rfind("\n")
    if cut < 0:
        return None
    fence = open_fence(prefix + body[:cut])
    if fence is not None and fence.run == body[cut + 1 :]:
        return body[:cut]
    return None


def _choose_cut(text: str, pos: int, end: int) -> int:
    """The best cut in ``(pos, end]``: after a blank line, else a newline, else a space, in
    the second half of the window so that parts stay large; else a hard cut at ``end``."""
    floor = pos + (end - pos) // 2
    for sep in ("\n\n", "\n", " "):
        found = text.rfind(sep, floor, end)
        if found != -1:
            return found + len(sep)
    return end


def _settle(text: str, pos: int, end: int) -> tuple[int, str]:
    """The final cut and the closing line to add there (empty when no fence is open)."""
    while True:
        fence = open_fence(text[:end])
        if fence is not None:
            return end, "\n" + fence.run
        if _strip_added_close(text[:pos], text[pos:end]) is None:
            return end, ""
        # The text itself closes a fence right at the cut, which reassemble would take for
        # a close we added: cut one rune earlier, where that fence is still open.
        end -= 1
        assert end > pos  # a closing run is 3+ runes after a newline, so this stays in range


def _cut(text: str, budget: int) -> list[str]:
    bodies: list[str] = []
    pos = 0
    while True:
        fence = open_fence(text[:pos])
        reopen = "" if fence is None else fence.line + "\n"
        room = budget - len(reopen)
        if len(text) - pos <= room:
            bodies.append(reopen + text[pos:])
            return bodies
        end, close = _settle(text, pos, _choose_cut(text, pos, pos + room - _CLOSE_RESERVE))
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
    digits = 1
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
    out = ""
    for i, part in enumerate(parts, 1):
        marker = _marker(i, n)
        if not part.endswith(marker):
            raise ValueError(f"part {i} of {n} does not end with {marker.strip()!r}")
        body = part[: -len(marker)]
        fence = open_fence(out)
        if fence is not None:
            reopen = fence.line + "\n"
            if not body.startswith(reopen):
                raise ValueError(f"part {i} of {n} does not reopen the fence {fence.line!r}")
            body = body[len(reopen) :]
        if i < n:
            stripped = _strip_added_close(out, body)
            if stripped is not None:
                body = stripped
        out += body
    return out


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
