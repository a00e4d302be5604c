"""Tool approvals and questions of Claude (``can_use_tool``), as pure code: the record, its
states, how it reads in the thread, and the answer the CLI gets. No I/O; unit-tested.

A request is ``pending`` until exactly one of: a decision of an allowed user (``allowed``,
``always``, ``denied``, ``answered``), the timeout (``timeout``), Claude withdrawing it
(``withdrawn``, a ``control_cancel_request``), or the end of the claude process or worker that
asked (``expired``: the turn is run again and Claude asks anew). Only a pending request
changes state (:func:`decide`), so a decision applies once and only to its own request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Literal

__all__ = [
    "DONE_STATES",
    "Approval",
    "Behavior",
    "answer_for",
    "approval_from_request",
    "decide",
    "render",
    "response_body",
]

Behavior = Literal["allow", "always", "deny", "answer", "timeout", "withdrawn", "expired"]
_STATE_OF: dict[str, str] = {
    "allow": "allowed",
    "always": "always",
    "deny": "denied",
    "answer": "answered",
    "timeout": "timeout",
    "withdrawn": "withdrawn",
    "expired": "expired",
}
DONE_STATES = frozenset(_STATE_OF.values())

CODE_LIMIT = 3000  # characters of a tool input shown in the post


@dataclass(frozen=True)
class Approval:
    """One ``can_use_tool`` request of the CLI, as journaled."""

    request_id: str
    post_id: str  # the prompt whose turn asked
    create_at: int  # the prompt's create_at (the approval post is newer)
    tool_name: str
    input: dict[str, Any]
    suggestions: list[Any] = field(default_factory=list)
    state: str = "pending"
    decided_by: str = ""
    reason: str = ""
    created_at: float = 0.0  # wall clock (time.time) of the request
    shown: str = ""  # the state a gateway confirmed it shows
    post_create_at: int = 0  # when its post appeared (ms, Mattermost's clock); 0: not yet

    @property
    def kind(self) -> Literal["approval", "question"]:
        return "question" if self.tool_name == "AskUserQuestion" else "approval"

    @property
    def pending(self) -> bool:
        return self.state == "pending"


def approval_from_request(
    event: dict[str, Any], post_id: str, create_at: int, now: float
) -> Approval | None:
    """The approval a ``control_request`` ``can_use_tool`` event asks for (None if malformed)."""
    request = event.get("request")
    request_id = event.get("request_id")
    if not isinstance(request, dict) or not isinstance(request_id, str) or not request_id:
        return None
    tool = request.get("tool_name")
    raw_input = request.get("input")
    suggestions = request.get("permission_suggestions")
    return Approval(
        request_id=request_id,
        post_id=post_id,
        create_at=create_at,
        tool_name=tool if isinstance(tool, str) and tool else "?",
        input=raw_input if isinstance(raw_input, dict) else {},
        suggestions=suggestions if isinstance(suggestions, list) else [],
        created_at=now,
    )


def decide(approval: Approval, behavior: Behavior, who: str = "", reason: str = "") -> Approval:
    """The request after ``behavior``; unchanged when it is no longer pending."""
    if not approval.pending:
        return approval
    return replace(approval, state=_STATE_OF[behavior], decided_by=who, reason=reason)


# --- the control_response body --------------------------------------------------------------


def response_body(approval: Approval, answers: dict[str, str] | None = None) -> dict[str, Any]:
    """What the CLI gets for a decided request (claude-stream-json.md §2.3, §12)."""
    state = approval.state
    if state in ("allowed", "always", "answered"):
        body: dict[str, Any] = {"behavior": "allow", "updatedInput": approval.input}
        if state == "always" and approval.suggestions:
            body["updatedPermissions"] = approval.suggestions
        if state == "answered":
            body["updatedInput"] = {**approval.input, "answers": answers or {}}
        return body
    if state == "timeout":
        message = "The user did not answer in time; the request was denied."
    elif state == "denied":
        message = "The user denied this" + (f": {approval.reason}" if approval.reason else ".")
    else:
        message = "The request was withdrawn."
    return {"behavior": "deny", "message": message}


def _questions(approval: Approval) -> list[dict[str, Any]]:
    raw = approval.input.get("questions")
    return [q for q in raw if isinstance(q, dict)] if isinstance(raw, list) else []


def _labels(question: dict[str, Any]) -> list[str]:
    options = question.get("options")
    if not isinstance(options, list):
        return []
    return [str(o.get("label", "")) for o in options if isinstance(o, dict)]


def answer_for(approval: Approval, text: str) -> dict[str, str]:
    """``answers`` for ``!answer text``: an option's number or label, else the text itself.

    Every question of the request gets the same answer (Claude asks one at a time nearly
    always); a number picks that option of each question that has it.
    """
    text = text.strip()
    answers: dict[str, str] = {}
    for question in _questions(approval):
        labels = _labels(question)
        choice = text
        if text.isdigit() and 1 <= int(text) <= len(labels):
            choice = labels[int(text) - 1]
        else:
            for label in labels:
                if label.casefold() == text.casefold():
                    choice = label
        answers[str(question.get("question", ""))] = choice
    return answers


# --- how it reads in the thread ---------------------------------------------------------------


def _fence(text: str, lang: str = "") -> str:
    if len(text) > CODE_LIMIT:
        text = text[:CODE_LIMIT] + f"\n… ({len(text) - CODE_LIMIT} more characters)"
    run = "```"
    while run in text:
        run += "`"
    return f"{run}{lang}\n{text}\n{run}"


def _show_input(approval: Approval) -> str:
    tool, data = approval.tool_name, approval.input
    if tool == "Bash" and isinstance(data.get("command"), str):
        shown = _fence(data["command"], "bash")
        description = data.get("description")
        return f"{description}\n{shown}" if isinstance(description, str) and description else shown
    if tool in ("Edit", "MultiEdit", "Write", "NotebookEdit", "Read") and isinstance(
        data.get("file_path") or data.get("notebook_path"), str
    ):
        path = str(data.get("file_path") or data.get("notebook_path"))
        parts = [f"`{path}`"]
        if isinstance(data.get("old_string"), str) and isinstance(data.get("new_string"), str):
            diff = "\n".join(
                [*("-" + line for line in data["old_string"].split("\n")),
                 *("+" + line for line in data["new_string"].split("\n"))]
            )  # fmt: skip
            parts.append(_fence(diff, "diff"))
        elif isinstance(data.get("content"), str):
            parts.append(_fence(data["content"]))
        elif isinstance(data.get("edits"), list):
            parts.append(_fence(json.dumps(data["edits"], indent=2, ensure_ascii=False), "json"))
        return "\n".join(parts)
    plan = data.get("plan")
    if tool == "ExitPlanMode" and isinstance(plan, str):
        return plan
    return _fence(json.dumps(data, indent=2, ensure_ascii=False), "json")


def _show_questions(approval: Approval) -> str:
    lines: list[str] = []
    for question in _questions(approval):
        header = question.get("header")
        title = str(question.get("question", ""))
        lines.append(f"**{header}**: {title}" if isinstance(header, str) and header else title)
        options = question.get("options")
        for number, option in enumerate(options if isinstance(options, list) else [], 1):
            if isinstance(option, dict):
                label = str(option.get("label", ""))
                description = option.get("description")
                extra = f" — {description}" if isinstance(description, str) and description else ""
                lines.append(f"{number}. {label}{extra}")
    return "\n".join(lines)


_OUTCOME = {
    "allowed": "✅ Allowed once by {who}.",
    "always": "✅ Allowed by {who}, and not asked again for this rule in this session.",
    "denied": "🚫 Denied by {who}.",
    "answered": "✅ Answered by {who}: {reason}",
    "timeout": "⌛ No answer in time: denied.",
    "withdrawn": "↩️ Withdrawn: Claude no longer waits for this (the turn was stopped).",
    "expired": "💤 Expired: Claude was restarted; it asks again in a new post if still needed.",
}


def render(approval: Approval, timeout_s: float) -> str:
    """The post's text for the request's current state."""
    if approval.kind == "question":
        head = (
            f"❓ **Claude asks** (request `{approval.request_id}`)\n\n{_show_questions(approval)}"
        )
        how = "Answer with `!answer N` (an option's number), `!answer LABEL` or `!answer TEXT`."
    else:
        head = (
            f"🔐 **Claude wants to use `{approval.tool_name}`** "
            f"(request `{approval.request_id}`)\n\n{_show_input(approval)}"
        )
        how = (
            "React :+1: to allow once, :white_check_mark: to always allow this rule in this "
            "session, :-1: to deny; or reply `!allow`, `!always`, `!deny [reason]`."
        )
    if approval.pending:
        return f"{head}\n\n{how} (Denied after {round(timeout_s)} s without an answer.)"
    outcome = _OUTCOME.get(approval.state, approval.state).format(
        who=approval.decided_by or "someone", reason=approval.reason
    )
    if approval.state == "denied" and approval.reason:
        outcome += f" Reason: {approval.reason}"
    return f"{head}\n\n**{outcome}**"
