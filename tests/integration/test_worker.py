"""The session worker as a real process with the fake claude, driven over its real sockets.

Each test plays a gateway (session_worker.testing.FakeGateway) against ``python -m
session_worker``; the fake claude answers ``echo[N]: <text>`` with N growing with the
conversation, so the numbers prove which turns shared a context.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest

import protocol
from protocol import Receiver, Welcome, WorkerHeartbeat
from session_worker.answers import MAX_ANSWER_CHARS
from session_worker.journal import Journal
from session_worker.policy import CONTEXT_LOST_NOTE
from session_worker.testing import (
    FakeGateway,
    fake_claude_executable,
    wire_id,
    worker_config,
    write_config,
)
from tests.support import REPO, ProcessGroup, pid_alive, wait_for

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable
    from pathlib import Path

pytestmark = pytest.mark.slow

TOKEN = "mm-secret-token-1234"


class WorkerRig:
    """Starts workers on one state dir with the fake claude; reads their JSON logs."""

    def __init__(self, state_dir: Path, procs: ProcessGroup) -> None:
        self.dir = state_dir
        self.procs = procs
        self.claude = fake_claude_executable(state_dir, REPO, sys.executable)
        self.log_path = state_dir / "worker.log"
        protocol.prepare_run_dir(state_dir)  # the test binds sockets there too
        self.endpoint = protocol.worker_endpoint(state_dir)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(
        self, env: dict[str, str] | None = None, log: Path | None = None, **overrides: Any
    ) -> subprocess.Popen[bytes]:
        overrides.setdefault("claude_path", self.claude)
        config = worker_config(self.dir, redact=(TOKEN,), **overrides)
        path = write_config(config, self.dir / "worker.json")
        env = {
            **(os.environ if env is None else env),
            "FAKE_CLAUDE_SESSIONS_DIR": str(self.dir / "sessions"),
            "PYTHONPATH": str(REPO),
            "MATTERMOST_TOKEN": TOKEN,
        }
        with open(log or self.log_path, "ab") as sink:
            self.proc = self.procs.python(
                "-m", "session_worker", str(path), env=env, cwd=REPO, stderr=sink
            )
        return self.proc

    def events(self, name: str) -> list[dict[str, Any]]:
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if str(record.get("message", "")).startswith(name):
                found.append(record)
        return found

    def claude_pid(self) -> int:
        spawned = self.events("claude.spawned")
        assert spawned, "claude was never spawned"
        return int(spawned[-1]["claude_pid"])

    def gateway(self, gateway_id: str = "gw1", **kwargs: Any) -> FakeGateway:
        return FakeGateway(self.dir, self.endpoint, gateway_id, **kwargs)

    def stop(self, timeout: float = 10.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


@pytest.fixture
def rig(short_tmp: Path, procs: ProcessGroup) -> WorkerRig:
    return WorkerRig(short_tmp, procs)


async def welcomed(gw: FakeGateway, timeout: float = 15.0) -> Welcome:
    gw.hello()
    welcomes = await gw.wait_for(lambda g: g.welcomes(), timeout, "Welcome")
    return welcomes[-1]


async def answer_of(gw: FakeGateway, post_id: str, timeout: float = 15.0) -> protocol.Answer:
    answers = await gw.wait_for(lambda g: g.answers(post_id), timeout, f"answer to {post_id}")
    return answers[0]


def turn_started(rig: WorkerRig, post_id: str) -> bool:
    """The worker logged the start of this prompt's turn (Progress comes only after 1 s)."""
    return any(e.get("post_id") == wire_id(post_id) for e in rig.events("turn.started"))


async def heartbeat_where(
    sup: Receiver, predicate: Callable[[WorkerHeartbeat], bool], timeout: float = 5.0
) -> WorkerHeartbeat:
    """The first heartbeat (old ones included) that satisfies ``predicate``."""
    deadline = time.monotonic() + timeout
    seen: list[WorkerHeartbeat] = []
    while time.monotonic() < deadline:
        try:
            frame = await asyncio.wait_for(sup.recv(), max(deadline - time.monotonic(), 0.01))
        except TimeoutError:
            break
        beat = protocol.supervisor_codec.decode(frame)
        assert isinstance(beat, WorkerHeartbeat)
        if predicate(beat):
            return beat
        seen.append(beat)
    raise AssertionError(f"no matching heartbeat in {timeout} s; saw {seen[-3:]}")


