"""Which gateway gets each answer: the asker, in order on one gateway, moved when stuck."""

from __future__ import annotations

from typing import Any

import msgspec

from protocol import Answer, GatewayHello
from session_worker.answer_delivery import REROUTE_AFTER, AnswerDelivery
from session_worker.answer_outbox import AnswerOutbox
from session_worker.links import GatewayLinks
from session_worker.states import PromptRow, State

INTERVAL = 2.0


class FakeSender:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.frames: list[bytes] = []

    def send(self, frame: bytes) -> bool:
        self.frames.append(frame)
        return True

    def close(self) -> None:
        pass


class Rig:
    def __init__(self, *gateway_ids: str) -> None:
        self.senders: dict[str, FakeSender] = {}
        self.gateways = GatewayLinks(self._connect)
        self.delivery = AnswerDelivery(self.gateways, AnswerOutbox(), INTERVAL)
        for gateway_id in gateway_ids:
            self.hello(gateway_id, 0.0)

    def _connect(self, endpoint: str) -> FakeSender:
        self.senders[endpoint] = FakeSender(endpoint)
        return self.senders[endpoint]

    def hello(self, gateway_id: str, now: float) -> None:
        hello = GatewayHello(gateway_id=gateway_id, endpoint=f"ipc:///{gateway_id}", pid=1)
        self.gateways.hello(hello, now)

    def answers(self, gateway_id: str) -> list[Answer]:
        frames = self.senders[f"ipc:///{gateway_id}"].frames
        # Read back without the wire checks (the short post ids here are not Mattermost ids).
        decoded: list[dict[str, Any]] = [msgspec.msgpack.decode(f) for f in frames]
        return [
            Answer(**{k: v for k, v in d.items() if k != "type"})
            for d in decoded
            if d["type"] == "Answer"
        ]

    def ticks(self, start: float, end: float, *keepalive: str) -> None:
        now = start
        while now <= end:
            for gateway_id in keepalive:
                self.hello(gateway_id, now)
            self.delivery.send_due(now)
            now += 0.5


def answered(post_id: str, create_at: int, asker: str = "g1") -> PromptRow:
    return PromptRow(
        post_id=post_id, create_at=create_at, user_id="u", username="a", text="q",
        gateway_id=asker, state=State.ANSWERED, answer=f"answer {post_id}",
    )  # fmt: skip


def test_answer_stuck_on_a_gateway_moves_with_the_later_ones_in_order() -> None:
    """Re-sent REROUTE_AFTER times to g1 without Delivered: a1 and a2 go to g2, in order,
    with attempt >= 2; g1 is avoided for new answers until it delivers again."""
    rig = Rig("g1", "g2")
    rig.delivery.answered(answered("a1", 1), 0.0)
    rig.delivery.answered(answered("a2", 2), 1.0)  # sticks with a1 on g1 (order)
    rig.ticks(1.0, 7.5, "g1", "g2")
    assert [a.post_id for a in rig.answers("g1")] == ["a1", "a2"] * (REROUTE_AFTER + 1)
    assert rig.answers("g2") == []
    rig.ticks(8.0, 8.0, "g1", "g2")  # a1's 4th re-send is due: it moves
    moved = rig.answers("g2")
    assert [(a.post_id, a.attempt) for a in moved] == [("a1", 5), ("a2", 5)]
    assert rig.delivery.target == "g2"
    rig.ticks(8.5, 11.5, "g1", "g2")  # now re-sent to g2 only
    assert len(rig.answers("g1")) == 2 * (REROUTE_AFTER + 1)
    for post_id in ("a1", "a2"):
        assert rig.delivery.delivered("g2", post_id)
    rig.delivery.answered(answered("a3", 3, asker="g1"), 12.0)
    assert rig.answers("g2")[-1].post_id == "a3"  # the asker g1 is avoided now
    rig.delivery.delivered("g1", "a3")  # g1 posts again (a re-delivery of its own)
    rig.delivery.answered(answered("a4", 4, asker="g1"), 13.0)
    assert rig.answers("g1")[-1].post_id == "a4"


def test_with_one_gateway_the_answer_stays_there() -> None:
    """Nowhere else to go: keep re-sending to the only gateway."""
    rig = Rig("g1")
    rig.delivery.answered(answered("a1", 1), 0.0)
    rig.ticks(0.5, 20.0, "g1")
    assert len(rig.answers("g1")) == 11
    assert rig.delivery.target == "g1"


def test_a_new_answer_goes_to_the_asker_and_progress_follows_it() -> None:
    """With nothing pending the answer goes to the gateway that asked."""
    rig = Rig("g1", "g2")
    rig.delivery.answered(answered("a1", 1, asker="g2"), 0.0)
    assert [a.post_id for a in rig.answers("g2")] == ["a1"]
    assert rig.answers("g1") == []
    gateway = rig.delivery.progress_gateway(answered("a2", 2, asker="gone"))
    assert gateway is not None
    assert gateway.gateway_id == "g2"
