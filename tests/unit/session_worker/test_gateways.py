"""Live gateways (hello, restart, expiry) and the outbox of undelivered answers."""

from __future__ import annotations

import pytest

from protocol import GatewayHello, ProtocolError
from session_worker.gateways import MAX_GATEWAYS, Gateways, Outbox
from session_worker.states import PromptRow, State


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


def answered(post_id: str, create_at: int) -> PromptRow:
    return PromptRow(
        post_id=post_id, create_at=create_at, user_id="u", username="a", text="q",
        gateway_id="g1", state=State.ANSWERED, answer=f"answer {post_id}",
    )  # fmt: skip


def test_hello_welcomes_new_and_restarted_gateways_only() -> None:
    """A keepalive hello is quiet; a new id or a new pid/endpoint must be welcomed again."""
    senders: list[FakeSender] = []

    def connect(endpoint: str) -> FakeSender:
        senders.append(FakeSender(endpoint))
        return senders[-1]

    gateways = Gateways(connect)
    assert gateways.hello(hello("g1"), 0.0) is not None
    assert gateways.hello(hello("g1"), 1.0) is None
    restarted = gateways.hello(hello("g1", pid=2), 2.0)
    assert restarted is not None
    assert senders[0].closed
    assert len(gateways) == 1


def test_silent_gateways_expire_and_bye_forgets() -> None:
    """No hello for five seconds, or a bye, closes the gateway's sender."""
    gateways = Gateways(FakeSender)
    gateways.hello(hello("g1"), 0.0)
    gateways.hello(hello("g2"), 4.0)
    assert gateways.expire(5.5) == ["g1"]
    assert [g.gateway_id for g in gateways.live()] == ["g2"]
    assert gateways.forget("g2")
    assert not gateways.forget("g2")


def test_outbox_keeps_journal_order_and_counts_attempts() -> None:
    """Answers come out in (create_at, post_id) order, each send one attempt more."""
    outbox = Outbox()
    outbox.add(answered("b", 2))
    outbox.add(answered("a", 2))
    outbox.add(answered("z", 1), attempt=2)
    assert [p.post_id for p in outbox.ordered()] == ["z", "a", "b"]
    first = outbox.ordered()[0]
    assert outbox.sent(first, now=10.0).attempt == 2
    assert outbox.sent(first, now=11.0).attempt == 3
    assert [p.post_id for p in outbox.due(now=11.5, interval=2.0)] == ["a", "b"]
    assert [p.post_id for p in outbox.due(now=13.0, interval=2.0)] == ["z", "a", "b"]
    assert outbox.remove("z")
    assert "z" not in outbox
    assert len(outbox) == 2


def test_outbox_order_survives_late_older_answers_and_removals() -> None:
    """In-order adds append; an older post answered late still comes out first."""
    outbox = Outbox()
    for post_id, create_at in [("c", 3), ("d", 4), ("a", 1)]:
        outbox.add(answered(post_id, create_at))
    assert outbox.remove("d")
    outbox.add(answered("b", 2))
    outbox.add(answered("e", 5))
    outbox.add(answered("c", 3), attempt=3)  # a re-add keeps its place
    assert [p.post_id for p in outbox.ordered()] == ["a", "b", "c", "e"]
    for post_id in ("a", "b", "c", "e"):
        outbox.remove(post_id)
    outbox.add(answered("z", 0))
    assert [p.post_id for p in outbox.ordered()] == ["z"]


def test_hellos_under_ever_new_ids_cannot_open_sockets_without_end() -> None:
    """Past MAX_GATEWAYS live gateways a new id is refused (no socket); known ones go on,
    and a place frees up when one expires."""
    senders: list[FakeSender] = []

    def connect(endpoint: str) -> FakeSender:
        senders.append(FakeSender(endpoint))
        return senders[-1]

    gateways = Gateways(connect)
    for i in range(MAX_GATEWAYS):
        assert gateways.hello(hello(f"g{i}"), now=0.0) is not None
    for i in range(1000):
        with pytest.raises(ProtocolError, match="refused"):
            gateways.hello(hello(f"flood{i}"), now=1.0)
    assert len(senders) == len(gateways) == MAX_GATEWAYS
    assert gateways.hello(hello("g0"), now=1.0) is None  # a keepalive still works
    assert gateways.expire(now=5.5) == [f"g{i}" for i in range(1, MAX_GATEWAYS)]
    assert gateways.hello(hello("late"), now=6.0) is not None
