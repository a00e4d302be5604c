"""The answers the worker still has to get delivered: the pure bookkeeping of the outbox.

:class:`AnswerOutbox` keeps the undelivered answers in journal order with their attempt
numbers, when each is due again and where it went last. Which gateway gets what is
:mod:`session_worker.answer_delivery`. (The gateway process has an outbox of its own,
``gateway/``: the posts it still has to make.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from protocol import Answer, OutFile

if TYPE_CHECKING:
    from collections.abc import Callable

    from session_worker.states import PromptRow

__all__ = ["AnswerOutbox", "PendingAnswer"]


def _key(item: PendingAnswer) -> tuple[int, str]:
    return (item.create_at, item.post_id)


@dataclass
class PendingAnswer:
    """An answered, undelivered prompt; ``attempt`` is the number of its next send."""

    post_id: str
    create_at: int
    text: str
    is_error: bool
    gateway_id: str
    attempt: int = 1
    last_sent: float | None = None
    sent_to: str | None = None  # the gateway of the last send
    sends_there: int = 0  # consecutive sends to that gateway
    files: tuple[OutFile, ...] = ()
    activity: str = ""  # the summary line of the turn's activity post, if it had one

    def message(self) -> Answer:
        return Answer(
            post_id=self.post_id,
            create_at=self.create_at,
            text=self.text,
            is_error=self.is_error,
            attempt=self.attempt,
            files=self.files,
            activity=self.activity,
        )


class AnswerOutbox:
    """Undelivered answers in journal order (create_at, post_id).

    Kept ordered as they come (answers are produced in journal order, so an add is nearly
    always an append): :meth:`ordered` runs on every answer and every timer tick, and
    re-sorting the whole backlog there was the worker's hot spot with many undelivered.
    """

    def __init__(
        self,
        load_files: Callable[[str], tuple[OutFile, ...]] | None = None,
        load_activity: Callable[[str], str] | None = None,
    ) -> None:
        self._load_files = load_files  # the files an answer carries (!file), by post id
        self._load_activity = load_activity  # the activity summary line, by post id
        self._items: dict[str, PendingAnswer] = {}  # insertion order == journal order
        self._last: tuple[int, str] | None = None  # the order key of the last item

    def add(self, row: PromptRow, attempt: int = 1) -> PendingAnswer:
        assert row.answer is not None, "only answered rows go to the outbox"
        item = PendingAnswer(
            row.post_id, row.create_at, row.answer, row.is_error, row.gateway_id, attempt
        )
        if self._load_files is not None:
            item.files = self._load_files(row.post_id)
        if self._load_activity is not None:
            item.activity = self._load_activity(row.post_id)
        known = row.post_id in self._items
        self._items[row.post_id] = item
        key = row.order_key
        if not known and self._last is not None and key < self._last:
            # An older post answered late (caught up after a later one): re-sort, rarely.
            self._items = dict(sorted(self._items.items(), key=lambda kv: _key(kv[1])))
        if self._last is None or key > self._last:
            self._last = key
        return item

    def remove(self, post_id: str) -> bool:
        found = self._items.pop(post_id, None) is not None
        if not self._items:
            self._last = None
        return found

    def ordered(self) -> list[PendingAnswer]:
        return list(self._items.values())

    def due(self, now: float, interval: float) -> list[PendingAnswer]:
        """Never sent, or sent ``interval`` seconds ago without a Delivered: in order."""
        return [p for p in self.ordered() if p.last_sent is None or now - p.last_sent >= interval]

    def sent(self, item: PendingAnswer, now: float, gateway_id: str = "") -> Answer:
        """The message for this send to ``gateway_id``; the next one will be attempt + 1."""
        message = item.message()
        item.attempt += 1
        item.last_sent = now
        if gateway_id == item.sent_to:
            item.sends_there += 1
        else:
            item.sent_to, item.sends_there = gateway_id, 1
        return message

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, post_id: object) -> bool:
        return post_id in self._items
