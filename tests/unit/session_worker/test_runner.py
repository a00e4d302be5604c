"""The Runner against a scripted claude child: no process, no socket, a real journal."""

from __future__ import annotations

import asyncio
import functools
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import pytest

from session_worker import policy
from session_worker.config import WorkerConfig
from session_worker.errors import ChildStartError
from session_worker.journal import Journal
from session_worker.ndjson import NO_CONVERSATION
from session_worker.runner import Runner
from session_worker.states import PromptRow, State
from session_worker.testing import ScriptedChild, ScriptedClaude, result_event

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Collection, Coroutine
    from pathlib import Path

pytestmark = pytest.mark.timeout(30)


def sync(case: Callable[[Path], Coroutine[Any, Any, None]]) -> Callable[[Path], None]:
    """Run an async test case in its own event loop."""

    @functools.wraps(case)
    def test(tmp_path: Path) -> None:
        asyncio.run(case(tmp_path))

    return test


WAIT = 10.0  # every wait below has this deadline


def config(tmp_path: Path, **kw: float) -> WorkerConfig:
    return WorkerConfig(
        state_dir=str(tmp_path / "state"),
        claude_path="claude",
        claude_args=(),
        claude_workdir=str(tmp_path),
        endpoint="ipc:///nonexistent",
        max_tries=int(kw.get("max_tries", 3)),
        idle_limit=kw.get("idle_limit", 30.0),
        interrupt_grace=kw.get("interrupt_grace", 5.0),
        live=False,
    )


class Rig:
    def __init__(self, tmp_path: Path, claude: ScriptedClaude, **kw: float) -> None:
        self.journal = Journal(tmp_path / "state")
        self.claude = claude
        self.answered: list[PromptRow] = []
        self.changed = asyncio.Event()
        self.runner = Runner(
            config(tmp_path, **kw),
            self.journal,
            on_answered=self._answered,
            spawn=claude,
            sweep=self._sweep,
        )
        self._n = 0

    def _answered(self, row: PromptRow) -> None:
        self.answered.append(row)
        self.changed.set()

    async def _sweep(self, exclude: Collection[int]) -> None:
        return None

    def prompt(self, post_id: str, text: str) -> None:
        self._n += 1
        row = PromptRow(post_id, 1000 + self._n, "u1", "alice", text, "gw1")
        self.journal.insert(row)
        self.runner.wake()

    async def answer_of(self, post_id: str) -> PromptRow:
        async def wait() -> PromptRow:
            while True:
                for row in self.answered:
                    if row.post_id == post_id:
                        return row
                self.changed.clear()
                await self.changed.wait()

        return await asyncio.wait_for(wait(), WAIT)


@asynccontextmanager
async def running(rig: Rig) -> AsyncIterator[Rig]:
    task = asyncio.create_task(rig.runner.run())
    try:
        yield rig
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        rig.journal.close()


async def until(check: object, what: str) -> None:
    async def poll() -> None:
        while not callable(check) or not check():
            await asyncio.sleep(0.005)

    try:
        await asyncio.wait_for(poll(), WAIT)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


@sync
async def test_a_turn_is_answered_and_its_session_kept(tmp_path: Path) -> None:
    def on_user(child: ScriptedChild, text: str) -> None:
        child.emit({"type": "system", "subtype": "init", "session_id": "s-1", "model": "m1"})
        child.emit(result_event(f"echo[{text}]"))

    async with running(Rig(tmp_path, ScriptedClaude(on_user))) as rig:
        rig.prompt("p1", "hello")
        row = await rig.answer_of("p1")
        assert (row.answer, row.is_error, row.tries) == ("echo[hello]", False, 1)
        assert rig.journal.session_id == "s-1"
        assert rig.runner.model == "m1"
        assert len(rig.claude.spawned) == 1


@sync
async def test_claude_dying_mid_turn_requeues_and_resumes(tmp_path: Path) -> None:
    def on_user(child: ScriptedChild, text: str) -> None:
        child.emit({"type": "system", "subtype": "init", "session_id": "s-1"})
        if len(child.factory.spawned) == 1:
            child.die(-9, "segfault details")
        else:
            child.emit(result_event("second time"))

    async with running(Rig(tmp_path, ScriptedClaude(on_user))) as rig:
        rig.prompt("p1", "hello")
        row = await rig.answer_of("p1")
        assert (row.answer, row.tries) == ("second time", 2)
        first, second = rig.claude.spawned
        assert first.session_id is None
        assert second.session_id == "s-1"  # respawned with --resume
        assert rig.runner.restarts == 1


