"""The claude child without a process: its command line, environment and stdout routing."""

from __future__ import annotations

import asyncio
import json

from session_worker.child import ClaudeChild, claude_argv, claude_command, claude_env
from session_worker.config import WorkerConfig
from session_worker.errors import ChildProtocolError
from session_worker.ndjson import NO_CONVERSATION


def cfg(*, live: bool = True, mode: str = "default") -> WorkerConfig:
    return WorkerConfig(
        state_dir="/s",
        claude_path="/bin/claude",
        claude_args=("--model", "m1"),
        claude_workdir="/w",
        endpoint="ipc:///x",
        live=live,
        permission_mode=mode,
    )


def test_the_command_line_is_stream_json_with_stdio_approvals() -> None:
    argv = claude_argv(cfg(), None)
    assert argv[:2] == ["/bin/claude", "-p"]
    for pair in (
        ["--input-format", "stream-json"],
        ["--output-format", "stream-json"],
        ["--permission-prompt-tool", "stdio"],
        ["--permission-mode", "default"],
    ):
        i = argv.index(pair[0])
        assert argv[i : i + 2] == pair
    assert "--verbose" in argv
    assert "--include-partial-messages" in argv
    assert "--resume" not in argv
    assert argv[-2:] == ["--model", "m1"]  # the operator's own arguments come last


def test_a_known_session_is_resumed() -> None:
    argv = claude_argv(cfg(), "abc-123")
    i = argv.index("--resume")
    assert argv[i + 1] == "abc-123"


def test_the_mode_chosen_in_the_thread_wins_over_the_configured_one() -> None:
    argv = claude_argv(cfg(mode="plan"), None, "acceptEdits")
    assert argv[argv.index("--permission-mode") + 1] == "acceptEdits"
    assert claude_argv(cfg(mode="plan"), None)[-4:-2] == ["--permission-mode", "plan"]


def test_no_partial_messages_without_live_activity() -> None:
    assert "--include-partial-messages" not in claude_argv(cfg(live=False), None)
    assert "--permission-mode" not in claude_command("c", (), None, None)


def test_claude_never_sees_a_mattermost_variable() -> None:
    env = claude_env({"PATH": "/bin", "MATTERMOST_TOKEN": "t", "MATTERMOST_URL": "u", "HOME": "/h"})
    assert env == {"PATH": "/bin", "HOME": "/h"}


def test_the_stdout_reader_routes_lines_without_a_process() -> None:
    """Turn events reach a listening turn, are dropped between turns, the no-conversation
    result is noticed either way, and a malformed line is only counted."""

    async def scenario() -> None:
        child = ClaudeChild(cfg(), "gone")
        result = {"type": "result", "subtype": "error", "errors": [f"{NO_CONVERSATION} gone"]}
        await child._dispatch(json.dumps(result).encode())
        assert child.no_conversation
        assert child.dropped_idle == 1  # nobody listened
        child.listening = True
        await child._dispatch(b'{"type": "assistant", "message": {"content": "hi"}}')
        event = await child.next_event(timeout=1.0)
        assert event is not None
        assert event["type"] == "assistant"
        child._bad_line(ChildProtocolError("not json"))
        assert child.bad_lines == 1

    asyncio.run(scenario())
