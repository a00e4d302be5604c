"""The gateways the worker knows, and the answers it still has to get delivered.

:class:`Gateways` keeps one PUSH sender per live gateway (a hello every second keeps it
alive; silence for :data:`EXPIRE_AFTER` or a bye forgets it). :class:`Outbox` is the pure
bookkeeping of undelivered answers: their order, their attempt numbers, when each is due
again and where it went last. Which gateway gets what is :mod:`session_worker.delivery`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from protocol import Answer, GatewayHello, OutFile, ProtocolError

if TYPE_CHECKING:
    from collections.abc import Callable

    from session_worker.states import PromptRow

__all__ = [
    "EXPIRE_AFTER",
    "MAX_GATEWAYS",
    "Gateway",
    "Gateways",
    "Outbox",
    "PendingAnswer",
    "SenderLike",
]

EXPIRE_AFTER = 5.0  # seconds without a hello: the gateway is gone (hellos come every ~1 s)
# Live gateways at most: each is a socket and gets every undelivered answer, so a peer that
# says hello under ever new ids must not open sockets without end. Scale-out uses a few.
MAX_GATEWAYS = 32


class SenderLike(Protocol):
    def send(self, frame: bytes) -> bool: ...
    def close(self) -> None: ...


@dataclass
class Gateway:
    gateway_id: str
    endpoint: str
    pid: int
    sender: SenderLike
    last_seen: float
    # An answer was moved away from it after re-sends without Delivered; cleared when it
    # delivers one (see session_worker.delivery).
    stuck: bool = False

    def send(self, frame: bytes) -> bool:
        return self.sender.send(frame)


class Gateways:
    """Live gateways by id, most recently seen last."""

    def __init__(self, connect: Callable[[str], SenderLike]) -> None:
        self._connect = connect
        self._by_id: dict[str, Gateway] = {}

    def hello(self, hello: GatewayHello, now: float) -> Gateway | None:
        """Record a hello; the gateway if it is new (or restarted) and must be welcomed.

        :class:`protocol.ProtocolError` for a new one past :data:`MAX_GATEWAYS` (the inbox
        logs it and drops the hello; a real gateway says hello again every second).
        """
        known = self._by_id.get(hello.gateway_id)
        if known is not None and (known.endpoint, known.pid) == (hello.endpoint, hello.pid):
            known.last_seen = now
            return None
        if known is None and len(self._by_id) >= MAX_GATEWAYS:
            raise ProtocolError(
                f"{MAX_GATEWAYS} gateways are live already; hello of {hello.gateway_id} refused"
            )
        if known is not None:
            known.sender.close()
        gateway = Gateway(
            hello.gateway_id, hello.endpoint, hello.pid, self._connect(hello.endpoint), now
        )
        self._by_id[hello.gateway_id] = gateway
        return gateway

    def forget(self, gateway_id: str) -> bool:
        gateway = self._by_id.pop(gateway_id, None)
        if gateway is not None:
            gateway.sender.close()
        return gateway is not None

    def expire(self, now: float, after: float = EXPIRE_AFTER) -> list[str]:
        """Forget every gateway silent for ``after`` seconds; their ids."""
        gone = [g.gateway_id for g in self._by_id.values() if now - g.last_seen > after]
        for gateway_id in gone:
            self.forget(gateway_id)
        return gone

    def get(self, gateway_id: str | None) -> Gateway | None:
        return None if gateway_id is None else self._by_id.get(gateway_id)

    def live(self) -> list[Gateway]:
        return sorted(self._by_id.values(), key=lambda g: g.last_seen, reverse=True)

    def close(self) -> None:
        for gateway_id in list(self._by_id):
            self.forget(gateway_id)

    def __len__(self) -> int:
        return len(self._by_id)


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


class Outbox:
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
        key = (row.create_at, row.post_id)
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
