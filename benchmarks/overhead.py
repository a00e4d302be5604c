"""mmclaude's per-message latency against a bare persistent claude fed directly.

Both with the REAL Claude Code CLI against the fake Anthropic API and the same command line
(`-p --input-format stream-json --output-format stream-json --verbose --bare`). The bare side
is our own driver writing user lines and waiting for each `result` (the physical limit); the
mmclaude side is posted → answer post created, sequential posts. The ratio is of medians.

    python -m benchmarks.overhead [--posts 40]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from typing import Any

from benchmarks.common import BareClaude, line, save, summary
from benchmarks.spawn_vs_persistent import through_mmclaude
from emulators.anthropic_api.process import open_anthropic_api_process
from emulators.claude_cli import REAL_CLAUDE_ARGS, find_pinned_claude, real_claude_env


async def bare_turns(posts: int, partial: bool = True) -> list[float]:
    path = find_pinned_claude()
    if path is None:
        raise SystemExit("no Claude Code CLI installed: run `npm ci`")
    with tempfile.TemporaryDirectory(prefix="mmc-bench-") as scratch:
        async with open_anthropic_api_process() as api:  # as the tree has it
            # The same command line as mmclaude's: with MMCLAUDE_LIVE (the default) it adds
            # --include-partial-messages, so the bare side streams the same events.
            args = (
                (*REAL_CLAUDE_ARGS, "--include-partial-messages") if partial else REAL_CLAUDE_ARGS
            )
            claude = BareClaude(path, args, real_claude_env(api.url, scratch), scratch)
            try:
                await claude.start()
                await claude.turn("warm-up")
                return [(await claude.turn(f"question number {i}"))[0] * 1000 for i in range(posts)]
            finally:
                await claude.close()


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.overhead")
    parser.add_argument("--posts", type=int, default=40, help="sequential turns per side")
    parser.add_argument("--rounds", type=int, default=2, help="alternate bare/mmclaude rounds")
    parser.add_argument(
        "--live",
        choices=("true", "false"),
        default="true",
        help="MMCLAUDE_LIVE of the tree (and --include-partial-messages on the bare side)",
    )
    args = parser.parse_args(argv)
    live = args.live == "true"
    bare: list[float] = []
    through: list[float] = []
    for _ in range(args.rounds):  # alternated, so that drift of the machine hits both
        bare += await bare_turns(args.posts, partial=live)
        through += await through_mmclaude(
            args.posts, spawn_per_message=False, extra_env={"MMCLAUDE_LIVE": args.live}
        )
    b, m = summary(bare), summary(through)
    print(line("bare persistent claude, write → result", b))
    print(line("through mmclaude, posted → answer post", m))
    ratio = round(m["median"] / b["median"], 2)
    print(f"mmclaude / bare: {ratio}x at the median (+{m['median'] - b['median']:.1f} ms)")
    figures = {
        "bare_ms": b,
        "mmclaude_ms": m,
        "ratio_median": ratio,
        "added_median_ms": round(m["median"] - b["median"], 2),
    }
    save("overhead", figures, argv)
    return figures


if __name__ == "__main__":
    asyncio.run(main())
