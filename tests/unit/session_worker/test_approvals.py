"""Approvals as pure rules: the state machine, the CLI's answer, and the post's text."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from session_worker.approvals import (
    DONE_STATES,
    Approval,
    Behavior,
    answer_for,
    approval_from_request,
    decide,
    render,
    response_body,
)

SUGGESTION = {
    "type": "addRules",
    "rules": [{"toolName": "Bash", "ruleContent": "ls"}],
    "behavior": "allow",
    "destination": "localSettings",
}


def request(tool: str, data: dict[str, Any], request_id: str = "r1") -> dict[str, Any]:
    return {
        "type": "control_request",
        "request_id": request_id,
        "request": {
            "subtype": "can_use_tool",
            "tool_name": tool,
            "input": data,
            "permission_suggestions": [SUGGESTION],
        },
    }


def bash(command: str = "ls -la") -> Approval:
    approval = approval_from_request(request("Bash", {"command": command}), "p1", 5, 1.0)
    assert approval is not None
    return approval


QUESTION = {
    "questions": [
        {
            "question": "Which colour?",
            "header": "Colour",
            "options": [{"label": "Red", "description": "warm"}, {"label": "Blue"}],
            "multiSelect": False,
        }
    ]
}


def test_malformed_requests_are_none() -> None:
    assert approval_from_request({"type": "control_request"}, "p", 1, 0) is None
    assert approval_from_request({"request_id": "", "request": {}}, "p", 1, 0) is None
    odd = approval_from_request({"request_id": "x", "request": {"input": 3}}, "p", 1, 0)
    assert odd is not None
    assert odd.input == {}
    assert odd.tool_name == "?"


BEHAVIORS: list[Behavior] = ["allow", "always", "deny", "answer", "timeout", "withdrawn", "expired"]


@given(st.lists(st.sampled_from(BEHAVIORS), min_size=1, max_size=6))
def test_only_the_first_decision_counts(behaviors: list[Behavior]) -> None:
    """A request leaves pending once; every later decision changes nothing."""
    approval = bash()
    first = decide(approval, behaviors[0], "@a", "why")
    assert first.state in DONE_STATES
    later = first
    for behavior in behaviors[1:]:
        later = decide(later, behavior, "@b")
    assert later == first


def test_allow_once_always_and_deny_answers() -> None:
    approval = bash()
    allow = response_body(decide(approval, "allow", "@a"))
    assert allow == {"behavior": "allow", "updatedInput": {"command": "ls -la"}}
    always = response_body(decide(approval, "always", "@a"))
    assert always["updatedPermissions"] == [SUGGESTION]
    deny = response_body(decide(approval, "deny", "@a", "too risky"))
    assert deny == {"behavior": "deny", "message": "The user denied this: too risky"}
    timeout = response_body(decide(approval, "timeout"))
    assert timeout["behavior"] == "deny"
    assert "in time" in timeout["message"]


def test_question_answers_by_number_label_or_text() -> None:
    approval = approval_from_request(request("AskUserQuestion", QUESTION), "p1", 5, 1.0)
    assert approval is not None
    assert approval.kind == "question"
    assert answer_for(approval, "2") == {"Which colour?": "Blue"}
    assert answer_for(approval, "red") == {"Which colour?": "Red"}
    assert answer_for(approval, "green please") == {"Which colour?": "green please"}
    assert answer_for(approval, "7") == {"Which colour?": "7"}
    body = response_body(decide(approval, "answer", "@a", "Blue"), {"Which colour?": "Blue"})
    assert body["behavior"] == "allow"
    assert body["updatedInput"] == {**QUESTION, "answers": {"Which colour?": "Blue"}}


def test_rendering_for_a_person() -> None:
    text = render(bash("rm -rf build"), 600)
    assert "`Bash`" in text
    assert "```bash\nrm -rf build\n```" in text
    assert ":+1:" in text
    assert "600 s" in text
    edit = approval_from_request(
        request("Edit", {"file_path": "/w/a.py", "old_string": "x = 1", "new_string": "x = 2"}),
        "p1",
        5,
        1.0,
    )
    assert edit is not None
    shown = render(edit, 600)
    assert "`/w/a.py`" in shown
    assert "```diff\n-x = 1\n+x = 2\n```" in shown
    plan = approval_from_request(request("ExitPlanMode", {"plan": "# Plan\n- a"}), "p1", 5, 1)
    assert plan is not None
    assert "# Plan\n- a" in render(plan, 600)
    question = approval_from_request(request("AskUserQuestion", QUESTION), "p1", 5, 1.0)
    assert question is not None
    assert "1. Red — warm\n2. Blue" in render(question, 600)


def test_outcome_text_names_who_decided() -> None:
    assert "Allowed once by @alice" in render(decide(bash(), "allow", "@alice"), 600)
    denied = render(decide(bash(), "deny", "@bob", "no"), 600)
    assert "Denied by @bob" in denied
    assert "Reason: no" in denied
    assert "withdrawn" in render(decide(bash(), "withdrawn"), 600).lower()
    assert "expired" in render(decide(bash(), "expired"), 600).lower()
    assert "did not" not in render(decide(bash(), "allow", "@a"), 600)


def test_a_command_with_backticks_keeps_its_fence() -> None:
    text = render(bash("echo ```x```"), 600)
    assert "````bash\necho ```x```\n````" in text
