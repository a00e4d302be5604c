"""The prompts waiting for the worker's ``Accepted``: pure bookkeeping, no I/O, unit-tested.

Prompts go to the worker one at a time, oldest first (stop-and-wait): a later post is never
sent while an earlier one is unaccepted, so it cannot overtake one whose frame was lost in a
dying worker's pipe and reach claude first (answers keep the posts' order). The service
sends what :meth:`PromptQueue.due` returns. Commands (:class:`protocol.Command`) travel in the
same queue: they are posts of the thread too, acknowledged the same way.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from protocol import Command, FileRequest, Prompt

    Request = Prompt | Command | FileRequest  # what waits for Accepted

__all__ = ["LRU_SIZE", "Lru", "PromptQueue"]

LRU_SIZE = 2048


class Lru(OrderedDict[str, tuple[str, ...]]):
    """A bounded map (oldest evicted) of post id → reply ids (or ``()``)."""

    def remember(self, key: str, value: tuple[str, ...] = ()) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > LRU_SIZE:
            self.popitem(last=False)


@dataclass
class _Pending:
    prompt: Request | None  # None: reserved, its attachments are still downloading
    create_at: int
    sent_at: float | None = None  # monotonic time of the last send; None: due at once
    sends: int = 0


class PromptQueue:
    """Unaccepted prompts in ``(create_at, post_id)`` order, and the recently accepted ids."""

    def __init__(self) -> None:
        self._pending: dict[str, _Pending] = {}
        self._order: list[tuple[int, str]] = []
        self.acked = Lru()

    def __len__(self) -> int:
        return len(self._pending)

    def __repr__(self) -> str:
        return f"<PromptQueue pending={len(self._pending)} acked={len(self.acked)}>"

    def __contains__(self, post_id: object) -> bool:
        return post_id in self._pending

    def add(self, prompt: Request) -> bool:
        """Queue ``prompt``; False when it is already queued or was accepted recently.

        A reserved place (:meth:`reserve`) of the same post is filled instead."""
        entry = self._pending.get(prompt.post_id)
        if entry is not None and entry.prompt is None:
            entry.prompt = prompt
            return True
        if entry is not None or prompt.post_id in self.acked:
            return False
        self._pending[prompt.post_id] = _Pending(prompt, prompt.create_at)
        bisect.insort(self._order, (prompt.create_at, prompt.post_id))
        return True

    def reserve(self, post_id: str, create_at: int) -> bool:
        """Hold the place of a post whose attachments are being downloaded: nothing after it
        is sent before it is :meth:`add`-ed (so turns keep the posts' order). False when the
        post is already queued, reserved or accepted."""
        if post_id in self._pending or post_id in self.acked:
            return False
        self._pending[post_id] = _Pending(None, create_at)
        bisect.insort(self._order, (create_at, post_id))
        return True

    def release(self, post_id: str) -> None:
        """Give up a reservation that will not be filled."""
        entry = self._pending.get(post_id)
        if entry is not None and entry.prompt is None:
            del self._pending[post_id]
            self._order.remove((entry.create_at, post_id))

    def head(self) -> Request | None:
        return self._pending[self._order[0][1]].prompt if self._order else None

    def due(self, now: float, resend_interval: float) -> tuple[Request, int] | None:
        """The head and its send count (1 = first send) if it was never sent or its last
        send is ``resend_interval`` old; the caller sends it (recorded as sent at ``now``)."""
        if not self._order:
            return None
        head = self._pending[self._order[0][1]]
        if head.prompt is None:
            return None  # still downloading its attachments: wait, and so does every later one
        if head.sent_at is not None and now - head.sent_at < resend_interval:
            return None
        head.sent_at = now
        head.sends += 1
        return head.prompt, head.sends

    def resend_now(self) -> None:
        """Make the head due at once (a new worker may lack it)."""
        if self._order:
            self._pending[self._order[0][1]].sent_at = None

    def accepted(self, post_id: str) -> Request | None:
        """Record the worker's ``Accepted``; the prompt it settles, if it was queued."""
        self.acked.remember(post_id)
        entry = self._pending.pop(post_id, None)
        if entry is None:
            return None
        self._order.remove((entry.create_at, post_id))
        return entry.prompt
