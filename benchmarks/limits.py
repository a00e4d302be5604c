"""The worker's bounds, as figures: how long one user's burst delays another user, and the
worker's peak memory when claude writes enormous stdout lines.

Fairness: one worker with the instant fake claude; alice posts ``--burst`` prompts at once,
then bob posts one. Printed: which turn bob's ran as, how many of alice's were queued and
refused (``MMCLAUDE_MAX_QUEUED_PER_USER``, set to 20 here; the default is 100), and bob's wait.
Memory: the worker's peak RSS (VmHWM) after claude wrote one stdout line of each
``--lines`` size (MB; the line is skipped past 16 MB and never held whole).

    python -m benchmarks.limits [--burst 80] [--lines 100,1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, save
from session_worker.testing import FakeGateway, fake_claude_executable, worker_config, write_config
from tests.support import ProcessGroup


def peak_mb(pid: int) -> float:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmHWM:"):
            return round(int(row.split()[1]) / 1024, 1)
    return 0.0


def start(
    procs: ProcessGroup, state: Path, claude: Path, env: dict[str, str], cap: int = 100
) -> int:
    config = write_config(
        worker_config(state, claude_path=str(claude), max_queued_per_user=cap),
        state / "worker.json",
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), **env}
    log = (state / "worker.log").open("ab")
    proc = procs.python("-m", "session_worker", str(config), env=env, cwd=REPO, stderr=log)
    return proc.pid


async def fairness(burst: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mmb-", dir="/tmp") as tmp, ProcessGroup() as procs:
        state = Path(tmp)
        start(procs, state, fake_claude_executable(state, REPO, sys.executable), {}, cap=20)
        with FakeGateway(state, f"ipc://{state}/run/inbox") as gw:
            gw.hello()
            await gw.wait_for(lambda g: g.welcomes(), 20, "Welcome")
            for i in range(burst):
                gw.prompt(f"a{i:03}", f"alice {i}", create_at=1000 + i)
            bob_at = time.monotonic()
            gw.prompt("bob", "bob's one", create_at=1000 + burst, user_id="u2", username="bob")
            await gw.wait_for(lambda g: len(g.first_answers()) == burst + 1, 120, "answers")
            bob_waited = time.monotonic() - bob_at
            answers = gw.first_answers()
            refused = [p for p, a in answers.items() if a.text.startswith("⚠️ Not queued")]
            ran = {
                p: int(a.text.split("]")[0].removeprefix("echo["))
                for p, a in answers.items()
                if a.text.startswith("echo[")
            }
            order = sorted(ran, key=ran.__getitem__)
    figures = {
        "alice_posts": burst,
        "alice_refused": len(refused),
        "alice_ran": len(order) - 1,
        "bob_turn": order.index("bob") + 1,
        "turns": len(order),
        "bob_waited_ms": round(bob_waited * 1000, 1),
    }
    print(
        f"alice posts {burst} at once, then bob 1: bob's ran as turn {figures['bob_turn']} "
        f"of {len(order)}; alice: {len(order) - 1} ran, {len(refused)} refused; "
        f"bob waited {figures['bob_waited_ms']} ms"
    )
    return figures


async def memory(sizes_mb: list[int]) -> list[dict[str, Any]]:
    rows = []
    for size in sizes_mb:
        with tempfile.TemporaryDirectory(prefix="mmb-", dir="/tmp") as tmp, ProcessGroup() as p:
            state = Path(tmp)
            wrapper = state / "overlong-claude"
            wrapper.write_text(
                f'#!/bin/sh\nexport PYTHONPATH="{REPO}"\n'
                f'exec "{sys.executable}" -m tests.chaos.overlong_claude "$@"\n'
            )
            wrapper.chmod(0o755)
            pid = start(p, state, wrapper, {"OVERLONG_BYTES": str(size << 20)})
            with FakeGateway(state, f"ipc://{state}/run/inbox") as gw:
                gw.hello()
                await gw.wait_for(lambda g: g.welcomes(), 20, "Welcome")
                before = peak_mb(pid)
                began = time.monotonic()
                gw.prompt("p1", "HUGEUSER please")
                await gw.wait_for(lambda g: g.answers("p1"), 600, "the answer")
                row = {
                    "line_mb": size,
                    "worker_peak_before_mb": before,
                    "worker_peak_after_mb": peak_mb(pid),
                    "turn_s": round(time.monotonic() - began, 2),
                }
        print(
            f"a {size} MB stdout line: worker peak RSS {row['worker_peak_before_mb']} → "
            f"{row['worker_peak_after_mb']} MB; the turn took {row['turn_s']} s"
        )
        rows.append(row)
    return rows


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.limits")
    parser.add_argument("--burst", type=int, default=80, help="alice's posts at once")
    parser.add_argument("--lines", default="100,1000", help="stdout line sizes, MB")
    args = parser.parse_args(argv)
    figures = {
        "fairness": await fairness(args.burst),
        "overlong_lines": await memory([int(s) for s in args.lines.split(",") if s]),
    }
    save("limits", figures, argv)
    return figures


if __name__ == "__main__":
    asyncio.run(main())
