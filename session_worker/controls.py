"""The thread's controls in the worker: commands (``!stop`` …) and tool approvals.

Commands are handled beside the turn queue, never behind the running turn: each one's
effects on the journal and its reply row are committed in one transaction (a redelivered
command is only acknowledged again), and the effects on the running claude (interrupt,
set_model, set_permission_mode) follow. Approvals are journaled as they arrive
(:mod:`session_worker.approvals` holds the pure rules); a decision is applied only to its
own request and only while it is pending, then claude is answered and the post updated.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from loguru import logger

from session_worker.approvals import (
    Approval,
    Behavior,
    answer_for,
    approval_from_request,
    decide,
    render,
    response_body,
)
from session_worker.states import PromptRow, State

if TYPE_CHECKING:
    from collections.abc import Callable

    from session_worker.config import WorkerConfig
    from session_worker.journal import Journal
    from session_worker.runner import TurnHooks

__all__ = ["MODES", "Controls", "RunnerLike", "help_text"]

MODES = ("default", "acceptEdits", "plan", "bypassPermissions")


class RunnerLike(Protocol):
    """What the controls use of :class:`session_worker.runner.Runner`."""

    hooks: TurnHooks
    restarts: int
    model: str | None

    @property
    def current(self) -> PromptRow | None: ...
    @property
    def turn_started(self) -> float: ...
    @property
    def permission_mode(self) -> str: ...
    @property
    def claude_pid(self) -> int | None: ...
    def stop(self, who: str) -> PromptRow | None: ...
    def apply_model(self) -> None: ...
    def apply_mode(self) -> None: ...
    def answer_tool(self, request_id: str, body: dict[str, Any], post_id: str = "") -> None: ...


def help_text() -> str:
    return "\n".join(
        [
            "**mmclaude commands** (the first word of a reply in this thread):",
            "- `!stop`: stop the running turn (the session and its context stay)",
            "- `!status`: session, model, mode, running turn, queue, approvals, cost",
            "- `!new`: the next prompt starts a fresh Claude session",
            "- `!model NAME`: use that model for the following turns",
            "- `!mode MODE`: permission mode (" + ", ".join(f"`{m}`" for m in MODES) + ")",
            "- `!allow`, `!always`, `!deny [reason]`: answer the oldest pending approval",
            "- `!answer N|LABEL|TEXT`: answer the oldest pending question",
            "- `!file PATH`: a reply with that file of the working directory attached",
            "- `!help`: this list",
            "Anything else is a prompt for Claude.",
        ]
    )


class Controls:
    """Commands and approvals; ``show`` sends an approval's post to a gateway."""

    def __init__(
        self,
        config: WorkerConfig,
        journal: Journal,
        runner: RunnerLike,
        show: Callable[[Approval], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.clock = clock  # wall clock: request times are journaled and outlive the process
        self.journal = journal
        self.runner = runner
        self.show = show
        runner.hooks = self
        # Pending request ids, kept in memory too: the runner asks on every claude event.
        self._pending = {a.request_id for a in journal.approvals(pending_only=True)}

    # --- commands -------------------------------------------------------------------------

    def command(self, row: PromptRow, name: str, args: str) -> PromptRow | None:
        """Run a command posted as ``row``; its answered row, or None if already journaled."""
        if self.journal.get(row.post_id) is not None:
            return None
        who = f"@{row.username}" if row.username else row.user_id
        after: list[Callable[[], None]] = []
        with self.journal.transaction():
            reply = self._run(name, args.strip(), who, after, row.create_at)
            self.journal.insert_answered(row, reply)
        answered = self.journal.get(row.post_id)
        for effect in after:  # on claude, once the journal holds the command
            effect()
        logger.bind(post_id=row.post_id, command=name, user_id=row.user_id).info("command.done")
        return answered

    def _run(
        self, name: str, args: str, who: str, after: list[Callable[[], None]], before: int
    ) -> str:
        match name:
            case "stop":
                return self._stop(who, after)
            case "status":
                return self.status_text()
            case "new":
                return self._new()
            case "model":
                return self._model(args, after)
            case "mode":
                return self._mode(args, after)
            case "allow" | "always" | "deny":
                return self._decide_oldest(name, who, args, after, before)
            case "answer":
                return self._answer_oldest(who, args, after, before)
            case _:
                return help_text()

    def _stop(self, who: str, after: list[Callable[[], None]]) -> str:
        row = self.runner.current
        if row is None:
            return "No turn is running: nothing to stop."
        after.append(lambda: self._stop_now(who))
        queued = self.journal.count(State.QUEUED)
        then = f" {queued} queued prompt(s) run next." if queued else ""
        return f"⏹️ Stopping the running turn (post `{row.post_id}`); it gets its answer.{then}"

    def _stop_now(self, who: str) -> None:
        self.runner.stop(who)

    def _new(self) -> str:
        old = self.journal.session_id
        j = self.journal
        j.session_id = None
        j.set_meta("session_has_turns", None)
        j.set_meta("context_lost", None)
        j.set_meta("session_epoch", str(int(j.meta("session_epoch") or 0) + 1))
        for key in ("turns", "cost_usd", "tokens_in", "tokens_out"):
            j.set_meta(key, None)
        if old is None:
            return "🆕 The next prompt starts a fresh Claude session (there was none yet)."
        return (
            f"🆕 The next prompt starts a fresh Claude session. The old session was `{old}`; "
            f"resume it by hand with `claude --resume {old}`."
        )

    def _model(self, args: str, after: list[Callable[[], None]]) -> str:
        name = args.split()[0] if args.split() else ""
        if not name:
            current = self.journal.meta("model") or self.runner.model or "the default"
            return f"Usage: `!model NAME`. The model now is {current}."
        if len(name) > 100 or not all(c.isalnum() or c in "-._:[]/@" for c in name):
            return f"`{name[:100]}` is not a model name."
        self.journal.set_meta("model", name)
        after.append(self.runner.apply_model)
        return f"🧠 The following turns use the model `{name}`."

    def _mode(self, args: str, after: list[Callable[[], None]]) -> str:
        wanted = args.split()[0] if args.split() else ""
        mode = next((m for m in MODES if m.lower() == wanted.lower()), None)
        if mode is None:
            choices = ", ".join(f"`{m}`" for m in MODES)
            return (
                f"Usage: `!mode MODE` with one of {choices}. Now: `{self.runner.permission_mode}`."
            )
        if mode == "bypassPermissions" and not self.config.allow_bypass:
            return (
                "🚫 `bypassPermissions` is refused from the thread: the operator has not set "
                "`MMCLAUDE_ALLOW_BYPASS=true`."
            )
        self.journal.set_meta("permission_mode", mode)
        after.append(self.runner.apply_mode)
        return f"🔧 The permission mode for the following turns is `{mode}`."

    def status_text(self) -> str:
        j, r = self.journal, self.runner
        lines = [
            "**mmclaude status**",
            f"- session: `{j.session_id or 'none yet'}`",
            f"- model: `{r.model or j.meta('model') or 'not reported yet'}`",
            f"- permission mode: `{r.permission_mode}`",
            f"- claude pid: {r.claude_pid or 'none'} (restarts: {r.restarts})",
        ]
        if r.current is not None:
            running = round(time.monotonic() - r.turn_started, 1)
            lines.append(f"- running: post `{r.current.post_id}` for {running} s")
        else:
            lines.append("- running: nothing")
        lines.append(f"- queue: {j.count(State.QUEUED)} prompt(s) waiting")
        pending = j.approvals(pending_only=True)
        lines.append(f"- pending approvals: {len(pending)}")
        lines.append(
            f"- this session: {j.meta('turns') or 0} turn(s), "
            f"${float(j.meta('cost_usd') or 0):.4f}, "
            f"{j.meta('tokens_in') or 0} tokens in, {j.meta('tokens_out') or 0} out"
        )
        return "\n".join(lines)

    # --- approvals ------------------------------------------------------------------------

    def tool_requested(self, row: PromptRow, event: dict[str, Any]) -> None:
        """claude asks to use a tool (or asks the user a question) during ``row``'s turn."""
        approval = approval_from_request(event, row.post_id, row.create_at, self.clock())
        if approval is None:
            logger.warning("approval.malformed")
            return
        if self.journal.approval(approval.request_id) is not None:
            return  # the same request twice: one post, one decision
        logger.bind(post_id=row.post_id, t_ns=time.monotonic_ns()).debug("hop.can_use_tool")
        self.journal.put_approval(approval)
        self._pending.add(approval.request_id)
        logger.bind(
            request_id=approval.request_id, tool=approval.tool_name, post_id=row.post_id
        ).info("approval.requested")
        self.show(approval)

    def tool_cancelled(self, request_id: str) -> None:
        self._end(request_id, "withdrawn")

    def turn_ended(self, row: PromptRow, completed: bool) -> None:
        """The turn is over: requests still pending can never be answered any more."""
        for approval in self.journal.approvals(pending_only=True):
            if approval.post_id == row.post_id:
                self._end(approval.request_id, "withdrawn" if completed else "expired")

    def waiting(self) -> bool:
        return bool(self._pending)

    def expire_all(self) -> None:
        """At worker start: the claude that asked is gone; its turn is run again."""
        for approval in self.journal.approvals(pending_only=True):
            self._end(approval.request_id, "expired")

    def tick(self) -> None:
        """Deny what waited longer than the approval timeout."""
        if not self._pending:
            return
        now = self.clock()
        for approval in self.journal.approvals(pending_only=True):
            if now - approval.created_at >= self.config.approval_timeout:
                self.decide(approval.request_id, "timeout", "")

    def decide(
        self, request_id: str, behavior: Behavior, who: str, reason: str = "", text: str = ""
    ) -> Approval | None:
        """Apply a decision to ``request_id`` if it is pending; the decided request."""
        approval = self.journal.approval(request_id)
        if approval is None or not approval.pending:
            return None
        answers: dict[str, str] | None = None
        if approval.kind == "question":
            if behavior in ("allow", "always"):
                return None  # a question wants an answer, not a permission
            if behavior == "answer":
                answers = answer_for(approval, text)
                reason = "; ".join(answers.values()) or text
        elif behavior == "answer":
            return None
        decided = decide(approval, behavior, who, reason)
        self.journal.put_approval(decided)
        self._pending.discard(request_id)
        self.runner.answer_tool(request_id, response_body(decided, answers), approval.post_id)
        logger.bind(request_id=request_id, state=decided.state, by=who).info("approval.decided")
        self.show(decided)
        return decided

    def _end(self, request_id: str, behavior: Behavior) -> None:
        approval = self.journal.approval(request_id)
        if approval is None or not approval.pending:
            return
        ended = decide(approval, behavior)
        self.journal.put_approval(ended)
        self._pending.discard(request_id)
        logger.bind(request_id=request_id, state=ended.state).info("approval.ended")
        self.show(ended)

    def _oldest(self, kind: str, before: int) -> Approval | None:
        """The oldest pending request of ``kind`` whose post was in the thread before the
        command (posted at ``before``): a command never reaches a request made after it."""
        return next(
            (
                a
                for a in self.journal.approvals(pending_only=True)
                if a.kind == kind and 0 < a.post_create_at < before
            ),
            None,
        )

    def _decide_oldest(
        self, name: str, who: str, reason: str, after: list[Callable[[], None]], before: int
    ) -> str:
        approval = self._oldest("approval", before)
        if approval is None:
            return "No approval is pending."
        behavior: Behavior = (
            "allow" if name == "allow" else "always" if name == "always" else "deny"
        )
        request_id = approval.request_id
        after.append(lambda: self._decide_after(request_id, behavior, who, reason))
        verb = {"allow": "Allowed once", "always": "Always allowed", "deny": "Denied"}[behavior]
        return f"{verb}: `{approval.tool_name}` (request `{request_id}`)."

    def _answer_oldest(
        self, who: str, text: str, after: list[Callable[[], None]], before: int
    ) -> str:
        approval = self._oldest("question", before)
        if approval is None:
            return "No question is pending."
        if not text:
            return "Usage: `!answer N`, `!answer LABEL` or `!answer TEXT`."
        request_id = approval.request_id
        after.append(lambda: self._decide_after(request_id, "answer", who, "", text))
        answers = answer_for(approval, text)
        return "Answered: " + ("; ".join(answers.values()) or text)

    def _decide_after(
        self, request_id: str, behavior: Behavior, who: str, reason: str, text: str = ""
    ) -> None:
        self.decide(request_id, behavior, who, reason, text)

    def shown(self, request_id: str, state: str, post_create_at: int = 0) -> None:
        """A gateway confirmed that the post (made at ``post_create_at``) shows ``state``."""
        approval = self.journal.approval(request_id)
        if approval is None:
            return
        seen = approval.post_create_at or post_create_at
        if (approval.state == state and approval.shown != state) or seen != approval.post_create_at:
            shown = state if approval.state == state else approval.shown
            self.journal.put_approval(replace(approval, shown=shown, post_create_at=seen))

    def render(self, approval: Approval) -> str:
        return render(approval, self.config.approval_timeout)
