"""The fake claude's prompt keywords: SLOW, HANG, CRASH, CRASHONCE, LONG, ERROR, TOOL, GARBAGE."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import TYPE_CHECKING

import pytest

from tests.support import pid_alive

if TYPE_CHECKING:
    from tests.integration.emulators.conftest import SpawnFakeClaude

pytestmark = pytest.mark.slow


def last_result(events: list[dict[str, object]]) -> dict[str, object]:
    assert events[-1]["type"] == "result"
    return events[-1]


def test_slow_waits_float_seconds(fake_claude: SpawnFakeClaude) -> None:
    """SLOW:0.4 delays the answer by about 0.4 s."""
    claude = fake_claude()
    sent = time.monotonic()
    claude.user("SLOW:0.4 x")
    result = last_result(claude.until_result())
    assert time.monotonic() - sent >= 0.4
    assert result["result"] == "echo[1]: SLOW:0.4 x"


def test_delay_env_adds_per_turn_delay(fake_claude: SpawnFakeClaude) -> None:
    """FAKE_CLAUDE_DELAY_MS adds a fixed delay to every turn."""
    claude = fake_claude(env={"FAKE_CLAUDE_DELAY_MS": "300"})
    for text in ("a", "b"):
        sent = time.monotonic()
        claude.user(text)
        claude.until_result()
        assert time.monotonic() - sent >= 0.3


def test_hang_until_interrupted_then_lives_on(fake_claude: SpawnFakeClaude) -> None:
    """HANG is silent until an interrupt, which ends it with the marker and an aborted result."""
    claude = fake_claude()
    claude.user("one")
    claude.until_result()
    claude.user("HANG")
    claude.until("system", subtype="init")
    with pytest.raises(AssertionError, match="no stdout line"):
        claude.next_line(timeout=0.5)
    claude.control("interrupt", "int_1")
    events = claude.until_result()
    assert [e["type"] for e in events] == ["control_response", "user", "result"]
    assert events[1]["message"]["content"][0]["text"] == "[Request interrupted by user]"
    result = events[-1]
    assert (result["subtype"], result["is_error"], result["terminal_reason"]) == (
        "error_during_execution",
        True,
        "aborted_streaming",
    )
    claude.user("after")
    # The real CLI merges HANG, the marker and "after" into one API message: N is 3.
    assert last_result(claude.until_result())["result"] == "echo[3]: after"


def test_crash_exits_3_after_init_every_time(fake_claude: SpawnFakeClaude) -> None:
    """CRASH exits with status 3 right after system/init, also when resumed and asked again."""
    claude = fake_claude()
    claude.user("first")
    session_id = claude.until_result()[-1]["session_id"]
    for attempt in range(2):
        claude.user("CRASH now")
        events = claude.read_to_eof()
        assert [(e["type"], e.get("subtype")) for e in events] == [("system", "init")]
        assert claude.wait() == 3, attempt
        claude = fake_claude("--resume", str(session_id))
    claude.user("then")
    # The crashed turns were not recorded: only "first" and its answer precede.
    assert last_result(claude.until_result())["result"] == "echo[3]: then"


def test_crashonce_crashes_only_first_time(fake_claude: SpawnFakeClaude) -> None:
    """CRASHONCE crashes the first time this prompt is seen; the retry after resume answers."""
    claude = fake_claude()
    claude.user("CRASHONCE hello")
    claude.read_to_eof()
    assert claude.wait() == 3
    session_id = claude.events[0]["session_id"]
    claude = fake_claude("--resume", str(session_id))
    claude.user("CRASHONCE hello")
    assert last_result(claude.until_result())["result"] == "echo[1]: CRASHONCE hello"
    claude.user("CRASHONCE other text")  # a different prompt crashes once too
    claude.read_to_eof()
    assert claude.wait() == 3


def test_long_answer_exact_size_one_line(fake_claude: SpawnFakeClaude) -> None:
    """LONG:1000000 answers exactly 1,000,000 characters with newlines, each event one line."""
    claude = fake_claude()
    claude.user("LONG:1000000")
    result = last_result(claude.until_result())
    text = str(result["result"])
    assert len(text) == 1_000_000
    assert text.startswith("echo[1]: ")
    assert 12_000 < text.count("\n") < 13_000  # about one every 80 characters
    assert claude.events[-2]["message"]["content"][0]["text"] == text
    claude.user("LONG:5")
    assert last_result(claude.until_result())["result"] == "echo["


def test_error_result_and_context(fake_claude: SpawnFakeClaude) -> None:
    """ERROR gives is_error with "API Error: 500 fake", keeps the process and the prompt."""
    claude = fake_claude(env={"CLAUDE_CODE_MAX_RETRIES": "1"})
    claude.user("ERROR please")
    events = claude.until_result()
    assert [(e["type"], e.get("subtype")) for e in events] == [
        ("system", "init"),
        ("system", "api_retry"),
        ("assistant", None),
        ("result", "success"),
    ]
    result = events[-1]
    assert (result["is_error"], result["result"], result["api_error_status"]) == (
        True,
        "API Error: 500 fake",
        500,
    )
    claude.user("next")
    # As with the real CLI, the failed prompt stays and merges with the next one.
    assert last_result(claude.until_result())["result"] == "echo[1]: next"


def test_tool_grandchild_outlives_claude(fake_claude: SpawnFakeClaude) -> None:
    """TOOL starts a setsid'd `sleep 300` that survives the fake claude's SIGKILL."""
    claude = fake_claude()
    claude.user("TOOL")
    events = claude.until_result()
    text = str(last_result(events)["result"])
    pid = int(text.rsplit("tool-pid=", 1)[1])
    try:
        assert events[1]["message"]["content"][0]["type"] == "tool_use"
        assert events[2]["message"]["content"][0]["content"] == f"tool-pid={pid}"
        assert os.getsid(pid) == pid  # its own session, out of claude's process group
        claude.close()
        time.sleep(0.1)
        assert pid_alive(pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def test_garbage_lines_before_answer(fake_claude: SpawnFakeClaude) -> None:
    """GARBAGE writes non-JSON and truncated JSON lines, then answers normally."""
    claude = fake_claude()
    claude.user("GARBAGE")
    result = last_result(claude.until_result())
    assert result["result"] == "echo[1]: GARBAGE"
    assert len(claude.garbage) >= 3
    assert any(line.startswith(b'{"type":"assistant"') for line in claude.garbage)
