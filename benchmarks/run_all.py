"""Every benchmark at its default size, one after the other (about 10 minutes on 2 cores).

python -m benchmarks.run_all        (make bench)
"""

from __future__ import annotations

import asyncio
import importlib
import time

NAMES = (
    "latency",
    "throughput",
    "spawn_vs_persistent",
    "overhead",
    "recovery",
    "memory",
    "limits",
    "outbox",
    "controls",
    "activity",
)


def main() -> None:
    began = time.monotonic()
    for name in NAMES:
        print(f"\n=== python -m benchmarks.{name}", flush=True)
        started = time.monotonic()
        module = importlib.import_module(f"benchmarks.{name}")
        asyncio.run(module.main([]))
        print(f"=== {name}: {time.monotonic() - started:.0f} s", flush=True)
    print(f"\nall benchmarks: {time.monotonic() - began:.0f} s; figures in benchmarks/results/")


if __name__ == "__main__":
    main()
