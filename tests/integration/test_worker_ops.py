"""The session worker's operational guarantees, as a real process driven over its sockets.

One worker per state dir, an operator-configured thread replacing the remembered one,
prompts that kill the worker itself bounded by max_tries, and answers moved off a gateway
that cannot deliver them. The rig is the one of ``test_worker.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING

import pytest

import protocol
from protocol import Welcome
from session_worker.answer_delivery import REROUTE_AFTER
from session_worker.journal import Journal
from session_worker.states import PromptRow
from session_worker.testing import wire_id
from tests.integration.test_worker import WorkerRig, answer_of, welcomed

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from session_worker.testing import FakeGateway
    from tests.support import ProcessGroup

pytestmark = pytest.mark.slow


@pytest.fixture
def rig(short_tmp: Path, procs: ProcessGroup) -> WorkerRig:
    return WorkerRig(short_tmp, procs)


def test_a_second_worker_on_the_same_state_dir_exits_1(rig: WorkerRig) -> None:
    """worker.lock: a second worker says who holds the state dir and exits 1; the first
    goes on answering."""
    first = rig.start()

    async def scenario() -> None:
        with rig.gateway() as gw:
            await welcomed(gw)
            second_log = rig.dir / "second.log"
            second = rig.start(log=second_log)
            assert second.wait(timeout=10) == 1
            lines = second_log.read_text().splitlines()
            records = [json.loads(line) for line in lines]
            assert [(r["message"], r.get("error")) for r in records] == [
                (
                    "worker.not_started",
                    f"another worker is running on this state dir (pid {first.pid})",
                )
            ]
            gw.prompt("p1", "still there?")
            assert (await answer_of(gw, "p1")).text == "echo[1]: still there?"

    asyncio.run(scenario())
    assert first.poll() is None
    rig.proc = first
    assert rig.stop() == 0


def test_a_configured_thread_replaces_the_bound_one(rig: WorkerRig) -> None:
    """BindThread(configured=True) rebinds (warning thread.rebound) and every gateway gets a
    Welcome with the new thread; an unconfigured proposal still yields to the binding."""
    rig.start()

    def bind(gw: FakeGateway, thread_id: str, configured: bool) -> None:
        message = protocol.BindThread(
            gateway_id=gw.gateway_id, thread_id=wire_id(thread_id),
            channel_id=wire_id("c-" + thread_id),
            configured=configured,
        )  # fmt: skip
        gw.send_raw(protocol.encode(message))

    def bound_to(thread_id: str) -> Callable[[FakeGateway], list[Welcome]]:
        return lambda g: [w for w in g.welcomes() if w.thread_id == wire_id(thread_id)]

    async def scenario() -> None:
        with rig.gateway("gw1") as gw1, rig.gateway("gw2") as gw2:
            await welcomed(gw1)
            await welcomed(gw2)
            bind(gw1, "t1", configured=False)
            await gw1.wait_for(bound_to("t1"), 10, "Welcome bound to t1")
            bind(gw2, "t2", configured=True)
            for gw in (gw1, gw2):
                welcome = (await gw.wait_for(bound_to("t2"), 10, "Welcome bound to t2"))[-1]
                assert welcome.channel_id == wire_id("c-t2")
            bind(gw1, "t3", configured=False)
            await gw1.pump(0.5)
            assert not bound_to("t3")(gw1)

    asyncio.run(scenario())
    rebound = rig.events("thread.rebound")
    assert [(e["old_thread_id"], e["new_thread_id"]) for e in rebound] == [
        (wire_id("t1"), wire_id("t2"))
    ]
    assert rebound[0]["level"] == "WARNING"
    assert rig.stop() == 0
    with Journal(rig.dir) as journal:
        assert journal.binding().thread_id == wire_id("t2")


def test_a_prompt_the_worker_dies_on_is_given_up_after_max_tries(rig: WorkerRig) -> None:
    """Worker deaths count as tries: after max_tries runs cut short by SIGKILL of the
    worker, the next worker answers the prompt with the failure instead of running it."""

    async def run_until_turn_started(run: int) -> None:
        with rig.gateway(auto_deliver=False) as gw:
            await welcomed(gw)
            if run == 1:
                gw.prompt("p1", "SLOW:60 deadly")
            await gw.wait_for(
                lambda g: len(rig.events("turn.started")) == run, 10, f"run {run} of p1"
            )

    for run in (1, 2):
        worker = rig.start(max_tries=2)
        asyncio.run(run_until_turn_started(run))
        worker.kill()
        worker.wait(5)

    rig.start(max_tries=2)

    async def after() -> None:
        with rig.gateway() as gw:
            await welcomed(gw)
            answer = await answer_of(gw, "p1")
            assert answer.is_error
            assert "cut short by a crash 2 times" in answer.text
            assert "session worker itself died" in answer.text
            gw.prompt("p2", "next")
            assert (await answer_of(gw, "p2")).text.startswith("echo[")

    asyncio.run(after())
    assert len(rig.events("turn.started")) == 3  # p1 twice, then p2 only
    assert [e["tries"] for e in rig.events("prompt.given_up")] == [2]
    assert rig.stop() == 0


def test_an_answer_a_gateway_cannot_deliver_moves_to_another(rig: WorkerRig) -> None:
    """gw1 asks but never reports Delivered (its Mattermost fails): after REROUTE_AFTER
    re-sends the answer goes to gw2 with attempt >= 2, while gw1 stays alive."""
    rig.start()

    async def scenario() -> None:
        with rig.gateway("gw1", auto_deliver=False) as gw1, rig.gateway("gw2") as gw2:
            await welcomed(gw1)
            await welcomed(gw2)
            gw1.prompt("p1", "hello")
            # gw1 keeps saying hello meanwhile: it is alive, it just does not deliver.
            alive = asyncio.create_task(gw1.pump(30.0))
            try:
                moved = await gw2.wait_for(lambda g: g.answers("p1"), 8, "p1 moved to gw2")
            finally:
                alive.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await alive
            assert moved[0].text == "echo[1]: hello"
            assert moved[0].attempt >= 2
            assert len(gw1.answers("p1")) == REROUTE_AFTER + 1

    asyncio.run(scenario())
    assert rig.events("answer.rerouted")
    assert not rig.events("gateway.expired")
    assert rig.stop() == 0


def test_a_users_waiting_prompts_are_capped_and_the_refusal_posted_once(rig: WorkerRig) -> None:
    """Beyond max_queued_per_user waiting prompts a post is answered with a short refusal,
    exactly once (a re-sent post is only acknowledged again); other users are not limited.
    claude cannot start here, so the queue cannot drain while the test looks at it."""
    rig.start(claude_path=rig.dir / "no-such-claude", max_tries=1000, max_queued_per_user=3)

    async def scenario() -> None:
        with rig.gateway() as gw:
            await welcomed(gw)
            for i in range(5):
                gw.prompt(f"a{i}", f"alice {i}", create_at=1000 + i)
            gw.prompt("b0", "bob 0", create_at=2000, user_id="user-2", username="bob")
            await gw.wait_for(
                lambda g: all(g.accepted(p) for p in ("a0", "a1", "a2", "a3", "a4", "b0")),
                10,
                "every post acknowledged",
            )
            refusals = await gw.wait_for(
                lambda g: len(g.answers()) >= 2 and g.answers(), 10, "two refusals"
            )
            assert sorted(a.post_id for a in refusals) == ["a3", "a4"]
            assert all(a.is_error and "Not queued" in a.text for a in refusals)
            gw.prompt("a3", "alice 3", create_at=1003)  # a gateway re-sends it
            await gw.wait_for(lambda g: len(g.accepted("a3")) == 2, 10, "a3 acknowledged again")
            assert [a.first for a in gw.accepted("a3")] == [True, False]
            await gw.pump(1.5)  # past the redelivery interval
            assert sorted(a.post_id for a in gw.answers()) == ["a3", "a4"]

    asyncio.run(scenario())
    assert len(rig.events("prompt.refused")) == 2
    with Journal(rig.dir) as journal:
        assert journal.queued_of(wire_id("user-1")) == 3
        assert journal.queued_of(wire_id("user-2")) == 1
    assert rig.stop() == 0


def test_turns_are_shared_fairly_between_users(rig: WorkerRig) -> None:
    """Seven prompts of alice queued before bob's one: bob's runs after MAX_STREAK (5) of
    alice's, not last; alice's keep their order (the queue is in the journal before the
    worker starts, so nothing races)."""
    with Journal(rig.dir) as journal:
        for i in range(7):
            journal.insert(row(f"a{i}", 1000 + i, "user-1", "alice"))
        journal.insert(row("b0", 2000, "user-2", "bob"))
    rig.start()

    async def scenario() -> None:
        with rig.gateway() as gw:
            await welcomed(gw)
            answers = await gw.wait_for(
                lambda g: len(g.first_answers()) == 8 and g.first_answers(), 20, "eight answers"
            )
            # One conversation: the fake's echo counter (1, 3, 5, …) numbers the turns.
            # (Answers that wait for a gateway together are sent in the order of the posts,
            # so the order they arrive in says nothing about the order of the turns.)
            turn = {p: int(a.text.split("]")[0].removeprefix("echo[")) for p, a in answers.items()}
            assert sorted(turn.values()) == [2 * i + 1 for i in range(8)]
            alice = [f"a{i}" for i in range(7)]
            assert sorted(turn, key=turn.__getitem__) == [*alice[:5], "b0", *alice[5:]]

    asyncio.run(scenario())
    assert rig.stop() == 0


def row(post_id: str, create_at: int, user_id: str, username: str) -> PromptRow:
    return PromptRow(
        post_id=wire_id(post_id), create_at=create_at, user_id=wire_id(user_id),
        username=username, text=f"{username} says {post_id}", gateway_id="gw0",
    )  # fmt: skip
