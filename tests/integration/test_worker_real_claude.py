"""The worker with the pinned real Claude Code CLI against the fake Anthropic API.

This is the contract test of the claude child: the real stream-json dialect, the real
``initialize`` probe, and ``--resume`` of the real transcript after a SIGKILL.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import TYPE_CHECKING

import pytest

from emulators.anthropic_api import REAL_CLAUDE_ARGS, find_pinned_claude, real_claude_env
from emulators.anthropic_api.server import open_anthropic_api
from tests.integration.test_worker import WorkerRig, answer_of, welcomed
from tests.support import pid_alive

if TYPE_CHECKING:
    from pathlib import Path

    from tests.support import ProcessGroup

pytestmark = [pytest.mark.slow, pytest.mark.real_claude]


def pinned_claude() -> str:
    path = find_pinned_claude()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("the pinned Claude Code CLI is missing (run `npm ci`)")
        pytest.skip("the pinned Claude Code CLI is not installed (node_modules/.bin/claude)")
    return path


def test_real_claude_keeps_context_across_a_sigkill(short_tmp: Path, procs: ProcessGroup) -> None:
    """Three turns, SIGKILL of claude, a fourth turn: the resumed session still has them."""
    claude = pinned_claude()
    rig = WorkerRig(short_tmp, procs)
    home = short_tmp / "home"
    home.mkdir()

    async def scenario() -> None:
        async with open_anthropic_api(port=0) as api:
            rig.start(
                env=real_claude_env(api.url, str(home)),
                claude_path=claude,
                claude_args=REAL_CLAUDE_ARGS,
            )
            with rig.gateway() as gw:
                await welcomed(gw, timeout=30)
                for n, post in ((1, "p1"), (3, "p2"), (5, "p3")):
                    gw.prompt(post, f"message {post}")
                    answer = await answer_of(gw, post, timeout=60)
                    assert answer.text == f"echo[{n}]: message {post}", answer
                first = rig.claude_pid()
                os.kill(first, signal.SIGKILL)
                await gw.wait_for(lambda g: rig.claude_pid() != first, 30, "a new claude")
                assert not pid_alive(first)
                gw.prompt("p4", "after the kill")
                answer = await answer_of(gw, "p4", timeout=60)
                assert answer.text == "echo[7]: after the kill", answer

    asyncio.run(scenario())
    assert rig.events("session.resumed")
    assert rig.stop() == 0
