"""Recovery: SIGKILL of claude, of the worker, of the gateway → the next answer in the thread.

For each kind, repeated: wait until the tree is healthy, SIGKILL the process (pid from
`mmclaude status`), post a message right after the kill, and time kill → that answer's post
created (the emulator's clock). With the instant fake claude the figure is mmclaude's own
recovery (detection, backoff, respawn, handshake, resend/catch-up); with the real CLI it
includes the CLI's start. Each worker/gateway kill comes --settle s after the previous
restart, so each one is a first crash (no backoff streak).

    python -m benchmarks.recovery [--reps 5] [--claude fake|real|both]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from typing import TYPE_CHECKING, Any

from benchmarks.common import line, ready_tree, save, summary
from devtools.harness import open_tree

if TYPE_CHECKING:
    from supervisor.status import Status

KINDS = ("claude", "worker", "gateway")


def pid_of(status: Status, kind: str) -> int | None:
    if kind == "gateway":
        pid = status.gateways[0].pid if status.gateways else None
    else:
        pid = status.claude.pid if kind == "claude" else status.worker.pid
    return pid or None


def healthy(status: Status) -> bool:
    gws = status.gateways
    return bool(
        status.worker.pid
        and status.worker.state == "running"
        and status.claude.pid
        and gws
        and all(g.state == "running" and g.connected for g in gws)
    )


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.recovery")
    parser.add_argument("--reps", type=int, default=3, help="kills of each kind")
    parser.add_argument("--claude", choices=("fake", "real", "both"), default="both")
    parser.add_argument(
        "--settle",
        type=float,
        default=10.5,
        help="seconds up before killing a worker/gateway again (the supervisor's backoff "
        "streak resets after 10 s up; less measures the backoff)",
    )
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {}
    for which in ("fake", "real") if args.claude == "both" else (args.claude,):
        print(f"with the {which} claude:")
        figures[which] = await kills(which == "real", args.reps, args.settle)
    save("recovery", figures, argv)
    return figures


async def kills(real: bool, reps: int, settle: float) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    # The restart intensity (5 in 60 s) would stop the tree during the repetitions.
    extra = {"MMCLAUDE_MAX_RESTARTS": "1000"}
    async with open_tree(real_claude=real, extra_env=extra) as tree:
        thread, watch = await ready_tree(tree, timeout=120)
        for kind in KINDS:
            times: list[float] = []
            for rep in range(reps):
                await tree.wait_status(healthy, timeout=60)
                # claude's backoff resets on every completed turn; the supervisor's only after
                # 10 s up, so a quicker kill would measure its backoff streak instead.
                await asyncio.sleep(1.0 if kind == "claude" else settle)
                status = await tree.wait_status(healthy, timeout=60)
                # A quiet tree: the previous answer is in and nothing is queued.
                pid = pid_of(status, kind)
                assert pid, status
                killed = time.monotonic()
                os.kill(pid, signal.SIGKILL)
                post = await tree.mm.post_as("alice", f"after {kind} kill {rep}", root_id=thread)
                answered = await watch.answer(post["id"], timeout=60)
                times.append((answered - killed) * 1000)
                print(f"  {kind} kill {rep}: answer {times[-1]:.0f} ms after the kill")
            figures[f"{kind}_ms"] = summary(times, digits=0)
            print(line(f"SIGKILL {kind} → next answer", figures[f"{kind}_ms"]))
    return figures


if __name__ == "__main__":
    asyncio.run(main())
