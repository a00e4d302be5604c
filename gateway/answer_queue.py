"""Answers waiting to be posted, strictly one after the other: pure bookkeeping, unit-tested.

Contract: answers come in the order the posts were made. So when posting the head fails,
later answers wait behind it: the head is retried with backoff, and after
``FALLBACK_AFTER`` failures that retrying cannot fix (a 400 or 404 that a retry repeats) a
short fallback text is posted in its place, so that the thread never stalls forever on one
answer Mattermost refuses.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import msgspec

from protocol.backoff import Backoff

if TYPE_CHECKING:
    from gateway.errors import MattermostError
    from protocol import Answer

__all__ = ["FALLBACK_AFTER", "AnswerQueue", "fallback_text"]

FALLBACK_AFTER = 5


def fallback_text(error: MattermostError) -> str:
    reason = error.error_id or (f"HTTP {error.status}" if error.status else type(error).__name__)
    return f"⚠️ mmclaude could not post this answer: {reason}"


class AnswerQueue:
    """Answers in arrival order; only the head is ever being posted."""

    def __init__(self, backoff: Backoff | None = None) -> None:
        self._items: list[Answer] = []
        self._ready = asyncio.Event()
        self._backoff = backoff or Backoff(initial=1.0, cap=60.0)
        self.failures = 0
        self.last_error: MattermostError | None = None

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"<AnswerQueue answers={len(self._items)} failures={self.failures}>"

    def __contains__(self, post_id: object) -> bool:
        return any(a.post_id == post_id for a in self._items)

    def push(self, answer: Answer) -> bool:
        """Queue ``answer``; False when an answer to that post is already queued."""
        if answer.post_id in self:
            return False
        self._items.append(answer)
        self._ready.set()
        return True

    def head(self) -> Answer | None:
        """The answer to post next. After a failure it looks in the thread first (attempt
        ≥ 2): some of its parts may already be there."""
        if not self._items:
            return None
        answer = self._items[0]
        if self.failures and answer.attempt < 2:
            answer = msgspec.structs.replace(answer, attempt=2)
        return answer

    async def next(self) -> Answer:
        while True:
            head = self.head()
            if head is not None:
                return head
            self._ready.clear()
            await self._ready.wait()

    def fallback(self) -> str | None:
        """The text to post instead of the head, once it failed ``FALLBACK_AFTER`` times."""
        if self.failures >= FALLBACK_AFTER and self.last_error is not None:
            return fallback_text(self.last_error)
        return None

    def failed(self, error: MattermostError) -> float:
        """Record a failed try of the head; seconds to wait before the next one."""
        self.failures += 1
        self.last_error = error
        return self._backoff.next()

    def posted(self) -> Answer:
        """The head is in the thread: drop it and start afresh for the next one."""
        answer = self._items.pop(0)
        self.failures = 0
        self.last_error = None
        self._backoff.reset()
        return answer
