"""The running turn's timing rules: typing and live-view messages, with a passed-in clock."""

from __future__ import annotations

from session_worker.activity import ACTIVITY_AFTER, ACTIVITY_EVERY
from session_worker.states import PromptRow
from session_worker.turn import FIRST_PROGRESS_AFTER, PROGRESS_EVERY, Turn

ROW = PromptRow("p1", 5, "u1", "alice", "hello", "g1")
TEXT = {"type": "assistant", "message": {"content": [{"type": "text", "text": "working"}]}}


def test_progress_first_after_a_second_then_every_few() -> None:
    turn = Turn.begin(ROW, 100.0, live=False)
    assert turn.progress_due(100.0 + FIRST_PROGRESS_AFTER - 0.01) is None
    first = turn.progress_due(100.0 + FIRST_PROGRESS_AFTER)
    assert first is not None
    assert (first.post_id, first.elapsed_s) == ("p1", FIRST_PROGRESS_AFTER)
    again = 100.0 + FIRST_PROGRESS_AFTER + PROGRESS_EVERY
    assert turn.progress_due(again - 0.01) is None
    assert turn.progress_due(again) is not None


def test_no_live_view_without_mmclaude_live() -> None:
    turn = Turn.begin(ROW, 0.0, live=False)
    turn.feed(TEXT)
    assert turn.activity_due(ACTIVITY_AFTER + 10) is None


def test_live_view_after_the_threshold_only_when_changed_or_stale() -> None:
    turn = Turn.begin(ROW, 0.0, live=True)
    turn.feed(TEXT)
    assert turn.changes == 1
    assert turn.activity_due(ACTIVITY_AFTER - 0.1) is None
    first = turn.activity_due(ACTIVITY_AFTER)
    assert first is not None
    assert first.seq == 1
    assert "working" in first.text
    assert turn.activity_due(ACTIVITY_AFTER) == first  # nothing recorded until sent
    turn.mark_activity_sent(ACTIVITY_AFTER, first)
    assert turn.activity_due(ACTIVITY_AFTER + ACTIVITY_EVERY) is None  # unchanged
    turn.feed(TEXT)  # a second text block: the view changed
    changed = turn.activity_due(ACTIVITY_AFTER + ACTIVITY_EVERY)
    assert changed is not None
    assert changed.seq == 2
    turn.mark_activity_sent(ACTIVITY_AFTER + ACTIVITY_EVERY, changed)
    stale = ACTIVITY_AFTER + ACTIVITY_EVERY + 5 * ACTIVITY_EVERY
    refresh = turn.activity_due(stale)
    assert refresh is not None  # the clock in the view needs a tick
    assert refresh.seq == 3
