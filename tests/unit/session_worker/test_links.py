"""The worker's links to live gateways: hello, restart, expiry, the cap on their number."""

from __future__ import annotations

import pytest

from protocol import GatewayHello, ProtocolError
from session_worker.links import MAX_GATEWAYS, GatewayLinks


class FakeSender:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.frames: list[bytes] = []
        self.closed = False

    def send(self, frame: bytes) -> bool:
        self.frames.append(frame)
        return True

    def close(self) -> None:
        self.closed = True


def hello(gateway_id: str, pid: int = 1, endpoint: str = "ipc:///tmp/gw") -> GatewayHello:
    return GatewayHello(gateway_id=gateway_id, endpoint=endpoint, pid=pid)


def test_hello_welcomes_new_and_restarted_gateways_only() -> None:
    """A keepalive hello is quiet; a new id or a new pid/endpoint must be welcomed again."""
    senders: list[FakeSender] = []

    def connect(endpoint: str) -> FakeSender:
        senders.append(FakeSender(endpoint))
        return senders[-1]

    gateways = GatewayLinks(connect)
    assert gateways.hello(hello("g1"), 0.0) is not None
    assert gateways.hello(hello("g1"), 1.0) is None
    restarted = gateways.hello(hello("g1", pid=2), 2.0)
    assert restarted is not None
    assert senders[0].closed
    assert len(gateways) == 1


def test_silent_gateways_expire_and_bye_forgets() -> None:
    """No hello for five seconds, or a bye, closes the gateway's sender."""
    gateways = GatewayLinks(FakeSender)
    gateways.hello(hello("g1"), 0.0)
    gateways.hello(hello("g2"), 4.0)
    assert gateways.expire(5.5) == ["g1"]
    assert [g.gateway_id for g in gateways.live()] == ["g2"]
    assert gateways.forget("g2")
    assert not gateways.forget("g2")


def test_hellos_under_ever_new_ids_cannot_open_sockets_without_end() -> None:
    """Past MAX_GATEWAYS live gateways a new id is refused (no socket); known ones go on,
    and a place frees up when one expires."""
    senders: list[FakeSender] = []

    def connect(endpoint: str) -> FakeSender:
        senders.append(FakeSender(endpoint))
        return senders[-1]

    gateways = GatewayLinks(connect)
    for i in range(MAX_GATEWAYS):
        assert gateways.hello(hello(f"g{i}"), now=0.0) is not None
    for i in range(1000):
        with pytest.raises(ProtocolError, match="refused"):
            gateways.hello(hello(f"flood{i}"), now=1.0)
    assert len(senders) == len(gateways) == MAX_GATEWAYS
    assert gateways.hello(hello("g0"), now=1.0) is None  # a keepalive still works
    assert gateways.expire(now=5.5) == [f"g{i}" for i in range(1, MAX_GATEWAYS)]
    assert gateways.hello(hello("late"), now=6.0) is not None
