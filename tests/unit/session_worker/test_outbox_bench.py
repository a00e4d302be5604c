"""A burst of 1,000 undelivered answers through the Outbox, timed and printed (``-s``).

Not a pass/fail on time (machines differ): it prints what the worker pays per answer and
per 0.1 s tick with that backlog, and checks that the order stayed right.
"""

from __future__ import annotations

import time

from session_worker.gateways import Outbox
from session_worker.states import PromptRow, State

BURST = 1_000
TICKS = 100


def answered(n: int) -> PromptRow:
    return PromptRow(
        post_id=f"p{n:05d}", create_at=1_700_000_000_000 + n, user_id="u", username="a",
        text="q", gateway_id="g1", state=State.ANSWERED, answer=f"answer {n}",
    )  # fmt: skip


def test_outbox_burst_of_undelivered_answers() -> None:
    """What the worker does with a backlog: each answer added then due(); then ticks."""
    rows = [answered(n) for n in range(BURST)]
    outbox = Outbox()
    began = time.perf_counter()
    for n, row in enumerate(rows):  # one answer a millisecond, as the worker's _answered
        outbox.add(row)
        for item in outbox.due(now=n * 0.001, interval=2.0):
            outbox.sent(item, now=n * 0.001)
    answers_s = time.perf_counter() - began
    began = time.perf_counter()
    for tick in range(TICKS):  # 10 s of 0.1 s ticks: the backlog is re-sent every 2 s
        now = BURST * 0.001 + tick * 0.1
        for item in outbox.due(now=now, interval=2.0):
            outbox.sent(item, now=now)
    ticks_s = time.perf_counter() - began
    print(
        f"\noutbox burst of {BURST}: {answers_s * 1e6 / BURST:.1f} µs per answer, "
        f"{ticks_s * 1e6 / TICKS:.1f} µs per tick with {BURST} undelivered"
    )
    assert [p.post_id for p in outbox.ordered()] == [r.post_id for r in rows]
