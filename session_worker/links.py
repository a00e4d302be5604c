"""The worker's links to the live gateways: one PUSH sender per gateway that said hello.

:class:`GatewayLinks` keeps a :class:`GatewayLink` per live gateway (a hello every second
keeps it alive; silence for :data:`EXPIRE_AFTER` or a bye forgets it). Not to be confused
with the gateway process itself (``gateway/``): this is the worker's side of the wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from protocol import GatewayHello, ProtocolError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "EXPIRE_AFTER",
    "MAX_GATEWAYS",
    "GatewayLink",
    "GatewayLinks",
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
class GatewayLink:
    gateway_id: str
    endpoint: str
    pid: int
    sender: SenderLike
    last_seen: float
    # An answer was moved away from it after re-sends without Delivered; cleared when it
    # delivers one (see session_worker.answer_delivery).
    stuck: bool = False

    def send(self, frame: bytes) -> bool:
        return self.sender.send(frame)


class GatewayLinks:
    """Live gateways by id, most recently seen last."""

    def __init__(self, connect: Callable[[str], SenderLike]) -> None:
        self._connect = connect
        self._by_id: dict[str, GatewayLink] = {}

    def hello(self, hello: GatewayHello, now: float) -> GatewayLink | None:
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
        gateway = GatewayLink(
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

    def get(self, gateway_id: str | None) -> GatewayLink | None:
        return None if gateway_id is None else self._by_id.get(gateway_id)

    def live(self) -> list[GatewayLink]:
        return sorted(self._by_id.values(), key=lambda g: g.last_seen, reverse=True)

    def close(self) -> None:
        for gateway_id in list(self._by_id):
            self.forget(gateway_id)

    def __len__(self) -> int:
        return len(self._by_id)
