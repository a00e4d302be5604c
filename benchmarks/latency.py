"""Added latency per post with an instant fake claude, and its split per hop.

Sequential posts (post, wait for the answer, next). Latency = the emulator's ``posted``
broadcast of the prompt → the emulator's creation of the answer post, minus the fake
claude's own median turn time (measured by driving the fake directly, same turns).

A second, traced run (MMCLAUDE_LOG_LEVEL=DEBUG) splits it with the worker's ``hop.*`` lines
(CLOCK_MONOTONIC, shared with the emulator): gateway in (WS frame written → worker inbox),
worker accept (journal commit + Accepted), worker queue (→ line written to claude), claude
pipe (→ result read), worker out (→ Answer pushed), gateway post (→ answer post created).
The two gateway hops are derived from emulator-side and worker-side marks: the gateway
itself is not instrumented.

    python -m benchmarks.latency [--posts 200] [--traced 100]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import BareClaude, line, read_hops, ready_tree, save, summary
from devtools.harness import fake_claude_path, open_tree

HOPS = (
    ("ws_write", "emulator: broadcast → frame written to the bot's socket"),
    ("gateway_in", "gateway in: frame written → worker received Prompt"),
    ("worker_accept", "worker: journal insert + Accepted"),
    ("worker_queue", "worker queue: accepted → line written to claude"),
    ("claude_pipe", "claude pipe: line written → result read (includes the fake's own time)"),
    ("worker_out", "worker out: result → Answer pushed (journal commit)"),
    ("gateway_post", "gateway post: Answer pushed → answer post created"),
)


async def fake_turn_ms(turns: int) -> dict[str, Any]:
    """The fake claude's own write→result time, driven directly (no mmclaude)."""
    with tempfile.TemporaryDirectory(prefix="mmc-bench-") as scratch:
        env = {**__import__("os").environ, "FAKE_CLAUDE_SESSIONS_DIR": f"{scratch}/sessions"}
        claude = BareClaude(fake_claude_path(Path(scratch)), (), env, scratch)
        try:
            await claude.start()
            await claude.turn("warm-up")
            times = [(await claude.turn(f"message {i}"))[0] * 1000 for i in range(turns)]
        finally:
            await claude.close()
    return summary(times)


async def sequential(
    posts: int, traced: bool, real: bool = False
) -> tuple[list[float], dict[str, list[float]]]:
    extra = {"MMCLAUDE_LOG_LEVEL": "DEBUG"} if traced else {}
    latencies: list[float] = []
    marks: list[tuple[str, Any, float]] = []
    async with open_tree(real_claude=real, extra_env=extra) as tree:
        thread, watch = await ready_tree(tree)
        bot = tree.mm.bot.id
        for i in range(posts):
            post = await tree.mm.post_as("alice", f"message {i}", root_id=thread)
            answered = await watch.answer(post["id"], timeout=30)
            timing = watch.timing(post["id"])
            latencies.append((answered - timing.broadcast_at) * 1000)
            marks.append((post["id"], timing, answered))
        hops: dict[str, list[float]] = {name: [] for name, _ in HOPS}
        if traced:
            await asyncio.sleep(0.5)  # the last lines reach the log file
            trace = read_hops(tree.log_path)
            for post_id, timing, answered in marks:
                t = trace.get(post_id, {})
                need = ("worker_recv", "worker_accepted", "claude_write", "claude_result")
                if (
                    not all(k in t for k in (*need, "answer_sent"))
                    or bot not in timing.delivered_at
                ):
                    continue
                ns = {k: v / 1e6 for k, v in t.items()}  # ms
                ws = timing.delivered_at[bot] * 1000
                hops["ws_write"].append(ws - timing.broadcast_at * 1000)
                hops["gateway_in"].append(ns["worker_recv"] - ws)
                hops["worker_accept"].append(ns["worker_accepted"] - ns["worker_recv"])
                hops["worker_queue"].append(ns["claude_write"] - ns["worker_accepted"])
                hops["claude_pipe"].append(ns["claude_result"] - ns["claude_write"])
                hops["worker_out"].append(ns["answer_sent"] - ns["claude_result"])
                hops["gateway_post"].append(answered * 1000 - ns["answer_sent"])
    return latencies, hops


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.latency")
    parser.add_argument("--posts", type=int, default=200, help="sequential posts (untraced)")
    parser.add_argument("--traced", type=int, default=100, help="posts of the traced run (0: none)")
    parser.add_argument(
        "--real", action="store_true", help="the real CLI (fake API): hops only, no subtraction"
    )
    args = parser.parse_args(argv)
    if args.real:
        return await real_hops(args.traced or args.posts, argv)

    fake = await fake_turn_ms(args.posts)
    print(line("fake claude alone, write → result", fake))
    latencies, _ = await sequential(args.posts, traced=False)
    total = summary(latencies)
    added = summary([v - fake["median"] for v in latencies])
    print(line("posted → answer post created", total))
    print(line("added by mmclaude (minus the fake's median)", added))
    figures: dict[str, Any] = {"fake_turn_ms": fake, "end_to_end_ms": total, "added_ms": added}
    if args.traced:
        traced, hops = await sequential(args.traced, traced=True)
        figures["traced_end_to_end_ms"] = summary(traced)
        print(line("traced run (DEBUG logs), posted → answer", figures["traced_end_to_end_ms"]))
        figures["hops_ms"] = {}
        for name, label in HOPS:
            stats = summary(hops[name], digits=3)
            figures["hops_ms"][name] = {"what": label, **stats}
            print(line(f"  {label}", stats))
    save("latency", figures, argv)
    return figures


async def real_hops(posts: int, argv: list[str] | None) -> dict[str, Any]:
    traced, hops = await sequential(posts, traced=True, real=True)
    figures: dict[str, Any] = {"traced_end_to_end_ms": summary(traced), "hops_ms": {}}
    print(line("real CLI, traced, posted → answer", figures["traced_end_to_end_ms"]))
    for name, label in HOPS:
        stats = summary(hops[name], digits=3)
        figures["hops_ms"][name] = {"what": label, **stats}
        print(line(f"  {label}", stats))
    save("latency_real", figures, argv)
    return figures


if __name__ == "__main__":
    asyncio.run(main())
