"""The worker's Outbox under a burst of 1,000 undelivered answers: what the worker pays per
answer and per 0.1 s tick with that backlog (and a check that the order stayed right).

    python -m benchmarks.outbox [--burst 1000] [--ticks 100]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from benchmarks.common import save
from session_worker.answer_outbox import AnswerOutbox as Outbox
from session_worker.states import PromptRow, State


def answered(n: int) -> PromptRow:
    return PromptRow(
        post_id=f"p{n:05d}", create_at=1_700_000_000_000 + n, user_id="u", username="a",
        text="q", gateway_id="g1", state=State.ANSWERED, answer=f"answer {n}",
    )  # fmt: skip


def burst(size: int, ticks: int) -> dict[str, Any]:
    """Each answer added then due() (as the worker's _answered does), then the ticks."""
    rows = [answered(n) for n in range(size)]
    outbox = Outbox()
    began = time.perf_counter()
    for n, row in enumerate(rows):  # one answer a millisecond
        outbox.add(row)
        for item in outbox.due(now=n * 0.001, interval=2.0):
            outbox.sent(item, now=n * 0.001)
    answers_s = time.perf_counter() - began
    began = time.perf_counter()
    for tick in range(ticks):  # 0.1 s ticks: the backlog is re-sent every 2 s
        now = size * 0.001 + tick * 0.1
        for item in outbox.due(now=now, interval=2.0):
            outbox.sent(item, now=now)
    ticks_s = time.perf_counter() - began
    if [p.post_id for p in outbox.ordered()] != [r.post_id for r in rows]:
        raise SystemExit("outbox: the answers came out of order")
    return {
        "burst": size,
        "us_per_answer": round(answers_s * 1e6 / size, 1),
        "us_per_tick": round(ticks_s * 1e6 / ticks, 1),
    }


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.outbox")
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--ticks", type=int, default=100)
    args = parser.parse_args(argv)
    figures = burst(args.burst, args.ticks)
    print(
        f"outbox burst of {figures['burst']}: {figures['us_per_answer']} µs per answer, "
        f"{figures['us_per_tick']} µs per tick with {figures['burst']} undelivered"
    )
    save("outbox", figures, argv)
    return figures


if __name__ == "__main__":
    import asyncio

    asyncio.run(main())
