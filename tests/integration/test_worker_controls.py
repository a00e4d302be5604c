"""Commands and tool approvals through a real worker and the fake claude, over real sockets.

The fake claude's APPROVE keyword asks ``can_use_tool`` for a Bash command and waits for the
decision (its answer ends with ``[allowed: …]`` or ``[denied: …]``); ASKQ asks an
AskUserQuestion. SLOW:s makes a turn last s seconds, interruptible.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import protocol
from protocol import Receiver, WorkerHeartbeat
from session_worker.testing import wire_id
from tests.integration.test_worker import (
    WorkerRig,
    answer_of,
    heartbeat_where,
    turn_started,
    welcomed,
)

if TYPE_CHECKING:
    from protocol import ApprovalShow
    from session_worker.testing import FakeGateway
    from tests.support import ProcessGroup

pytestmark = pytest.mark.slow


@pytest.fixture
def rig(short_tmp: Path, procs: ProcessGroup) -> WorkerRig:
    return WorkerRig(short_tmp, procs)


async def pending_approval(gw: FakeGateway, seen: int = 0, timeout: float = 15.0) -> ApprovalShow:
    """The next pending approval after the first ``seen`` ones."""
    found = await gw.wait_for(
        lambda g: g.approvals("pending")[seen:], timeout, f"pending approval #{seen + 1}"
    )
    return found[0]


def test_status_answers_while_a_turn_runs_and_stop_keeps_the_session(rig: WorkerRig) -> None:
    """!status is answered beside a running turn; !stop interrupts it (same claude pid), the
    stopped prompt gets one answer saying so, and the queued prompt then runs in the same
    session."""
    rig.start()

    async def scenario() -> None:
        with rig.gateway() as gw:
            await welcomed(gw)
            gw.prompt("p1", "first SLOW:30")
            gw.prompt("p2", "second")
            await gw.wait_for(lambda g: turn_started(rig, "p1"), 15, "p1 running")
            pid = rig.claude_pid()
            gw.command("c1", "status")
            # Beside the turn, not behind it: answered while p1 (30 s long) still runs.
            status = await answer_of(gw, "c1", timeout=20)
            assert not gw.answers("p1"), "a command waited behind the turn"
            assert turn_started(rig, "p1")
            assert f"running: post `{wire_id('p1')}`" in status.text
            assert "queue: 1" in status.text
            gw.command("c2", "stop")
            reply = await answer_of(gw, "c2", timeout=5)
            assert "Stopping" in reply.text
            stopped = await answer_of(gw, "p1", timeout=10)
            assert "Stopped by @alice" in stopped.text
            assert stopped.text.count("echo[") <= 1  # what Claude had written, if anything
            second = await answer_of(gw, "p2", timeout=15)
            # Same session: the interrupted turn is in the context (N grows past 1).
            assert second.text.startswith("echo[")
            assert not second.text.startswith("echo[1]")
            assert rig.claude_pid() == pid
            gw.command("c3", "stop")
            idle = await answer_of(gw, "c3", timeout=5)
            assert "No turn is running" in idle.text
            await gw.pump(1.0)
            for post_id in ("c1", "c2", "c3", "p1", "p2"):
                assert len({a.text for a in gw.answers(post_id)}) == 1

    asyncio.run(scenario())


def test_a_command_is_journaled_once_under_redelivery(rig: WorkerRig) -> None:
    """The same command post sent twice (and after a worker restart) runs once."""
    rig.start()

    async def scenario() -> None:
        with rig.gateway(auto_deliver=False) as gw:
            await welcomed(gw)
            gw.command("c1", "new")
            await gw.wait_for(lambda g: g.accepted("c1"), 10, "Accepted c1")
            gw.command("c1", "new")
            await gw.wait_for(lambda g: len(g.accepted("c1")) == 2, 10, "second Accepted")
            assert [a.first for a in gw.accepted("c1")] == [True, False]
            await answer_of(gw, "c1")
        rig.stop()
        rig.start()
        with rig.gateway() as gw:
            await welcomed(gw)
            again = await answer_of(gw, "c1")  # the undelivered reply, re-sent
            assert again.attempt >= 2
            gw.deliver("c1")

    asyncio.run(scenario())


def test_new_model_and_mode_survive_a_worker_restart(rig: WorkerRig) -> None:
    """!new starts a fresh session and names the old one; !model and !mode are journaled
    and reach a respawned claude; bypassPermissions is refused without the operator's flag."""
    rig.start(heartbeat_endpoint=protocol.supervisor_endpoint(rig.dir))

    async def scenario() -> None:
        sup = Receiver(protocol.supervisor_endpoint(rig.dir))
        try:
            with rig.gateway() as gw:
                await welcomed(gw)
                gw.prompt("p1", "hello")
                await answer_of(gw, "p1")
                beat = await heartbeat_where(sup, lambda b: b.session_id is not None, 10)
                old = beat.session_id
                assert old
                gw.command("c1", "new")
                assert old in (await answer_of(gw, "c1")).text
                gw.command("c2", "model", "claude-sonnet-4-5")
                assert "claude-sonnet-4-5" in (await answer_of(gw, "c2")).text
                gw.command("c3", "mode", "bypassPermissions")
                assert "refused" in (await answer_of(gw, "c3")).text
                gw.command("c4", "mode", "acceptEdits")
                assert "acceptEdits" in (await answer_of(gw, "c4")).text
                gw.prompt("p2", "fresh")
                assert (await answer_of(gw, "p2")).text.startswith("echo[1]: fresh")
                beat = await heartbeat_where(
                    sup, lambda b: b.session_id not in (None, old) and b.turns >= 1, 10
                )
                assert beat.model == "claude-sonnet-4-5"
                assert beat.permission_mode == "acceptEdits"
            assert rig.proc is not None
            rig.proc.send_signal(signal.SIGKILL)
            rig.proc.wait(10)
            rig.start(heartbeat_endpoint=protocol.supervisor_endpoint(rig.dir))
            with rig.gateway() as gw:
                await welcomed(gw)
                gw.prompt("p3", "after restart")
                await answer_of(gw, "p3")

                def restored(b: WorkerHeartbeat) -> bool:
                    return b.model == "claude-sonnet-4-5" and b.permission_mode == "acceptEdits"

                await heartbeat_where(sup, restored, 10)
            argv = Path(f"/proc/{rig.claude_pid()}/cmdline").read_bytes().split(b"\0")
            assert b"--permission-prompt-tool" in argv
            assert argv[argv.index(b"--permission-mode") + 1] == b"acceptEdits"
        finally:
            sup.close()

    asyncio.run(scenario())


