"""The headline: one persistent claude against a `claude -p` spawned per message.

Both run through the whole of mmclaude with the REAL Claude Code CLI against the fake
Anthropic API. The persistent side is mmclaude as built; the spawn-per-message side is
mmclaude with CLAUDE_PATH = benchmarks/spawn_adapter.py, which starts one `claude -p
--resume SID` per message (the old design). Latency = the prompt's `posted` broadcast →
the answer post created, sequential posts.

    python -m benchmarks.spawn_vs_persistent [--posts 30]
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from benchmarks.common import line, ready_tree, save, summary
from devtools.harness import open_tree

ADAPTER = Path(__file__).resolve().parent / "spawn_adapter.py"


async def through_mmclaude(
    posts: int, *, spawn_per_message: bool, extra_env: dict[str, str] | None = None
) -> list[float]:
    """Sequential posts through mmclaude with the real CLI; latencies in ms.

    The last answer is printed, to show that it is a real answer (not an error)."""
    extra = {"CLAUDE_PATH": str(ADAPTER)} if spawn_per_message else {}
    extra.update(extra_env or {})
    latencies = []
    async with open_tree(real_claude=True, extra_env=extra) as tree:
        thread, watch = await ready_tree(tree, timeout=120)
        for i in range(posts):
            post = await tree.mm.post_as("alice", f"question number {i}", root_id=thread)
            answered = await watch.answer(post["id"], timeout=120)
            latencies.append((answered - watch.timing(post["id"]).broadcast_at) * 1000)
        last = [p for p in tree.mm.posts(root_id=thread) if p["user_id"] == tree.mm.bot.id]
        print(f"  (last answer: {last[-1]['message'][:80]!r})")
    return latencies


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.spawn_vs_persistent")
    parser.add_argument("--posts", type=int, default=30, help="sequential posts per side")
    args = parser.parse_args(argv)
    persistent = summary(await through_mmclaude(args.posts, spawn_per_message=False))
    print(line("persistent claude, through mmclaude", persistent))
    spawned = summary(await through_mmclaude(args.posts, spawn_per_message=True))
    print(line("claude -p per message, through mmclaude", spawned))
    ratio = round(spawned["median"] / persistent["median"], 1)
    ratio_p99 = round(spawned["p99"] / persistent["p99"], 1)
    print(f"spawn-per-message / persistent: {ratio}x at the median, {ratio_p99}x at p99")
    figures = {
        "persistent_ms": persistent,
        "spawn_per_message_ms": spawned,
        "ratio_median": ratio,
        "ratio_p99": ratio_p99,
    }
    save("spawn_vs_persistent", figures, argv)
    return figures


if __name__ == "__main__":
    asyncio.run(main())
