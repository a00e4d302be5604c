"""The pure parts of the claude child: its command line and its environment."""

from __future__ import annotations

from session_worker.child import claude_argv, claude_command, claude_env
from session_worker.config import WorkerConfig


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
