"""The live activity view: a pure fold of a turn's events, on recorded real CLI streams."""

from __future__ import annotations

import json
from typing import Any

import pytest

from session_worker.activity import MAX_VIEW, ActivityView, summary_line, tool_label
from tests.support import FIXTURES


def events(name: str) -> list[dict[str, Any]]:
    found = []
    for line in (FIXTURES / name).read_text().splitlines():
        record = json.loads(line)
        if "ev" in record:
            found.append(record["ev"])
    return found


@pytest.mark.parametrize(
    "fixture", ["partial-messages-2.1.197.jsonl", "partial-messages-2.1.330.jsonl"]
)
def test_text_deltas_show_before_the_assistant_event_and_are_not_doubled(fixture: str) -> None:
    view = ActivityView()
    seen_before_assistant = ""
    for event in events(fixture):
        if event["type"] == "assistant" and not seen_before_assistant:
            seen_before_assistant = view.render(1.0)
        view.feed(event)
    assert "hello partial" in seen_before_assistant
    final = view.render(1.0)
    assert final.count("hello partial") == 1
    assert view.tool_calls == 0
    assert view.cost_usd is not None


@pytest.mark.parametrize("fixture", ["long-tool-2.1.197.jsonl", "long-tool-2.1.330.jsonl"])
def test_a_long_tool_is_one_line_then_marked_failed_when_interrupted(fixture: str) -> None:
    view = ActivityView()
    lines_while_running = ""
    for event in events(fixture):
        view.feed(event)
        if event["type"] == "assistant":
            lines_while_running = view.render(3.0)
    assert "… `Bash: sleep 300`" in lines_while_running
    final = view.render(45.0)
    assert "✗ `Bash: sleep 300`" in final
    assert view.tool_calls == 1


def test_tool_progress_shows_the_elapsed_time() -> None:
    view = ActivityView()
    for event in events("long-tool-2.1.330.jsonl"):
        if event["type"] == "user":
            break
        view.feed(event)
    assert "(30 s)" in view.render(31.0)


def test_a_successful_tool_gets_a_check_mark() -> None:
    view = ActivityView()
    for event in events("permission-allow-2.1.330.jsonl"):
        view.feed(event)
    rendered = view.render(2.0)
    assert view.tool_calls == 1
    assert "✓ `Bash:" in rendered


def test_without_deltas_the_assistant_text_is_used() -> None:
    view = ActivityView()
    changed = view.feed(
        {"type": "assistant", "message": {"id": "m1", "content": [{"type": "text", "text": "hi"}]}}
    )
    assert changed
    assert view.render(0).endswith("\n\nhi")


def test_garbage_events_change_nothing() -> None:
    view = ActivityView()
    garbage: list[dict[str, Any]] = [
        {},
        {"type": "stream_event"},
        {"type": "stream_event", "event": []},
        {"type": "assistant", "message": "x"},
        {"type": "assistant", "message": {"content": [1, None, {"type": "tool_use"}]}},
        {"type": "user", "message": {"content": "text"}},
        {"type": "tool_progress", "parent_tool_use_id": "nope", "elapsed_time_seconds": 3},
        {"type": "result", "total_cost_usd": True},
    ]
    for event in garbage:
        assert not view.feed(event)
    assert view.render(1).startswith("⏳")
    assert view.cost_usd is None


@pytest.mark.parametrize(
    ("name", "tool_input", "label"),
    [
        ("Bash", {"command": "npm test"}, "Bash: npm test"),
        ("Edit", {"file_path": "src/app.py", "old_string": "a"}, "Edit: src/app.py"),
        ("Read", {"file_path": "README.md"}, "Read: README.md"),
        ("Grep", {"pattern": "TODO"}, "Grep: TODO"),
        ("TodoWrite", {"todos": []}, "TodoWrite"),
        ("mcp__x__y", {"n": 1, "q": "find"}, "mcp__x__y: find"),
        ("Bash", "not a dict", "Bash"),
        ("Bash", {"command": "a\n  b"}, "Bash: a b"),
    ],
)
def test_tool_labels(name: str, tool_input: object, label: str) -> None:
    assert tool_label(name, tool_input) == label


def test_a_long_text_keeps_its_newest_part_and_the_view_stays_bounded() -> None:
    view = ActivityView()
    view.feed({"type": "stream_event", "event": {"type": "message_start", "message": {"id": "m"}}})
    for i in range(2000):
        view.feed(
            {
                "type": "stream_event",
                "event": {
                    "type": "content_block_delta",
                    "delta": {"type": "text_delta", "text": f"word{i} "},
                },
            }
        )
    for i in range(30):
        view.feed(
            {
                "type": "assistant",
                "message": {
                    "id": f"t{i}",
                    "content": [{"type": "tool_use", "id": f"tool{i}", "name": "Read"}],
                },
            }
        )
    rendered = view.render(100)
    assert len(rendered) <= MAX_VIEW
    assert "word1999" in rendered
    assert "earlier tool calls" in rendered
    assert view.tool_calls == 30


def test_summary_line() -> None:
    assert summary_line(3.24, 2, 0.01234) == "✅ Done in 3.2 s · 2 tool calls · $0.0123"
    assert summary_line(125, 1, None) == "✅ Done in 2 min 5 s · 1 tool call"
    assert summary_line(2, 0, None, ok=False).startswith("⚠️ Ended with an error after 2.0 s")
