"""Contract test of the pinned real Claude Code CLI against the fake Anthropic API, offline.

What the bot relies on, checked on the real binary: one persistent process keeps context
across turns, `--resume` after SIGKILL restores it, and an interrupt ends a stalled turn with
`error_during_execution` while the process lives on. It also pins the fake claude's core event
sequence (system/init, assistant, result) to what the real CLI emits today.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import TYPE_CHECKING, Any

import pytest

from emulators.claude.testing import STREAM_JSON_FLAGS, StreamJsonProcess
from emulators.claude_cli import REAL_CLAUDE_ARGS, find_pinned_claude, real_claude_env

if TYPE_CHECKING:
    from pathlib import Path

    from tests.support import ProcessGroup

pytestmark = [pytest.mark.real_claude, pytest.mark.slow]

TURN_S = 30.0  # generous: a cold real CLI answers its first turn in ~0.6 s on 2 cores
FAKE_CORE = {("system", "init"), ("assistant", None), ("result", "success")}


def pinned_claude() -> str:
    """The pinned CLI, or skip (fail under CI: the contract must not silently vanish there)."""
    found = find_pinned_claude()
    if found is None:
        reason = "the pinned Claude Code CLI is not installed (run `npm ci` in the repo)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def core(events: list[dict[str, Any]]) -> list[tuple[object, object]]:
    """The events of a turn the fake claude also emits, as (type, subtype)."""
    pairs = [(e.get("type"), e.get("subtype")) for e in events]
    return [p for p in pairs if p in FAKE_CORE]


def turn(claude: StreamJsonProcess, text: str) -> dict[str, Any]:
    claude.user(text)
    events = claude.until_result(TURN_S)
    assert core(events) == [("system", "init"), ("assistant", None), ("result", "success")]
    return events[-1]


def test_real_cli_keeps_context_resumes_and_interrupts(tmp_path: Path, procs: ProcessGroup) -> None:
    """Real CLI: echo[1,3,5] in one process, echo[7] after SIGKILL + --resume, HANG interrupted."""
    binary = pinned_claude()
    api = procs.python("-m", "emulators.anthropic_api", "--port", "0", stdout=-1)
    assert api.stdout is not None
    url = json.loads(api.stdout.readline())["url"]
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = real_claude_env(url, str(home))
    args = [binary, *STREAM_JSON_FLAGS, *REAL_CLAUDE_ARGS]

    with StreamJsonProcess(args, env=env, cwd=str(work)) as claude:
        claude.control("initialize", "init_1")
        ready = claude.until("control_response", TURN_S)[-1]["response"]
        assert ready["subtype"] == "success"
        assert isinstance(ready["response"]["pid"], int)
        print(f"real claude: spawn -> initialize {time.monotonic() - claude.started:.2f} s")
        answers = [turn(claude, text) for text in ("one", "two", "three")]
        assert [a["result"] for a in answers] == ["echo[1]: one", "echo[3]: two", "echo[5]: three"]
        session_id = answers[-1]["session_id"]
        claude.signal(signal.SIGKILL)
        assert claude.wait() == -signal.SIGKILL

    with StreamJsonProcess([*args, "--resume", session_id], env=env, cwd=str(work)) as claude:
        assert turn(claude, "four")["result"] == "echo[7]: four"
        claude.user("HANG")
        claude.until("system", TURN_S, subtype="init")
        time.sleep(0.5)  # let the request reach the fake API and stall there
        claude.control("interrupt", "int_1")
        events = claude.until_result(TURN_S)
        result = events[-1]
        assert (result["subtype"], result["is_error"]) == ("error_during_execution", True)
        assert any(e["type"] == "control_response" for e in events)
        assert claude.proc.poll() is None
        # HANG and the interrupt marker merge with the next prompt into one message: N = 9.
        assert turn(claude, "after")["result"].startswith("echo[9]: ")
        claude.close_stdin()
        assert claude.wait(TURN_S) == 0