def test_approval_allow_deny_always_and_only_its_own_request(rig: WorkerRig) -> None:
    """can_use_tool → a pending ApprovalShow; a Decision reaches that request only, once."""
    rig.start()

    async def scenario() -> None:
        with rig.gateway() as gw:
            await welcomed(gw)
            gw.prompt("p1", "run APPROVE")
            first = await pending_approval(gw)
            assert first.kind == "approval"
            assert "```bash\necho approved-run\n```" in first.text
            gw.decide("not-a-request", "deny")
            gw.decide(first.request_id, "allow")
            gw.decide(first.request_id, "deny")  # too late: already decided
            answer = await answer_of(gw, "p1")
            assert answer.text.endswith("[allowed: approved-run]")
            decided = await gw.wait_for(lambda g: g.approvals("allowed"), 5, "allowed shown")
            assert "Allowed once by @alice" in decided[0].text
            assert not gw.approvals("denied")

            gw.prompt("p2", "again APPROVE")
            second = await pending_approval(gw, seen=1)
            assert second.request_id != first.request_id
            gw.command("c1", "deny", "not today")
            assert "Denied" in (await answer_of(gw, "c1")).text
            assert "[denied: The user denied this: not today]" in (await answer_of(gw, "p2")).text

            gw.prompt("p3", "third APPROVE")
            gw.command("c2", "allow")  # before the approval post existed: not for it
            assert "No approval is pending" in (await answer_of(gw, "c2")).text
            third = await pending_approval(gw, seen=2)
            await gw.pump(0.3)
            assert not gw.approvals("allowed")[1:]
            gw.decide(third.request_id, "always")
            assert (await answer_of(gw, "p3")).text.endswith("[allowed always: approved-run]")

    asyncio.run(scenario())


