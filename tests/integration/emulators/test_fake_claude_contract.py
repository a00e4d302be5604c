"""The fake claude's event streams against the recorded real ones (CLI 2.1.197, `--bare`).

For each scenario the fake must produce the same sequence of event types and subtypes, with the
same key lists (in order) per event and per nested `message`, as the fixture recorded from the
real binary. Values (ids, timings, texts) are not compared.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from typing import TYPE_CHECKING, Any

import pytest

from tests.support import FIXTURES

if TYPE_CHECKING:
    from tests.integration.emulators.conftest import SpawnFakeClaude

pytestmark = pytest.mark.slow

# Events that only exist with --include-partial-messages, which the fake does not implement.
PARTIAL_ONLY = {("stream_event", None), ("system", "status")}


def shape(event: dict[str, Any]) -> tuple[object, ...]:
    """What must match: type, subtype, key lists of the event and of its message."""
    message = event.get("message")
    message_keys = list(message) if isinstance(message, dict) else None
    response = event.get("response")
    response_keys = list(response) if isinstance(response, dict) else None
    return (event.get("type"), event.get("subtype"), list(event), message_keys, response_keys)


def recorded(name: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The events of a fixture (partial-message events dropped) and its final status line."""
    path = FIXTURES / name
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    events = [
        line["ev"]
        for line in lines
        if "ev" in line and (line["ev"]["type"], line["ev"].get("subtype")) not in PARTIAL_ONLY
    ]
    return events, lines[-1]


def assert_same_shapes(fake: list[dict[str, Any]], real: list[dict[str, Any]]) -> None:
    assert [shape(e) for e in fake] == [shape(e) for e in real]


def test_echo_two_turns_matches_recording(fake_claude: SpawnFakeClaude) -> None:
    """initialize plus two turns then EOF gives the recorded events, and exit status 0."""
    real, status = recorded("echo-two-turns-2.1.197.jsonl")
    claude = fake_claude()
    claude.control("initialize", "init_1")
    events = claude.until("control_response")
    claude.user("first message")
    events += claude.until_result()
    claude.user("second message")
    events += claude.until_result()
    claude.close_stdin()
    events += claude.read_to_eof()
    # initialize's body is checked separately: 2.1.197 had no claude_code_version there.
    assert [shape(e) for e in events[1:]] == [shape(e) for e in real[1:]]
    assert shape(events[0])[:3] == shape(real[0])[:3]
    assert set(real[0]["response"]["response"]) <= set(events[0]["response"]["response"])
    assert [e["result"] for e in events if e["type"] == "result"] == [
        "echo[1]: first message",
        "echo[3]: second message",
    ]
    assert claude.wait() == status["rc"] == 0


def test_interrupt_matches_recording(fake_claude: SpawnFakeClaude) -> None:
    """An interrupt mid-answer gives control_response, partial assistant, marker, error result."""
    real, status = recorded("interrupt-2.1.197.jsonl")
    real_330, _ = recorded("interrupt-2.1.330.jsonl")
    claude = fake_claude()
    claude.user("SLOW:5 slow answer")
    events = claude.until("system", subtype="init")
    time.sleep(0.3)
    claude.control("interrupt", "int_1")
    events += claude.until_result()
    claude.user("after interrupt")
    events += claude.until_result()
    claude.close_stdin()
    events += claude.read_to_eof()
    # The fake answers interrupt like 2.1.330 ({"still_queued": []}, a superset of 2.1.197's
    # body-less success), so the control_response is compared with that recording.
    response = next(e for e in events if e["type"] == "control_response")
    response_330 = next(e for e in real_330 if e["type"] == "control_response")
    assert list(response["response"]) == list(response_330["response"])
    drop = [e for e in events if e["type"] != "control_response"]
    assert_same_shapes(drop, [e for e in real if e["type"] != "control_response"])
    assert [e["type"] for e in events].index("control_response") == [e["type"] for e in real].index(
        "control_response"
    )
    aborted = next(e for e in events if e["type"] == "result")
    assert aborted["subtype"] == "error_during_execution"
    assert aborted["terminal_reason"] == "aborted_streaming"
    assert events[-1]["result"] == "echo[3]: after interrupt"
    assert claude.wait() == status["rc"] == 0


def test_api_error_matches_recording(fake_claude: SpawnFakeClaude) -> None:
    """ERROR gives retries, a <synthetic> assistant and an is_error success result; EOF exits 1."""
    real, status = recorded("api-error-500-2.1.197.jsonl")
    claude = fake_claude(env={"CLAUDE_CODE_MAX_RETRIES": "2"})  # as when it was recorded
    claude.user("please ERROR")
    events = claude.until_result()
    claude.close_stdin()
    events += claude.read_to_eof()
    assert_same_shapes(events, real)
    assert events[-1]["result"] == "API Error: 500 fake"
    assert events[-1]["is_error"] is True
    assert events[-2]["message"]["model"] == "<synthetic>"
    assert claude.wait() == status["rc"] == 1


def test_resume_matches_recording(fake_claude: SpawnFakeClaude) -> None:
    """A resumed session's turn has the recorded shape and continues the count."""
    real, status = recorded("resume-2.1.197.jsonl")
    first = fake_claude()
    first.user("one")
    session_id = first.until_result()[-1]["session_id"]
    first.close_stdin()
    assert first.wait() == 0
    resumed = fake_claude("--resume", session_id)
    resumed.user("two")
    events = resumed.until_result()
    resumed.close_stdin()
    events += resumed.read_to_eof()
    assert_same_shapes(events, real)
    assert events[-1]["result"] == "echo[3]: two"
    assert events[-1]["session_id"] == session_id
    assert resumed.wait() == status["rc"]


def test_resume_unknown_matches_recording(fake_claude: SpawnFakeClaude) -> None:
    """--resume of an unknown id writes the error result at startup, says why, and exits 1."""
    real, status = recorded("resume-unknown-session-2.1.197.jsonl")
    missing = "00000000-0000-4000-8000-000000000000"
    claude = fake_claude("--resume", missing)
    events = claude.read_to_eof()
    assert_same_shapes(events, real)
    assert events[0]["errors"] == [f"No conversation found with session ID: {missing}"]
    assert claude.wait() == status["rc"] == 1
    assert claude.stderr == status["stderr"]


def test_tool_matches_recording(fake_claude: SpawnFakeClaude) -> None:
    """TOOL's tool_use/tool_result round trip has the recorded shape (minus the permission ask)."""
    real, _ = recorded("permission-allow-2.1.197.jsonl")
    claude = fake_claude()
    claude.user("TOOL please")
    events = claude.until_result()
    tool_pid = int(events[-1]["result"].rsplit("tool-pid=", 1)[1])
    with contextlib.suppress(ProcessLookupError):
        os.killpg(tool_pid, signal.SIGKILL)  # setsid'd: its own group, outside the fixture's
    # Without --permission-prompt-tool the fake never asks, so the control_request is absent.
    assert_same_shapes(events, [e for e in real if e["type"] != "control_request"])
    assert events[-1]["num_turns"] == 2
