"""`status`'s claude restarts: one per new claude process after the first, from heartbeats."""

from __future__ import annotations

from supervisor.claude_restarts import ClaudeRestarts


def test_first_claude_is_no_restart_and_repeats_count_nothing() -> None:
    counter = ClaudeRestarts()
    counter.seen(worker_pid=10, claude_pid=None, worker_count=0)  # still starting
    counter.seen(worker_pid=10, claude_pid=20, worker_count=0)
    counter.seen(worker_pid=10, claude_pid=20, worker_count=0)
    assert counter.count == 0


def test_a_replacement_counts_even_when_a_heartbeat_saw_claude_down() -> None:
    """The defect: pid 20 → None (claude dead, not yet respawned) → 21 stayed at 0."""
    counter = ClaudeRestarts()
    counter.seen(10, 20, 0)
    counter.seen(10, None, 0)
    counter.seen(10, 21, 1)
    assert counter.count == 1
    counter.seen(10, None, 1)
    counter.seen(10, 22, 2)
    assert counter.count == 2


def test_replacements_between_two_heartbeats_all_count() -> None:
    counter = ClaudeRestarts()
    counter.seen(10, 20, 0)
    counter.seen(10, 23, 3)  # three claudes came and went within one heartbeat period
    assert counter.count == 3


def test_a_pid_change_counts_even_if_the_worker_count_lags() -> None:
    counter = ClaudeRestarts()
    counter.seen(10, 20, 0)
    counter.seen(10, 21, 0)
    assert counter.count == 1
    counter.seen(10, 21, 1)  # the worker's count catches up: not counted twice
    assert counter.count == 1


def test_a_new_worker_brings_a_new_claude() -> None:
    counter = ClaudeRestarts()
    counter.seen(10, 20, 0)
    counter.seen(11, None, 0)  # the worker was replaced; its claude is starting
    counter.seen(11, 30, 0)
    assert counter.count == 1
    counter.seen(11, 31, 1)
    assert counter.count == 2


def test_the_first_worker_may_report_restarts_before_its_first_heartbeat() -> None:
    counter = ClaudeRestarts()
    counter.seen(10, 22, 2)
    assert counter.count == 2