def test_prompts_run_one_turn_at_a_time(rig: WorkerRig) -> None:
    """A prompt sent while a turn runs waits for its result: two answers from two turns."""
    rig.start(heartbeat_endpoint=protocol.supervisor_endpoint(rig.dir))

    async def scenario() -> None:
        with rig.gateway() as gw, Receiver(protocol.supervisor_endpoint(rig.dir)) as sup:
            welcome = await welcomed(gw)
            assert welcome.thread_id == ""
            assert welcome.catch_up_from == 0
            gw.prompt("p1", "SLOW:2 first")
            progress = await gw.wait_for(lambda g: g.progress("p1"), 10, "progress of p1")
            # Not at the start of the turn: a fast turn must not cost a typing call.
            assert progress[0].elapsed_s >= 1.0
            gw.prompt("p2", "second")
            first = await answer_of(gw, "p1")
            second = await answer_of(gw, "p2")
            assert first.text == "echo[1]: SLOW:2 first"
            assert second.text == "echo[3]: second"
            assert not gw.progress("p2")
            assert not first.is_error
            assert [a.first for a in gw.accepted("p1")] == [True]
            pid = rig.claude_pid()
            beat = await heartbeat_where(sup, lambda b: b.queue == 0 and b.claude_pid == pid)
            assert beat.session_id

    asyncio.run(scenario())
    assert rig.stop() == 0


def test_duplicates_garbage_and_binding(rig: WorkerRig) -> None:
    """Duplicate prompts, garbage frames and GARBAGE stdout lines lose and repeat nothing."""
    rig.start()

    async def scenario() -> None:
        with rig.gateway() as gw:
            await welcomed(gw)
            gw.send_raw(b"\x00 definitely not msgpack")
            bogus = protocol.GatewayHello(gateway_id="bad", endpoint="bogus://x", pid=1)
            gw.send_raw(protocol.encode(bogus))  # refused by the decoder: inbox.undecodable
            # Well-formed, but the ipc path is over the limit: refused later, inbox.rejected.
            too_long = protocol.GatewayHello(
                gateway_id="bad", endpoint="ipc:///" + "x" * 107, pid=1
            )
            gw.send_raw(protocol.encode(too_long))
            gw.prompt("p1", "GARBAGE one", create_at=1000)
            gw.prompt("p1", "GARBAGE one", create_at=1000)
            await gw.wait_for(lambda g: len(g.accepted("p1")) == 2, 10, "two Accepted")
            assert [a.first for a in gw.accepted("p1")] == [True, False]
            answer = await answer_of(gw, "p1")
            assert answer.text == "echo[1]: GARBAGE one"
            gw.prompt("big", "LONG:3000000", create_at=1000)
            big = await answer_of(gw, "big")
            # One stdout line of ~3 MB; the thread gets the first 256 KB, the workdir all.
            assert len(big.text) < MAX_ANSWER_CHARS + 500
            assert big.text.startswith("echo[3]: ")
            assert f"`.mmclaude/answers/{wire_id('big')}.md`" in big.text
            whole = (
                rig.dir / "work" / ".mmclaude" / "answers" / f"{wire_id('big')}.md"
            ).read_text()
            assert len(whole) == 3_000_000
            assert whole.startswith(big.text.split("\n\n✂️")[0])
            gw.prompt("p1", "GARBAGE one", create_at=1000)  # after delivery: still once
            bind = protocol.BindThread(
                gateway_id="gw1", thread_id=wire_id("t1"), channel_id=wire_id("c1")
            )
            gw.send_raw(protocol.encode(bind))
            welcome = await gw.wait_for(
                lambda g: [w for w in g.welcomes() if w.thread_id], 10, "bound Welcome"
            )
            assert (welcome[0].thread_id, welcome[0].channel_id) == (wire_id("t1"), wire_id("c1"))
            assert welcome[0].catch_up_from == 1000
            bind = protocol.BindThread(
                gateway_id="gw1", thread_id=wire_id("t2"), channel_id=wire_id("c2")
            )
            gw.send_raw(protocol.encode(bind))
            await gw.pump(0.5)
            assert {w.thread_id for w in gw.welcomes()} == {"", wire_id("t1")}
            assert len(gw.answers("p1")) == 1

    asyncio.run(scenario())
    assert rig.events("inbox.undecodable")
    assert rig.events("inbox.rejected")
    assert len(rig.events("claude.bad_line")) >= 3
    assert rig.stop() == 0
    assert TOKEN not in rig.log_path.read_text()


