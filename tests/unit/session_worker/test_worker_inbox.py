"""The worker's handling of gateway messages, driven without sockets: its senders record."""

from __future__ import annotations

from typing import TYPE_CHECKING

import protocol
from protocol import (
    Accepted,
    Answer,
    Delivered,
    GatewayBye,
    GatewayHello,
    Prompt,
    Welcome,
    WorkerHeartbeat,
)
from session_worker.config import WorkerConfig
from session_worker.states import PromptRow, State
from session_worker.testing import wire_id
from session_worker.worker import Worker

if TYPE_CHECKING:
    from pathlib import Path


class Recorder:
    """A gateway's sender that keeps the frames (a SenderLike)."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.closed = False

    def send(self, frame: bytes) -> bool:
        self.frames.append(frame)
        return True

    def close(self) -> None:
        self.closed = True

    def messages(self) -> list[protocol.ToGateway]:
        return [protocol.gateway_codec.decode(f) for f in self.frames]


P1 = wire_id("p1")  # the codec takes Mattermost-shaped ids only


class Rig:
    def __init__(self, tmp_path: Path) -> None:
        self.senders: dict[str, Recorder] = {}
        config = WorkerConfig(
            state_dir=str(tmp_path / "state"),
            claude_path="claude",
            claude_args=(),
            claude_workdir=str(tmp_path),
            endpoint="ipc:///nonexistent",
        )
        self.worker = Worker(config, connect=self._connect)

    def _connect(self, endpoint: str) -> Recorder:
        self.senders[endpoint] = Recorder()
        return self.senders[endpoint]

    def hello(self, gateway_id: str = "gw1", pid: int = 7) -> Recorder:
        endpoint = f"ipc:///run/{gateway_id}"
        self.worker._handle(GatewayHello(gateway_id=gateway_id, endpoint=endpoint, pid=pid), 1.0)
        return self.senders[endpoint]

    def prompt(self, post_id: str, gateway_id: str = "gw1") -> None:
        message = Prompt(
            gateway_id=gateway_id, post_id=post_id, create_at=1000, user_id="u1", text="hi"
        )
        self.worker._handle(message, 1.0)


def test_a_new_gateway_is_welcomed_once(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    sender = rig.hello()
    rig.hello()  # the keepalive of a known gateway
    welcomes = [m for m in sender.messages() if isinstance(m, Welcome)]
    assert len(welcomes) == 1
    assert welcomes[0].incarnation == rig.worker.incarnation


def test_a_prompt_is_journaled_then_acknowledged_once_first(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    sender = rig.hello()
    rig.prompt(P1)
    rig.prompt(P1)  # re-sent: the gateway did not see the first Accepted
    accepted = [m for m in sender.messages() if isinstance(m, Accepted)]
    assert [(a.post_id, a.first) for a in accepted] == [(P1, True), (P1, False)]
    row = rig.worker.journal.get(P1)
    assert row is not None
    assert row.state is State.QUEUED


def test_a_prompt_from_an_unknown_gateway_is_not_acknowledged(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.prompt(P1, gateway_id="nobody")
    assert rig.worker.journal.get(P1) is None


def test_an_answer_goes_out_until_delivered(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    sender = rig.hello()
    journal = rig.worker.journal
    journal.insert_answered(PromptRow(P1, 1000, "u1", "alice", "!x", "gw1"), "done")
    row = journal.get(P1)
    assert row is not None
    rig.worker._answered(row)
    answers = [m for m in sender.messages() if isinstance(m, Answer)]
    assert [(a.post_id, a.text, a.attempt) for a in answers] == [(P1, "done", 1)]
    rig.worker._handle(Delivered(gateway_id="gw1", post_id=P1, reply_ids=(wire_id("r1"),)), 2.0)
    delivered = journal.get(P1)
    assert delivered is not None
    assert delivered.state is State.DELIVERED
    assert len(rig.worker.outbox) == 0


def test_a_gateway_that_says_bye_is_closed(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    sender = rig.hello()
    rig.worker._handle(GatewayBye(gateway_id="gw1"), 2.0)
    assert sender.closed
    assert len(rig.worker.links) == 0


def test_an_undelivered_answer_is_sent_again_each_interval(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    sender = rig.hello()
    journal = rig.worker.journal
    journal.insert_answered(PromptRow(P1, 1000, "u1", "alice", "!x", "gw1"), "done")
    row = journal.get(P1)
    assert row is not None
    rig.worker.delivery.answered(row, 1.0)  # the hello was at 1.0: no expiry below
    interval = rig.worker.config.redeliver_interval
    rig.worker._tick(1.0 + interval / 2)  # not due yet
    rig.worker._tick(1.0 + interval)
    attempts = [m.attempt for m in sender.messages() if isinstance(m, Answer)]
    assert attempts == [1, 2]


def test_the_heartbeat_goes_out_once_a_second(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    heartbeat = Recorder()
    for now in (100.0, 100.5, 101.0, 101.2):
        rig.worker._tick(now, heartbeat)
    beats = [protocol.supervisor_codec.decode(f) for f in heartbeat.frames]
    assert len(beats) == 2
    assert all(isinstance(b, WorkerHeartbeat) for b in beats)
