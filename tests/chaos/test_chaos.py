"""Seeded chaos under pytest: processes die at random while a user posts, and every post is
still answered exactly once, in order, with no process left behind. The seed is in the test
id; `mmclaude chaos --duration 120 --seed N` is the longer run (README)."""

from __future__ import annotations

import asyncio

import pytest

from devtools.chaos import chaos

pytestmark = [pytest.mark.chaos, pytest.mark.slow]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("seed", [11, 12])
def test_chaos_run_loses_and_duplicates_nothing(seed: int) -> None:
    """25 s of random SIGKILLs of gateway, worker and claude plus socket and REST faults:
    lost, duplicated and out-of-order are all zero, and nothing is left running; approval
    turns and commands are among the posts, and every decision reached its own request."""
    report = asyncio.run(chaos(duration=25, seed=seed, rate=3.0, real_claude=False))
    print(report.render())
    assert report.posts >= 30
    assert sum(report.kills.values()) >= 4
    assert not report.lost, report.render()
    assert not report.duplicated, report.render()
    assert not report.out_of_order, report.render()
    assert not report.mismatched, report.render()
    assert not report.leftover_pids, report.render()
    assert report.approval_turns >= 1, report.render()
    assert report.commands >= 1, report.render()
    assert not report.wrong_decision, report.render()
    assert not report.left_waiting, report.render()
    # Long turns with activity posts and prompts with attachments ride along.
    assert report.attachments >= 1, report.render()
    assert not report.attachment_errors, report.render()
    assert not report.activity_doubled, report.render()