def test_crash_once_is_resumed_and_answered_once(rig: WorkerRig) -> None:
    """claude dying mid-turn is respawned with --resume and the prompt answered exactly once."""
    rig.start()

    async def scenario() -> None:
        with rig.gateway() as gw:
            await welcomed(gw)
            gw.prompt("p1", "one")
            assert (await answer_of(gw, "p1")).text == "echo[1]: one"
            first_pid = rig.claude_pid()
            gw.prompt("p2", "CRASHONCE two")
            answer = await answer_of(gw, "p2")
            assert answer.text == "echo[3]: CRASHONCE two"
            assert not answer.is_error
            gw.prompt("p3", "three")
            assert (await answer_of(gw, "p3")).text == "echo[5]: three"
            await gw.pump(1.5)  # past the redelivery interval: nothing is sent twice
            assert [len(gw.answers(p)) for p in ("p1", "p2", "p3")] == [1, 1, 1]
            assert rig.claude_pid() != first_pid
            assert not pid_alive(first_pid)

    asyncio.run(scenario())
    assert rig.events("session.resumed")
    assert [e["code"] for e in rig.events("claude.exited")][:1] == [3]
    assert rig.stop() == 0


def test_crash_every_time_gives_an_error_answer(rig: WorkerRig) -> None:
    """A prompt that kills claude on every try is answered with the failure after max_tries."""
    rig.start(max_tries=3)

    async def scenario() -> None:
        with rig.gateway() as gw:
            await welcomed(gw)
            gw.prompt("p1", "CRASH now")
            answer = await answer_of(gw, "p1", timeout=20)
            assert answer.is_error
            assert "died 3 times" in answer.text
            assert "exit code 3" in answer.text
            # claude's stderr (paths, stack traces) stays in the log; the thread gets a
            # one-line reason.
            assert "fake-claude: CRASH keyword" not in answer.text
            assert "```" not in answer.text
            assert "see the bot's log" in answer.text
            gw.prompt("p2", "after")
            assert (await answer_of(gw, "p2")).text.startswith("echo[")

    asyncio.run(scenario())
    assert len(rig.events("claude.restarted")) >= 3
    died = rig.events("turn.claude_died")
    assert len(died) == 3
    assert all("fake-claude: CRASH keyword" in e["stderr"] for e in died)
    assert rig.stop() == 0


def test_hang_is_interrupted_and_a_stuck_claude_killed(rig: WorkerRig) -> None:
    """A silent turn is interrupted; a claude that ignores the interrupt is killed; both told."""
    # Limits with room for a busy 2-core machine: the respawned claude's first answer and
    # the interrupt's result must come within them (0.5 s each flaked under load).
    rig.start(idle_limit=2.0, interrupt_grace=1.5)

    async def scenario() -> None:
        with rig.gateway() as gw:
            await welcomed(gw)
            gw.prompt("p1", "HANG")
            answer = await answer_of(gw, "p1")
            assert answer.is_error
            assert "was stopped (it was interrupted)" in answer.text
            pid = rig.claude_pid()
            gw.prompt("p2", "HANG again")
            await gw.wait_for(lambda g: turn_started(rig, "p2"), 10, "turn p2 started")
            os.kill(pid, signal.SIGSTOP)  # deaf to the interrupt, like a wedged process
            answer = await answer_of(gw, "p2", timeout=15)
            assert "the claude process was restarted" in answer.text
            wait_for(lambda: not pid_alive(pid), 5, "the stopped claude to be gone")
            gw.prompt("p3", "fine")
            assert (await answer_of(gw, "p3")).text.startswith("echo[")
            assert rig.claude_pid() != pid

    asyncio.run(scenario())
    assert rig.events("turn.killed")
    assert rig.stop() == 0


def tool_pid(answer: protocol.Answer) -> int:
    return int(answer.text.rsplit("tool-pid=", 1)[1].split()[0])


