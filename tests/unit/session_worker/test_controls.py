"""The worker's controls without processes: commands and the approval book over a real
journal (SQLite in a temp dir) and a recording fake of the runner."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from session_worker.config import WorkerConfig
from session_worker.controls import Controls, help_text
from session_worker.journal import Journal
from session_worker.states import PromptRow

if TYPE_CHECKING:
    from pathlib import Path

    from session_worker.approvals import Approval
    from session_worker.runner import TurnHooks


class NoHooks:
    def tool_requested(self, row: PromptRow, event: dict[str, Any]) -> None:
        return None

    def tool_cancelled(self, request_id: str) -> None:
        return None

    def turn_ended(self, row: PromptRow, completed: bool) -> None:
        return None

    def waiting(self) -> bool:
        return False


class FakeRunner:
    """Records what the controls ask of claude."""

    def __init__(self) -> None:
        self.hooks: TurnHooks = NoHooks()
        self.current: PromptRow | None = None
        self.turn_started = 0.0
        self.restarts = 0
        self.model: str | None = None
        self.mode = "default"
        self.calls: list[tuple[str, Any]] = []

    @property
    def permission_mode(self) -> str:
        return self.mode

    @property
    def claude_pid(self) -> int | None:
        return 4242

    def stop(self, who: str) -> PromptRow | None:
        self.calls.append(("stop", who))
        return self.current

    def apply_model(self) -> None:
        self.calls.append(("model", None))

    def apply_mode(self) -> None:
        self.calls.append(("mode", None))

    def answer_tool(self, request_id: str, body: dict[str, Any], post_id: str = "") -> None:
        self.calls.append(("answer", (request_id, body)))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def rig(
    tmp_path: Path, clock: FakeClock | None = None, **config: Any
) -> tuple[Controls, FakeRunner, Journal, list[Approval]]:
    values: dict[str, Any] = {
        "state_dir": str(tmp_path),
        "claude_path": "claude",
        "claude_args": (),
        "claude_workdir": str(tmp_path),
        "endpoint": "ipc:///tmp/unused",
        **config,
    }
    journal = Journal(tmp_path)
    runner = FakeRunner()
    shown: list[Approval] = []
    controls = Controls(
        msgspec.convert(values, WorkerConfig), journal, runner, shown.append, clock or FakeClock()
    )
    return controls, runner, journal, shown


def post(post_id: str, create_at: int, text: str = "") -> PromptRow:
    return PromptRow(post_id, create_at, "u1", "alice", text, "gw1")


def reply(row: PromptRow | None) -> str:
    """The reply a command got (it must have been run now)."""
    assert row is not None
    assert row.answer is not None
    return row.answer


def ask(request_id: str, tool: str = "Bash") -> dict[str, Any]:
    return {
        "type": "control_request",
        "request_id": request_id,
        "request": {"subtype": "can_use_tool", "tool_name": tool, "input": {"command": "ls"}},
    }


def test_mode_bypass_needs_the_operator_and_modes_are_journaled(tmp_path: Path) -> None:
    controls, runner, journal, _ = rig(tmp_path)
    refused = controls.command(post("c1", 10), "mode", "bypassPermissions")
    assert "refused" in reply(refused)
    assert journal.meta("permission_mode") is None
    assert runner.calls == []
    done = controls.command(post("c2", 20), "mode", "acceptedits")
    assert "`acceptEdits`" in reply(done)
    assert journal.meta("permission_mode") == "acceptEdits"
    assert runner.calls == [("mode", None)]
    bad = controls.command(post("c3", 30), "mode", "yolo")
    assert "Usage" in reply(bad)
    assert controls.command(post("c2", 20), "mode", "plan") is None  # journaled once
    assert journal.meta("permission_mode") == "acceptEdits"
    allowed, _, journal2, _ = rig(tmp_path / "b", allow_bypass=True)
    allowed.command(post("c1", 10), "mode", "bypassPermissions")
    assert journal2.meta("permission_mode") == "bypassPermissions"


def test_new_names_the_old_session_and_model_is_checked(tmp_path: Path) -> None:
    controls, runner, journal, _ = rig(tmp_path)
    journal.session_id = "old-session"
    renewed = controls.command(post("c1", 10), "new", "")
    assert "old-session" in reply(renewed)
    assert journal.meta("session_id") is None
    assert journal.meta("session_epoch") == "1"
    bad = controls.command(post("c2", 20), "model", "rm;x")
    assert "not a model name" in reply(bad)
    good = controls.command(post("c3", 30), "model", "claude-sonnet-4-5")
    assert "claude-sonnet-4-5" in reply(good)
    assert journal.meta("model") == "claude-sonnet-4-5"
    assert runner.calls == [("model", None)]


def test_stop_reaches_the_running_turn_only(tmp_path: Path) -> None:
    controls, runner, _, _ = rig(tmp_path)
    idle = controls.command(post("c1", 10), "stop", "")
    assert "No turn is running" in reply(idle)
    runner.current = post("p1", 5, "work")
    busy = controls.command(post("c2", 20), "stop", "")
    assert "`p1`" in reply(busy)
    assert runner.calls == [("stop", "@alice")]


def test_a_decision_reaches_its_request_once(tmp_path: Path) -> None:
    controls, runner, journal, shown = rig(tmp_path)
    row = post("p1", 5)
    controls.tool_requested(row, ask("r1"))
    controls.tool_requested(row, ask("r1"))  # the same request again: one approval
    assert [a.request_id for a in shown] == ["r1"]
    assert controls.waiting()
    assert controls.decide("r2", "allow", "@bob") is None  # no such request
    decided = controls.decide("r1", "deny", "@alice", "no")
    assert decided is not None
    assert decided.state == "denied"
    assert controls.decide("r1", "allow", "@bob") is None  # too late
    assert [c for c, _ in runner.calls] == ["answer"]
    assert runner.calls[0][1] == ("r1", {"behavior": "deny", "message": "The user denied this: no"})
    assert not controls.waiting()
    assert [a.state for a in shown] == ["pending", "denied"]
    assert journal.approvals(pending_only=True) == []


def test_allow_reaches_only_a_request_posted_before_it(tmp_path: Path) -> None:
    """!allow decides the oldest pending request whose post was in the thread before it."""
    controls, runner, _, _ = rig(tmp_path)
    controls.tool_requested(post("p1", 5), ask("r1"))
    early = controls.command(post("c1", 100), "allow", "")
    assert "No approval is pending" in reply(early)  # r1 not shown yet
    controls.shown("r1", "pending", post_create_at=150)
    before = controls.command(post("c2", 120), "allow", "")  # made before the post existed
    assert "No approval is pending" in reply(before)
    after = controls.command(post("c3", 200), "always", "")
    assert "r1" in reply(after)
    assert [c for c, _ in runner.calls] == ["answer"]


def test_turn_end_and_restart_end_pending_requests(tmp_path: Path) -> None:
    controls, _, journal, shown = rig(tmp_path)
    controls.tool_requested(post("p1", 5), ask("r1"))
    controls.turn_ended(post("p1", 5), completed=False)
    controls.tool_requested(post("p2", 6), ask("r2"))
    controls.tool_cancelled("r2")
    controls.tool_requested(post("p3", 7), ask("r3"))
    restarted, _, _, shown_again = rig(tmp_path)  # a new worker on the same journal
    restarted.expire_all()
    states = {a.request_id: a.state for a in journal.approvals()}
    assert states == {"r1": "expired", "r2": "withdrawn", "r3": "expired"}
    assert [a.request_id for a in shown_again] == ["r3"]
    assert [a.state for a in shown if a.request_id == "r1"] == ["pending", "expired"]


def test_timeout_denies(tmp_path: Path) -> None:
    clock = FakeClock()
    controls, runner, journal, _ = rig(tmp_path, clock, approval_timeout=30)
    controls.tool_requested(post("p1", 5), ask("r1"))
    clock.now += 29.9
    controls.tick()
    assert journal.approvals()[0].state == "pending"
    clock.now += 0.1
    controls.tick()
    assert journal.approvals()[0].state == "timeout"
    assert runner.calls[0][1][1]["behavior"] == "deny"


def test_help_lists_every_command_of_the_contract() -> None:
    text = help_text()
    for command in ("!stop", "!status", "!new", "!model", "!mode", "!allow", "!always",
                    "!deny", "!answer", "!file", "!help"):  # fmt: skip
        assert f"`{command}" in text, command
