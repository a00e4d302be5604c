"""Where the time goes: py-spy samples the worker, the gateway and the supervisor (and the
fake claude) while a burst of posts goes through the tree, then prints the top frames.

Needs py-spy (`.venv/bin/pip install py-spy`; not a project dependency) and ptrace rights.
Not part of run_all.

    python -m benchmarks.hotspots [--posts 2000] [--top 15]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import NO_USER_CAP, RESULTS, ready_tree, save, tree_pids
from devtools.harness import open_tree


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    return found


def top(raw: Path, n: int) -> dict[str, Any]:
    """Self and inclusive sample shares per frame from py-spy's raw (collapsed) output."""
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for row in raw.read_text(errors="replace").splitlines():
        stack, _, count = row.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        k = int(count)
        frames = stack.split(";")
        total += k
        own[frames[-1]] += k
        for frame in set(frames):
            incl[frame] += k

    def pct(count: int) -> float:
        return round(100 * count / max(1, total), 1)

    return {
        "samples": total,
        "self": [(f, pct(c)) for f, c in own.most_common(n)],
        "inclusive": [(f, pct(c)) for f, c in incl.most_common(n * 2)],
    }


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hotspots")
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    args = parser.parse_args(argv)
    spy = py_spy()
    out = RESULTS / "profiles"
    out.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {}
    async with open_tree(real_claude=False, extra_env=NO_USER_CAP) as tree:
        thread, watch = await ready_tree(tree)
        pids = tree_pids(tree.status())
        spies = {}
        for name, pid in pids.items():
            if not pid:
                continue
            spies[name] = subprocess.Popen(  # noqa: ASYNC220 - fork+exec only
                [
                    spy,
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    str(args.rate),
                    "--format",
                    "raw",
                    "--nonblocking",
                    "-o",
                    str(out / f"{name}.txt"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        await asyncio.sleep(1.0)
        for i in range(args.posts):
            await tree.mm.post_as("alice", f"profiled {i}", root_id=thread)
            if i % 50 == 49:
                await asyncio.sleep(0)
        await watch.count(args.posts + 1, timeout=600)
        for proc in spies.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGINT)
        for proc in spies.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    for name in spies:
        path = out / f"{name}.txt"
        if not path.exists():
            continue
        figures[name] = top(path, args.top)
        print(f"\n== {name}: {figures[name]['samples']} samples; self time:")
        for frame, share in figures[name]["self"]:
            print(f"  {share:5.1f}%  {frame}")
    save("hotspots", figures, argv)
    return figures


if __name__ == "__main__":
    asyncio.run(main())