def test_tool_grandchildren_die_with_claude_and_with_the_worker(
    rig: WorkerRig, procs: ProcessGroup
) -> None:
    """setsid'd tool processes are killed when claude restarts and when the worker stops."""
    worker = rig.start()

    async def scenario() -> tuple[int, int]:
        with rig.gateway() as gw:
            await welcomed(gw)
            gw.prompt("p1", "TOOL one")
            first = tool_pid(await answer_of(gw, "p1"))
            procs.extra.add(first)
            assert pid_alive(first)
            claude = rig.claude_pid()
            os.kill(claude, signal.SIGKILL)
            await gw.wait_for(lambda g: rig.claude_pid() != claude, 10, "a new claude")
            wait_for(lambda: not pid_alive(first), 5, "the tool of the dead claude to be gone")
            gw.prompt("p2", "TOOL two")
            second = tool_pid(await answer_of(gw, "p2"))
            procs.extra.add(second)
            return second, rig.claude_pid()

    second, claude = asyncio.run(scenario())
    assert pid_alive(second)
    assert rig.stop() == 0
    assert not pid_alive(second)
    assert not pid_alive(claude)
    assert worker.returncode == 0


def test_worker_sigkill_then_a_new_worker_resumes_session_and_queue(rig: WorkerRig) -> None:
    """After SIGKILL the claude child dies too; the next worker re-sends and re-runs all."""
    worker = rig.start()

    async def before_kill() -> int:
        with rig.gateway(auto_deliver=False) as gw:
            await welcomed(gw)
            gw.prompt("p1", "one")
            assert (await answer_of(gw, "p1")).text == "echo[1]: one"
            gw.prompt("p2", "SLOW:1.5 two")
            gw.prompt("p3", "three")
            await gw.wait_for(lambda g: turn_started(rig, "p2"), 10, "turn p2 started")
            return rig.claude_pid()

    claude = asyncio.run(before_kill())
    worker.kill()
    worker.wait(5)
    wait_for(lambda: not pid_alive(claude), 2, "claude to die with its worker")

    rig.start()

    async def after_restart() -> None:
        with rig.gateway() as gw:
            await welcomed(gw)
            again = await answer_of(gw, "p1")
            assert again.text == "echo[1]: one"
            assert again.attempt >= 2
            assert (await answer_of(gw, "p2")).text == "echo[3]: SLOW:1.5 two"
            assert (await answer_of(gw, "p3")).text == "echo[5]: three"
            assert list(gw.first_answers()) == ["p1", "p2", "p3"]

    asyncio.run(after_restart())
    assert rig.stop() == 0
    assert rig.events("prompt.requeued")


def test_unknown_session_starts_fresh_and_says_so(rig: WorkerRig) -> None:
    """A stored session the CLI does not know gives a fresh session and a notice."""
    with Journal(rig.dir) as journal:
        journal.session_id = "00000000-0000-4000-8000-000000000000"
        journal.set_meta("session_has_turns", "1")
    rig.start()

    async def scenario() -> None:
        with rig.gateway() as gw:
            await welcomed(gw)
            gw.prompt("p1", "hello")
            answer = await answer_of(gw, "p1")
            assert answer.text == f"{CONTEXT_LOST_NOTE}\n\necho[1]: hello"
            gw.prompt("p2", "again")
            assert (await answer_of(gw, "p2")).text == "echo[3]: again"

    asyncio.run(scenario())
    assert rig.events("session.lost")
    with Journal(rig.dir) as journal:
        assert journal.session_id not in (None, "00000000-0000-4000-8000-000000000000")
    assert rig.stop() == 0


def test_claude_that_cannot_start_is_reported(rig: WorkerRig) -> None:
    """A missing claude executable answers the waiting prompt with the failure."""
    rig.start(claude_path=rig.dir / "no-such-claude", max_tries=2)

    async def scenario() -> None:
        with rig.gateway() as gw:
            await welcomed(gw)
            gw.prompt("p1", "anyone there?")
            answer = await answer_of(gw, "p1", timeout=15)
            assert answer.is_error
            assert "could not be started (2 tries" in answer.text
            assert "see the bot's log" in answer.text
            assert "no-such-claude" not in answer.text  # a path of the host: log only

    asyncio.run(scenario())
    assert any("no-such-claude" in e["error"] for e in rig.events("claude.start_failed"))
    assert rig.stop() == 0
