"""Live activity: how soon Claude's text shows in the thread, and what it costs in REST calls.

1. Text delta → visible. The fake claude (``--include-partial-messages``) drips a SLOW:s answer
   as text deltas, four a second. A poller in the emulator's own event loop notes when the
   activity post first shows each prefix of the answer. A delta's emission time is the turn's
   start (the worker's ``hop.claude_write``, CLOCK_MONOTONIC shared by every process) plus its
   index × 0.25 s (the fake's waits only add drift, so the figure errs high). Deltas from 2.5 s
   of turn on count: before 2 s there is no activity post by design.
2. Mattermost calls per turn, with MMCLAUDE_LIVE on and off: the emulator's REST request
   counter over N turns, for short (instant) turns and for SLOW:3 turns.

    python -m benchmarks.activity [--turns 5] [--slow 8] [--calls 20]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time
from typing import Any

from benchmarks.common import line, read_hops, ready_tree, save, summary
from devtools.harness import open_tree

DELTAS_PER_S = 4  # the fake claude's drip rate
COUNT_FROM_S = 2.5  # deltas earlier than this have no activity post to show in, by design


def _shown_prefix(message: str) -> int:
    """Characters of the answer an activity post shows (the text after the status lines)."""
    _, sep, text = message.partition("\n\n")
    return len(text.lstrip("…")) if sep else 0


async def visibility(turns: int, slow: float) -> dict[str, Any]:
    extra = {"MMCLAUDE_LOG_LEVEL": "DEBUG"}
    samples: list[float] = []
    async with open_tree(real_claude=False, extra_env=extra) as tree:
        thread, watch = await ready_tree(tree)
        for i in range(turns):
            words = " ".join(f"word{j:03d}" for j in range(60))
            post = await tree.mm.post_as("alice", f"SLOW:{slow} turn {i} {words}", root_id=thread)
            seen: list[tuple[float, int]] = []  # (monotonic, prefix length) at each change
            answered = asyncio.ensure_future(watch.answer(post["id"], timeout=slow + 60))
            last = -1
            while not answered.done():
                for p in tree.mm.posts(root_id=thread):
                    if (p.get("props") or {}).get("mmclaude_activity_for") == post["id"]:
                        shown = _shown_prefix(p["message"])
                        if shown != last:
                            seen.append((time.monotonic(), shown))
                            last = shown
                await asyncio.sleep(0.005)
            await answered
            await asyncio.sleep(0.3)  # the worker's hop lines reach the log
            start_ns = read_hops(tree.log_path).get(post["id"], {}).get("claude_write")
            if start_ns is None:
                continue
            start = start_ns / 1e9
            answer_len = len(f"echo[0]: SLOW:{slow} turn {i} {words}")
            steps = max(1, int(slow * DELTAS_PER_S))
            for k in range(1, steps + 1):
                emitted = start + k * slow / steps
                if emitted - start < COUNT_FROM_S:
                    continue
                need = math.ceil(answer_len * k / steps) - 2  # echo[N] may be 1 digit longer
                shown_at = next((t for t, n in seen if n >= need), None)
                if shown_at is not None and shown_at >= emitted - 0.05:
                    samples.append(max(0.0, shown_at - emitted) * 1000)
    return summary(samples)


async def calls_per_turn(turns: int, live: bool, slow: float) -> float:
    extra = {"MMCLAUDE_LIVE": "true" if live else "false"}
    async with open_tree(real_claude=False, extra_env=extra) as tree:
        thread, watch = await ready_tree(tree)
        await asyncio.sleep(1.0)  # the warm-up's reaction and typing calls are done
        before: int = tree.mm.statistics().rest_requests
        for i in range(turns):
            text = f"turn {i}" + (f" SLOW:{slow}" if slow else "")
            post = await tree.mm.post_as("alice", text, root_id=thread)
            await watch.answer(post["id"], timeout=slow + 30)
        await asyncio.sleep(2.0)  # the last summary edit and reaction land
        after: int = tree.mm.statistics().rest_requests
        return (after - before) / turns


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.activity")
    parser.add_argument("--turns", type=int, default=5, help="drip-fed turns for visibility")
    parser.add_argument("--slow", type=float, default=8.0, help="seconds each drip turn lasts")
    parser.add_argument("--calls", type=int, default=20, help="turns per REST-call count")
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {}
    vis = await visibility(args.turns, args.slow)
    figures["delta_to_visible_ms"] = vis
    print(line("text delta → visible in the activity post", vis))
    figures["rest_calls_per_turn"] = {}
    for label, slow in (("short", 0.0), ("slow_3s", 3.0)):
        for live in (True, False):
            value = await calls_per_turn(
                args.calls if not slow else max(3, args.calls // 4), live, slow
            )
            key = f"{label}_live_{'on' if live else 'off'}"
            figures["rest_calls_per_turn"][key] = round(value, 2)
            print(f"REST calls per turn, {label} turns, MMCLAUDE_LIVE={live}: {value:.2f}")
    save("activity", figures, argv)
    return figures


if __name__ == "__main__":
    asyncio.run(main())
