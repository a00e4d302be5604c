"""What splitting an answer costs the gateway, and what defusing a hostile post costs, by size
and shape (split used to be worse than quadratic: 1 MB took 2 s, 2 MB 12 s, 256 KB of fence
lines 5.6 s). Not part of run_all: a pure-CPU figure, seconds to run.

    python -m benchmarks.split_cost [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from typing import TYPE_CHECKING

from benchmarks.common import save
from gateway.models import decode_json
from gateway.splitting import reassemble, split

if TYPE_CHECKING:
    from collections.abc import Callable

PROSE_LINE = "lorem ipsum dolor sit amet, " * 3 + "\n"
SHAPES: dict[str, Callable[[int], str]] = {
    "prose": lambda n: (PROSE_LINE * (n // len(PROSE_LINE) + 1))[:n],
    "fence lines": lambda n: ("```\n" * (n // 4 + 1))[:n],
    "code blocks": lambda n: (("```py\n" + "x = 1\n" * 40 + "```\n\n") * (n // 260 + 1))[:n],
    "one long line": lambda n: "x" * n,
}
SIZES = (256 * 1024, 1024 * 1024, 2 * 1024 * 1024)


def best_of(repeat: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    figures: dict[str, dict[str, float | int]] = {}
    for shape, make in SHAPES.items():
        for size in SIZES:
            text = make(size)
            parts = split(text)
            key = f"{shape} {size // 1024} KB"
            figures[key] = {
                "split_ms": best_of(args.repeat, partial(split, text)),
                "reassemble_ms": best_of(args.repeat, partial(reassemble, parts)),
                "parts": len(parts),
            }
            print(
                f"{key:>24}: split {figures[key]['split_ms']:8.1f} ms, "
                f"reassemble {figures[key]['reassemble_ms']:8.1f} ms, {len(parts)} parts"
            )
    for depth in (5_000, 400_000, 4_000_000):
        post = '{"id":"x","props":{"a":' + "[" * depth + "]" * depth + "}}"
        key = f"post nested {depth} deep"
        figures[key] = {"decode_ms": best_of(args.repeat, partial(decode_json, post))}
        print(f"{key:>24}: decode {figures[key]['decode_ms']:8.1f} ms")
    save("split_cost", figures, argv)


if __name__ == "__main__":
    main()
