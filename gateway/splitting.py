"""Cutting an answer into thread posts (contract.md: 16383 runes per post) and putting the
parts back together: code fences stay balanced across parts, each part ends with ``(i/n)``.
Pure and linear in the text; unit-tested and fuzzed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["POST_LIMIT", "Fence", "open_fence", "reassemble", "split"]

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
