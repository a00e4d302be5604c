"""The fake claude as a process: startup, control channel, bad input, queueing, EOF, signals."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from emulators.claude.testing import StreamJsonProcess
from tests.support import wait_for

if TYPE_CHECKING:
    from tests.integration.emulators.conftest import SpawnFakeClaude

pytestmark = pytest.mark.slow


def catches(pid: int, signum: int) -> bool:
    """True once ``pid`` has a handler for ``signum`` (SigCgt in /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


def results(events: list[dict[str, object]]) -> list[object]:
    return [e.get("result") for e in events if e["type"] == "result"]


def test_startup_time_and_initialize(fake_claude: SpawnFakeClaude) -> None:
    """`initialize` is answered with our pid after spawn (the time is printed, not judged:
    benchmarks measure)."""
    claude = fake_claude()
    claude.control("initialize", "init_1")
    response = claude.until("control_response")[-1]
    elapsed = time.monotonic() - claude.started
    print(f"fake claude: spawn -> initialize answered in {elapsed * 1000:.0f} ms")
    body = response["response"]
    assert body["subtype"] == "success"
    assert body["request_id"] == "init_1"
    assert body["response"]["pid"] == claude.pid
    assert {"commands", "models", "account", "claude_code_version"} <= set(body["response"])


def test_silent_until_first_line(fake_claude: SpawnFakeClaude) -> None:
    """Nothing is written on stdout before the first stdin line, as with the real CLI."""
    claude = fake_claude()
    with pytest.raises(AssertionError, match="no stdout line"):
        claude.next_line(timeout=0.3)
    claude.control("mcp_status", "m1")
    assert claude.next_event()["response"]["response"] == {"mcpServers": []}  # type: ignore[index]


def test_control_requests_and_ignored_lines(fake_claude: SpawnFakeClaude) -> None:
    """Unknown subtypes get an error reply; blank lines, keep_alive, arrays, unknown types don't."""
    claude = fake_claude()
    claude.send_raw(b"\n   \n")
    claude.send({"type": "keep_alive"})
    claude.send({"type": "foo", "x": 1})
    claude.send([1, 2, 3])
    claude.send({"type": "control_response", "response": {"request_id": "nobody"}})
    claude.control("bogus_subtype", "req_6")
    assert claude.next_event() == {
        "type": "control_response",
        "response": {
            "subtype": "error",
            "request_id": "req_6",
            "error": "Unsupported control request subtype: bogus_subtype",
        },
    }
    claude.control("interrupt", "idle_int")  # harmless when idle
    assert claude.next_event()["response"]["subtype"] == "success"  # type: ignore[index]
    claude.user("still alive")
    assert results(claude.until_result()) == ["echo[1]: still alive"]


def test_requires_verbose(tmp_path: Path) -> None:
    """Without --verbose, stream-json output is refused with exit 1, like the real CLI."""
    args = [sys.executable, "-m", "emulators.claude", "-p", "--output-format", "stream-json"]
    with StreamJsonProcess([*args, "--input-format", "stream-json"], cwd=str(tmp_path)) as claude:
        assert claude.wait() == 1
        assert claude.read_to_eof() == []
        assert "requires --verbose" in claude.stderr


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"this is not json\n", "Error parsing streaming input line"),
        (b'{"type":"user"}\n', "Expected message role 'user', got 'undefined'"),
        (
            b'{"type":"user","message":{"role":"assistant","content":"hi"}}\n',
            "Expected message role 'user', got 'assistant'",
        ),
        (b'{"type":"control_request","request_id":"r1"}\n', "Missing request on control_request"),
        (b'{"type":"user","message":{"role":"us', "Error parsing streaming input line"),
    ],
)
def test_malformed_line_kills(fake_claude: SpawnFakeClaude, line: bytes, reason: str) -> None:
    """A malformed stdin line ends the process with exit 1, the reason on stderr, no stdout."""
    claude = fake_claude()
    claude.send_raw(line)
    claude.close_stdin()  # the truncated case only fails at EOF
    assert claude.wait() == 1
    assert claude.read_to_eof() == []
    assert not claude.garbage
    assert reason in claude.stderr


