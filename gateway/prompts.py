"""The prompts waiting for the worker's ``Accepted``: pure bookkeeping, no I/O, unit-tested.

Prompts go to the worker one at a time, oldest first (stop-and-wait): a later post is never
sent while an earlier one is unaccepted, so it cannot overtake one whose frame was lost in a
dying worker's pipe and reach claude first (answers keep the posts' order). The service
sends what :meth:`PromptQueue.due` returns. Commands (:class:`protocol.Command`) travel in the
same queue: they are posts of the thread too, acknowledged the same way. ``PromptPump`` is
the sending: the queue's due head goes to the worker unless the pump is held (a catch-up is
owed: an older post may still turn up).
"""

from __future__ import annotations

import bisect
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loguru import logger

if TYPE_CHECKING:
    from collections.abc import Callable

    from protocol import Command, FileRequest, Prompt

    Request = Prompt | Command | FileRequest  # what waits for Accepted

__all__ = ["LRU_SIZE", "Lru", "PromptPump", "PromptQueue"]

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


class PromptPump:
    """Sends the queue's oldest unaccepted prompt when it is due (never sent, or unanswered
    for ``resend_interval``), unless ``held()`` (a catch-up is owed). Stop-and-wait."""

    def __init__(
        self,
        send: Callable[[Request], object],
        *,
        resend_interval: float,
        held: Callable[[], bool],
        gateway_id: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.queue = PromptQueue()
        self._send = send
        self._resend_interval = resend_interval
        self._held = held
        self._clock = clock
        self._log = logger.bind(gateway=gateway_id)

    def pump(self) -> None:
        if self._held():
            return  # an older post may still turn up: the catch-up pumps when it is done
        due = self.queue.due(self._clock(), self._resend_interval)
        if due is not None:
            prompt, sends = due
            self._send(prompt)
            self._log.debug("prompt.sent", post_id=prompt.post_id, sends=sends)

    def add(self, prompt: Request, via: str) -> None:
        """Queue ``prompt`` (ignored if its post is queued or accepted already) and pump."""
        if self.queue.add(prompt):
            self._log.debug(
                "prompt.queued",
                post_id=prompt.post_id,
                kind=type(prompt).__name__,
                via=via,
                queued=len(self.queue),
            )
            self.pump()

    def accepted(self, post_id: str) -> None:
        self.queue.accepted(post_id)
        self.pump()