def test_question_answered_by_number(rig: WorkerRig) -> None:
    """AskUserQuestion: numbered options; !answer 2 sends the label in updatedInput."""
    rig.start()

    async def scenario() -> None:
        with rig.gateway() as gw:
            await welcomed(gw)
            gw.prompt("p1", "ASKQ please")
            question = await pending_approval(gw)
            assert question.kind == "question"
            assert "1. Red" in question.text
            assert "2. Blue" in question.text
            gw.command("c1", "answer", "2")
            assert "Blue" in (await answer_of(gw, "c1")).text
            answer = await answer_of(gw, "p1")
            assert 'answers={"Which colour?": "Blue"}' in answer.text

    asyncio.run(scenario())


def test_timeout_denies_and_stop_withdraws(rig: WorkerRig) -> None:
    """No answer within the approval timeout → denied; !stop while one waits → withdrawn."""
    rig.start(approval_timeout=1.0)

    async def scenario() -> None:
        with rig.gateway() as gw:
            await welcomed(gw)
            gw.prompt("p1", "APPROVE late")
            await pending_approval(gw)
            timed_out = await gw.wait_for(lambda g: g.approvals("timeout"), 10, "timeout")
            assert "No answer in time" in timed_out[0].text
            assert "[denied: The user did not answer in time" in (await answer_of(gw, "p1")).text

    asyncio.run(scenario())


def test_stop_withdraws_a_pending_approval(rig: WorkerRig) -> None:
    rig.start()

    async def scenario() -> None:
        with rig.gateway() as gw:
            await welcomed(gw)
            gw.prompt("p1", "APPROVE then stop")
            await pending_approval(gw)
            gw.command("c1", "stop")
            await gw.wait_for(lambda g: g.approvals("withdrawn"), 10, "withdrawn")
            assert "Stopped by" in (await answer_of(gw, "p1")).text

    asyncio.run(scenario())


def test_claude_killed_while_pending_expires_the_post_and_asks_again(rig: WorkerRig) -> None:
    """Claude dies with a request pending: the old post expires, the retried turn asks anew,
    and only the new request is live."""
    rig.start()

    async def scenario() -> None:
        with rig.gateway() as gw:
            await welcomed(gw)
            gw.prompt("p1", "APPROVE survive")
            first = await pending_approval(gw)
            os.kill(rig.claude_pid(), signal.SIGKILL)
            await gw.wait_for(lambda g: g.approvals("expired"), 15, "expired")
            second = await pending_approval(gw, seen=1, timeout=20)
            assert second.request_id != first.request_id
            gw.decide(first.request_id, "deny")  # the dead request: changes nothing
            gw.decide(second.request_id, "allow")
            assert (await answer_of(gw, "p1", timeout=15)).text.endswith("[allowed: approved-run]")
            await gw.pump(0.5)
            assert not gw.approvals("denied")
            assert {a.request_id for a in gw.approvals("allowed")} == {second.request_id}

    asyncio.run(scenario())


def test_worker_killed_while_pending_expires_and_asks_again(rig: WorkerRig) -> None:
    """The worker dies with a request pending: the new worker marks it expired, runs the turn
    again, Claude asks anew; a late decision on the old request changes nothing."""
    rig.start()

    async def scenario() -> None:
        with rig.gateway() as gw:
            await welcomed(gw)
            gw.prompt("p1", "APPROVE across a worker kill")
            first = await pending_approval(gw)
            assert rig.proc is not None
            rig.proc.send_signal(signal.SIGKILL)
            rig.proc.wait(10)
            rig.start()
            expired = await gw.wait_for(lambda g: g.approvals("expired"), 20, "expired")
            assert expired[0].request_id == first.request_id
            second = await pending_approval(gw, seen=1, timeout=30)
            assert second.request_id != first.request_id
            gw.decide(first.request_id, "allow")
            gw.decide(second.request_id, "deny")
            answer = await answer_of(gw, "p1", timeout=20)
            assert "[denied: The user denied this.]" in answer.text

    asyncio.run(scenario())