def test_mid_turn_messages_merge_into_one_turn(fake_claude: SpawnFakeClaude) -> None:
    """Messages sent while a turn runs are queued and answered as one merged turn."""
    claude = fake_claude()
    claude.user("SLOW:0.5 a")
    claude.until("system", subtype="init")
    claude.user("b")
    claude.user("c")
    first = claude.until_result()
    second = claude.until_result()
    assert results(first) == ["echo[1]: SLOW:0.5 a"]
    assert results(second) == ["echo[3]: b\nc"]
    with pytest.raises(AssertionError, match="no stdout line"):
        claude.next_line(timeout=0.2)  # exactly one result per merged batch


def test_eof_finishes_queued_turns_then_exits(fake_claude: SpawnFakeClaude) -> None:
    """On stdin EOF the running and queued turns complete, then the exit status is 0."""
    claude = fake_claude()
    claude.user("SLOW:0.3 one")
    claude.until("system", subtype="init")
    claude.user("two")
    claude.close_stdin()
    events = claude.read_to_eof()
    assert results(events) == ["echo[1]: SLOW:0.3 one", "echo[3]: two"]
    assert claude.wait() == 0


def test_eof_after_error_result_exits_1(fake_claude: SpawnFakeClaude) -> None:
    """If the last result had is_error, the exit status after EOF is 1."""
    claude = fake_claude(env={"CLAUDE_CODE_MAX_RETRIES": "0"})
    claude.user("ERROR now")
    claude.close_stdin()
    assert results(claude.read_to_eof()) == ["API Error: 500 fake"]
    assert claude.wait() == 1


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_signal_exits_promptly_mid_turn(
    fake_claude: SpawnFakeClaude, signum: signal.Signals, status: int
) -> None:
    """SIGTERM (SIGHUP) mid-turn exits 143 (129) at once, without a result."""
    claude = fake_claude()
    claude.user("HANG")
    claude.until("system", subtype="init")
    sent = time.monotonic()
    claude.signal(signum)
    assert claude.wait(timeout=2) == status
    print(f"fake claude: signal -> exit in {(time.monotonic() - sent) * 1000:.0f} ms")
    assert all(e["type"] != "result" for e in claude.read_to_eof())


def test_sigterm_when_idle(fake_claude: SpawnFakeClaude) -> None:
    """SIGTERM of an idle process (never written to) exits 143."""
    claude = fake_claude()
    wait_for(lambda: catches(claude.pid, signal.SIGTERM), 10, "its SIGTERM handler")
    claude.signal(signal.SIGTERM)
    assert claude.wait(timeout=2) == 143


def test_per_turn_time(fake_claude: SpawnFakeClaude) -> None:
    """Twenty turns in one process, each answered (the median time is printed, not judged)."""
    claude = fake_claude()
    claude.user("warm-up")
    claude.until_result()
    times = []
    for i in range(20):
        sent = time.monotonic()
        claude.user(f"turn {i}")
        claude.until_result()
        times.append(time.monotonic() - sent)
    median = sorted(times)[len(times) // 2]
    print(f"fake claude: per-turn median {median * 1000:.1f} ms, max {max(times) * 1000:.1f} ms")
    assert len(times) == 20


def test_content_blocks_are_joined(fake_claude: SpawnFakeClaude) -> None:
    """A user message whose content is a list of text blocks is answered with their texts,
    then one line per image block (so a test sees which images reached the model)."""
    claude = fake_claude()
    png = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
    content = [
        {"type": "text", "text": "one"},
        {"type": "image", "source": png},
        {"type": "text", "text": "two"},
    ]
    claude.send({"type": "user", "message": {"role": "user", "content": content}})
    assert results(claude.until_result()) == ["echo[1]: one\ntwo\n[image image/png 8 bytes]"]
    assert json.loads(json.dumps(claude.events))  # every event is plain JSON
