"""Throughput with an instant fake claude: a burst, then a sustained open-loop rate.

Burst: N posts created back to back in the thread, answered posts per second from the first
post to the last answer. Sustained: posts at a fixed rate for a while (default: 60 % of the
burst rate), the rate of answers achieved and the latency under that load.

    python -m benchmarks.throughput [--burst 1000] [--duration 30] [--rate R]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from benchmarks.common import NO_USER_CAP, line, ready_tree, save, summary
from devtools.harness import open_tree


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.throughput")
    parser.add_argument("--burst", type=int, default=1000, help="posts in the burst")
    parser.add_argument("--duration", type=float, default=30.0, help="sustained run, seconds")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="sustained posts/s (0: 60%% of burst)"
    )
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {}
    async with open_tree(real_claude=False, extra_env=NO_USER_CAP) as tree:
        thread, watch = await ready_tree(tree)
        base = len(watch.answered)
        began = time.monotonic()
        ids = []
        for i in range(args.burst):
            post = await tree.mm.post_as("alice", f"burst {i}", root_id=thread)
            ids.append(post["id"])
        posted = time.monotonic()
        await watch.count(base + args.burst, timeout=max(120.0, args.burst * 0.5))
        last = max(watch.answered[i] for i in ids)
        rate = args.burst / (last - began)
        lat = summary([(watch.answered[i] - watch.timing(i).broadcast_at) * 1000 for i in ids])
        figures["burst"] = {
            "posts": args.burst,
            "posting_s": round(posted - began, 3),
            "first_post_to_last_answer_s": round(last - began, 3),
            "answers_per_s": round(rate, 1),
            "latency_ms": lat,
        }
        print(f"burst of {args.burst}: {rate:.1f} answered posts/s ({last - began:.2f} s)")
        print(line("  posted → answered, in the burst", lat))

        target = args.rate or round(rate * 0.6, 1)
        interval = 1.0 / target
        sent: list[str] = []
        began = time.monotonic()
        next_at = began
        while (now := time.monotonic()) < began + args.duration:
            if now < next_at:
                await asyncio.sleep(next_at - now)
            post = await tree.mm.post_as("alice", f"steady {len(sent)}", root_id=thread)
            sent.append(post["id"])
            next_at += interval
        base = base + args.burst
        await watch.count(base + len(sent), timeout=120)
        ended = max(watch.answered[i] for i in sent)
        lat_s = [(watch.answered[i] - watch.timing(i).broadcast_at) * 1000 for i in sent]
        in_window = sum(1 for i in sent if watch.answered[i] <= began + args.duration)
        figures["sustained"] = {
            "offered_per_s": target,
            "duration_s": args.duration,
            "posts": len(sent),
            "answers_per_s": round(len(sent) / (ended - began), 1),
            "answered_within_window": in_window,
            "drain_after_window_s": round(max(0.0, ended - began - args.duration), 3),
            "latency_ms": summary(lat_s),
        }
        print(
            f"sustained {target}/s for {args.duration:.0f} s: {len(sent)} posts, "
            f"{figures['sustained']['answers_per_s']} answered/s, "
            f"backlog drained {figures['sustained']['drain_after_window_s']} s after the window"
        )
        print(line("  posted → answered, sustained", figures["sustained"]["latency_ms"]))
    save("throughput", figures, argv)
    return figures


if __name__ == "__main__":
    asyncio.run(main())
