"""The worker's bounds against a claude that writes enormous stdout lines: a line over the
limit is skipped without ever being held whole, the turn is answered saying so, and the
same claude process and session go on. The rig is the one of ``test_worker.py``."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from session_worker.child import ClaudeChild
from session_worker.testing import worker_config
from tests.integration.test_worker import WorkerRig, answer_of, welcomed
from tests.support import REPO

if TYPE_CHECKING:
    from tests.support import ProcessGroup

pytestmark = pytest.mark.slow

HUGE = 100 * 1024 * 1024  # the size that took the worker to 241 MB RSS before the limit


@pytest.fixture
def rig(short_tmp: Path, procs: ProcessGroup) -> WorkerRig:
    return WorkerRig(short_tmp, procs)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_an_overlong_line_is_skipped_and_the_session_goes_on(rig: WorkerRig) -> None:
    """A 100 MB tool-result line: skipped, noted under the answer. A 100 MB result line: that
    turn is answered at once with the reason. The worker's memory stays far below the line's
    size, and the next prompt is answered by the same claude in the same conversation."""
    wrapper = rig.dir / "overlong-claude"
    wrapper.write_text(
        f'#!/bin/sh\nexport PYTHONPATH="{REPO}"\n'
        f'exec "{sys.executable}" -m tests.chaos.overlong_claude "$@"\n'
    )
    wrapper.chmod(0o755)
    worker = rig.start(claude_path=wrapper, env={**os.environ, "OVERLONG_BYTES": str(HUGE)})

    async def scenario() -> None:
        with rig.gateway() as gw:
            await welcomed(gw)
            gw.prompt("p1", "HUGEUSER one")
            first = await answer_of(gw, "p1", timeout=60)
            assert first.text.startswith("echo[1]: HUGEUSER one")
            assert "over the bot's limit of 16.0 MB; skipped" in first.text
            assert not first.is_error
            pid = rig.claude_pid()
            gw.prompt("p2", "HUGERESULT two")
            second = await answer_of(gw, "p2", timeout=60)
            assert second.is_error
            assert "could not be read: its output line was 100.0 MB" in second.text
            gw.prompt("p3", "three")
            third = await answer_of(gw, "p3", timeout=30)
            assert third.text == "echo[5]: three"  # the same conversation: turns 1, 3, 5
            assert rig.claude_pid() == pid

    asyncio.run(scenario())
    peak = peak_rss_mb(worker.pid)
    print(f"worker peak RSS {peak:.0f} MB after two {HUGE >> 20} MB lines")
    # ~50 MB measured (the worker's own ~45 MB, plus at most one 16 MB line); 241 MB before
    # the limit, when the whole line was buffered and decoded.
    assert peak < 90
    assert len(rig.events("claude.line_too_long")) == 2
    assert not rig.events("claude.restarted")
    assert rig.stop() == 0


IDLE_CHATTER = """
import json, sys
request = json.loads(sys.stdin.readline())
print(json.dumps({"type": "control_response", "response": {
    "subtype": "success", "request_id": request["request_id"], "response": {}}}), flush=True)
event = json.dumps({"type": "assistant", "message": {"content": "x" * 1000}})
for _ in range(%d):
    print(event)
sys.stdout.flush()
"""


def test_events_written_between_turns_are_not_kept(short_tmp: Path) -> None:
    """A claude that writes turn events while no turn runs: they are dropped as they come
    (counted), not queued in the worker until the next turn."""
    count = 20_000
    script = short_tmp / "chatty.py"
    script.write_text(IDLE_CHATTER % count)
    wrapper = short_tmp / "chatty"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{script}"\n')
    wrapper.chmod(0o755)
    config = worker_config(short_tmp, claude_path=str(wrapper))

    async def scenario() -> None:
        child = ClaudeChild(config, None)
        try:
            await child.start(timeout=20)
            await asyncio.wait_for(child.wait_eof(), 30)
            assert child.drain() == 0
            assert child.dropped_idle == count
        finally:
            await child.stop()

    asyncio.run(scenario())
