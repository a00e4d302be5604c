"""Approvals, questions and !stop with the pinned real Claude Code CLI against the fake API.

The fake API answers ``BASH:cmd`` with a Bash tool_use, so the real CLI asks ``can_use_tool``
through the worker: allowed, the command really runs (its output comes back in the answer);
denied, Claude is told no. AskUserQuestion needs the CLI without ``--bare``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from emulators.anthropic_api import REAL_CLAUDE_ARGS, real_claude_env
from emulators.anthropic_api.server import open_anthropic_api
from tests.integration.test_worker import WorkerRig, answer_of, turn_started, welcomed
from tests.integration.test_worker_real_claude import pinned_claude

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from protocol import ApprovalShow
    from session_worker.testing import FakeGateway
    from tests.support import ProcessGroup

# The real CLI answers an interrupt in well under a second; on a loaded 2-core machine it can
# take longer than the fake-claude tests' 2 s grace, after which the worker would kill it.
REAL_GRACE = 15.0

pytestmark = [pytest.mark.slow, pytest.mark.real_claude]


async def pending(gw: FakeGateway, seen: int = 0) -> ApprovalShow:
    found = await gw.wait_for(lambda g: g.approvals("pending")[seen:], 60, "a pending approval")
    return found[0]


def test_real_cli_asks_and_obeys_allow_and_deny(short_tmp: Path, procs: ProcessGroup) -> None:
    claude = pinned_claude()
    rig = WorkerRig(short_tmp, procs)
    home = short_tmp / "home"
    home.mkdir()
    marker = short_tmp / "work" / "ran.txt"

    async def scenario() -> None:
        async with open_anthropic_api(port=0) as api:
            rig.start(
                interrupt_grace=REAL_GRACE,
                env=real_claude_env(api.url, str(home)),
                claude_path=claude,
                claude_args=REAL_CLAUDE_ARGS,
            )
            with rig.gateway() as gw:
                await welcomed(gw, timeout=30)
                gw.prompt("p1", f"BASH:echo ran-$((6*7)) | tee {marker}")
                first = await pending(gw)
                assert "`Bash`" in first.text
                assert f"echo ran-$((6*7)) | tee {marker}" in first.text
                assert not marker.exists()
                gw.decide(first.request_id, "allow")
                answer = await answer_of(gw, "p1", timeout=60)
                assert answer.text == "tool_result: ran-42", answer
                assert marker.read_text().strip() == "ran-42"

                gw.prompt("p2", f"BASH:rm {marker}")
                second = await pending(gw, seen=1)
                gw.command("c1", "deny", "not today")
                answer = await answer_of(gw, "p2", timeout=60)
                assert answer.text.startswith("tool_result[error]:"), answer
                assert "not today" in answer.text
                assert marker.exists()
                assert second.request_id != first.request_id

                # !stop while the CLI waits for a decision: it withdraws the request.
                gw.prompt("p3", f"BASH:rm -f {marker}")
                await pending(gw, seen=2)
                gw.command("c2", "stop")
                stopped = await answer_of(gw, "p3", timeout=60)
                assert "Stopped by @alice" in stopped.text
                await gw.wait_for(lambda g: g.approvals("withdrawn"), 10, "withdrawn")
                assert marker.exists()

    asyncio.run(scenario())


def test_real_cli_question_and_stop(short_tmp: Path, procs: ProcessGroup) -> None:
    """Without --bare: AskUserQuestion answered with !answer 2; then !stop of a slow turn
    keeps the claude pid and the session."""
    claude = pinned_claude()
    rig = WorkerRig(short_tmp, procs)
    home = short_tmp / "home"
    home.mkdir()

    async def scenario() -> None:
        async with open_anthropic_api(port=0) as api:
            rig.start(
                interrupt_grace=REAL_GRACE,
                env=real_claude_env(api.url, str(home)),
                claude_path=claude,
            )
            with rig.gateway() as gw:
                await welcomed(gw, timeout=30)
                gw.prompt("p1", "ASKUSER")
                question = await pending(gw)
                assert question.kind == "question"
                assert "2. Blue" in question.text
                gw.command("c1", "answer", "2")
                answer = await answer_of(gw, "p1", timeout=60)
                assert "Blue" in answer.text, answer

                gw.prompt("p2", "SLOW:20")
                await gw.wait_for(lambda g: turn_started(rig, "p2"), 30, "p2 running")
                pid = rig.claude_pid()
                gw.command("c2", "stop")
                stopped = await answer_of(gw, "p2", timeout=30)
                assert "Stopped by @alice" in stopped.text
                gw.prompt("p3", "after stop")
                after = await answer_of(gw, "p3", timeout=60)
                assert "after stop" in after.text
                assert rig.claude_pid() == pid

    asyncio.run(scenario())


def confirmed(rig: WorkerRig, name: str) -> Callable[[FakeGateway], bool]:
    """The worker logged ``name`` with ok=true (the CLI accepted the control request)."""
    return lambda _gw: any(e.get("ok") for e in rig.events(name))


def test_real_cli_model_and_mode(short_tmp: Path, procs: ProcessGroup) -> None:
    """!model reaches the real CLI (set_model: the next API request names that model);
    !mode acceptEdits is accepted by it."""
    claude = pinned_claude()
    rig = WorkerRig(short_tmp, procs)
    home = short_tmp / "home"
    home.mkdir()

    async def scenario() -> None:
        async with open_anthropic_api(port=0) as api:
            rig.start(
                interrupt_grace=REAL_GRACE,
                env=real_claude_env(api.url, str(home)),
                claude_path=claude,
                claude_args=REAL_CLAUDE_ARGS,
            )
            with rig.gateway() as gw:
                await welcomed(gw, timeout=30)
                # A running claude: the commands reach it by control requests, not by argv.
                await gw.wait_for(lambda g: rig.events("claude.spawned"), 60, "claude up")
                gw.command("c1", "model", "claude-sonnet-4-5")
                await answer_of(gw, "c1")
                gw.command("c2", "mode", "acceptEdits")
                await answer_of(gw, "c2")
                gw.prompt("p1", "which model")
                assert (await answer_of(gw, "p1", timeout=60)).text.startswith("echo[")
                assert api.requests[-1].get("model") == "claude-sonnet-4-5"
                for name in ("claude.mode_set", "claude.model_set"):
                    await gw.wait_for(confirmed(rig, name), 10, name)

    asyncio.run(scenario())