@sync
async def test_an_unknown_session_starts_fresh_and_the_answer_says_so(tmp_path: Path) -> None:
    refused = ChildStartError(
        "claude did not start", returncode=1, stderr_tail=NO_CONVERSATION, no_conversation=True
    )
    rig = Rig(tmp_path, ScriptedClaude(start_failures=[refused]))
    rig.journal.session_id = "gone"
    rig.journal.set_meta("session_has_turns", "1")
    async with running(rig):
        rig.prompt("p1", "hello")
        row = await rig.answer_of("p1")
        assert row.answer == policy.context_lost("echo[hello]")
        assert [c.session_id for c in rig.claude.spawned] == ["gone", None]
        assert row.tries == 1
        rig.prompt("p2", "again")
        assert (await rig.answer_of("p2")).answer == "echo[again]"  # said once


@sync
async def test_unknown_session_found_mid_turn_runs_the_prompt_again_fresh(
    tmp_path: Path,
) -> None:
    def on_user(child: ScriptedChild, text: str) -> None:
        if child.session_id == "gone":
            child.die(1, NO_CONVERSATION, no_conversation=True)
        else:
            child.emit(result_event("fresh"))

    rig = Rig(tmp_path, ScriptedClaude(on_user), max_tries=1)
    rig.journal.session_id = "gone"
    async with running(rig):
        rig.prompt("p1", "hello")
        row = await rig.answer_of("p1")
        assert (row.answer, row.tries) == ("fresh", 1)  # the try was given back
        assert [c.session_id for c in rig.claude.spawned] == ["gone", None]


@sync
async def test_claude_dying_on_every_try_gives_up_with_the_status(tmp_path: Path) -> None:
    def on_user(child: ScriptedChild, text: str) -> None:
        child.die(-11, "secret stderr")

    async with running(Rig(tmp_path, ScriptedClaude(on_user), max_tries=2)) as rig:
        rig.prompt("p1", "hello")
        row = await rig.answer_of("p1")
        assert row.answer == policy.failed_answer(2, -11)
        assert row.is_error
        assert len(rig.claude.spawned) == 2


@sync
async def test_stop_interrupts_the_turn_and_names_who(tmp_path: Path) -> None:
    def on_user(child: ScriptedChild, text: str) -> None:
        child.emit({"type": "assistant", "message": {"content": "half"}})

    def on_interrupt(child: ScriptedChild) -> None:
        child.emit(result_event(None, subtype="error_during_execution"))

    claude = ScriptedClaude(on_user, on_interrupt)
    async with running(Rig(tmp_path, claude)) as rig:
        rig.prompt("p1", "long job")
        await until(lambda: rig.runner.current is not None, "the turn to run")
        assert rig.runner.stop("bob") is not None
        row = await rig.answer_of("p1")
        assert row.answer == policy.user_stopped_answer("bob", "half")
        assert claude.spawned[0].interrupts == 1
        assert claude.spawned[0].alive  # same process, same session


@sync
async def test_the_watchdog_interrupts_a_silent_turn(tmp_path: Path) -> None:
    def on_user(child: ScriptedChild, text: str) -> None:
        return None  # never a word

    def on_interrupt(child: ScriptedChild) -> None:
        child.emit(result_event(None, subtype="error_during_execution"))

    claude = ScriptedClaude(on_user, on_interrupt)
    async with running(Rig(tmp_path, claude, idle_limit=0.05)) as rig:
        rig.prompt("p1", "hang")
        row = await rig.answer_of("p1")
        assert row.answer == policy.stopped_answer(0.05, False, "")
        assert rig.journal.count(State.QUEUED, State.RUNNING) == 0


@sync
async def test_a_claude_that_cannot_start_costs_the_waiting_prompt_its_tries(
    tmp_path: Path,
) -> None:
    def broken() -> ChildStartError:
        return ChildStartError("claude did not start", returncode=127, stderr_tail="/x: no such")

    claude = ScriptedClaude(start_failures=[broken(), broken()])
    rig = Rig(tmp_path, claude, max_tries=2)
    rig.prompt("p1", "hello")  # queued before the first spawn
    async with running(rig):
        row = await rig.answer_of("p1")
        assert row.answer == policy.not_started_answer(2, 127)
        assert row.is_error
        assert "/x" not in (row.answer or "")  # the paths stay in the log
        rig.prompt("p2", "later")  # the third spawn starts
        assert (await rig.answer_of("p2")).answer == "echo[later]"
        assert len(claude.spawned) == 3
