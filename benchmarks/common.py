"""Shared by the benchmark scripts: statistics, result files, the answer watcher, RSS and
the bare claude driver."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from session_worker.child import claude_command

if TYPE_CHECKING:
    from supervisor.status import Status

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parent.parent
# The bursts of one user measure the pipeline, not MMCLAUDE_MAX_QUEUED_PER_USER (whose
# refusals would otherwise answer most of a burst at once).
NO_USER_CAP = {"MMCLAUDE_MAX_QUEUED_PER_USER": "1000000"}


# --- statistics ---------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.4999)))
    return ordered[rank - 1]


def summary(values: list[float], digits: int = 2) -> dict[str, Any]:
    """n, median, p90, p99, mean, min, max of ``values`` (whatever unit they are in)."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median": round(statistics.median(values), digits),
        "p90": round(percentile(values, 90), digits),
        "p99": round(percentile(values, 99), digits),
        "mean": round(statistics.fmean(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def line(label: str, stats: dict[str, Any], unit: str = "ms") -> str:
    if not stats.get("n"):
        return f"{label}: no samples"
    return (
        f"{label}: median {stats['median']} {unit}, p90 {stats['p90']}, p99 {stats['p99']}, "
        f"min {stats['min']}, max {stats['max']} (n={stats['n']})"
    )


# --- results ------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="ascii") as f:
        for row in f:
            if row.startswith("model name"):
                cpu = row.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError), open("/proc/meminfo", encoding="ascii") as f:
        mem_kb = int(f.readline().split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "mem_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "claude_cli": claude_version(),
    }


def claude_version() -> str | None:
    from emulators.claude_cli import find_pinned_claude

    path = find_pinned_claude()
    if path is None:
        return None
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def save(name: str, figures: dict[str, Any], argv: list[str] | None = None) -> Path:
    """Write ``results/<name>.json`` with the command, the machine and the figures."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {
        "benchmark": name,
        "command": "python -m benchmarks." + " ".join([name, *(argv or sys.argv[1:])]),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        **figures,
    }
    path.write_text(json.dumps(data, indent=1) + "\n")
    print(f"-> {path}")
    return path


# --- the emulator side ----------------------------------------------------------------------


class AnswerWatch:
    """Records, for every prompt post, when the emulator created the first answer post.

    It wraps the in-process emulator's post publication (no polling of the whole store, which
    would cost O(posts) per check and load the very event loop the emulator runs on).
    """

    def __init__(self, mm: Any) -> None:
        self.mm = mm
        self.core = mm._core
        self.answered: dict[str, float] = {}  # prompt post id -> monotonic answer creation
        self._waiters: dict[str, asyncio.Future[float]] = {}
        self._count_waiters: list[tuple[int, asyncio.Future[None]]] = []
        original = self.core._publish_posted

        def publish(author: Any, post: Any, pending_id: str, set_online: bool) -> Any:
            rendered = original(author, post, pending_id, set_online)
            target = (post.props or {}).get("mmclaude_reply_to")
            if target and target not in self.answered:
                created = self.core.timings[post.id].created_at
                self.answered[target] = created
                waiter = self._waiters.pop(target, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(created)
                self._check_counts()
            return rendered

        self.core._publish_posted = publish

    def _check_counts(self) -> None:
        left = []
        for count, fut in self._count_waiters:
            if len(self.answered) >= count and not fut.done():
                fut.set_result(None)
            elif not fut.done():
                left.append((count, fut))
        self._count_waiters = left

    def timing(self, post_id: str) -> Any:
        return self.core.timings[post_id]

    async def answer(self, post_id: str, timeout: float = 60.0) -> float:
        """Monotonic time the first answer part to ``post_id`` was created."""
        if post_id in self.answered:
            return self.answered[post_id]
        fut = self._waiters.setdefault(post_id, asyncio.get_running_loop().create_future())
        return await asyncio.wait_for(asyncio.shield(fut), timeout)

    async def count(self, n: int, timeout: float) -> None:
        """Until ``n`` prompts in all have an answer."""
        if len(self.answered) >= n:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._count_waiters.append((n, fut))
        await asyncio.wait_for(fut, timeout)


async def ready_tree(tree: Any, timeout: float = 60.0) -> tuple[str, AnswerWatch]:
    """Wait for the bot's thread and one answered warm-up post; the thread id and a watch."""
    thread = await tree.wait_thread(timeout=timeout)
    watch = AnswerWatch(tree.mm)
    post = await tree.mm.post_as("alice", "warm-up", root_id=thread)
    await watch.answer(post["id"], timeout=timeout)
    return thread, watch


# --- processes ------------------------------------------------------------------------------


def rss_kb(pid: int | None) -> int | None:
    """VmRSS of ``pid`` in kB (None when gone)."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for row in f:
                if row.startswith("VmRSS:"):
                    return int(row.split()[1])
    except OSError:
        return None
    return None


def tree_pids(status: Status | None) -> dict[str, int | None]:
    if status is None:
        return {}
    pids: dict[str, int | None] = {"supervisor": status.supervisor.pid}
    for gw in status.gateways:
        pids[gw.name] = gw.pid
    pids["worker"] = status.worker.pid
    pids["claude"] = status.claude.pid
    return pids


def read_hops(log_path: Path) -> dict[str, dict[str, int]]:
    """``hop.*`` DEBUG lines of the worker: post id -> {hop name: monotonic ns}."""
    hops: dict[str, dict[str, int]] = {}
    with log_path.open(encoding="utf-8", errors="replace") as f:
        for raw in f:
            if '"hop.' not in raw:
                continue
            try:
                rec = json.loads(raw)
            except ValueError:
                continue
            name = str(rec.get("message", ""))
            if name.startswith("hop.") and "post_id" in rec and "t_ns" in rec:
                hops.setdefault(rec["post_id"], {}).setdefault(name[4:], int(rec["t_ns"]))
    return hops


class BareClaude:
    """A claude process driven directly: the worker's command line, our own stdin lines."""

    def __init__(self, path: str, args: tuple[str, ...], env: dict[str, str], cwd: str) -> None:
        self.argv = claude_command(path, args)
        self.env = env
        self.cwd = cwd
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, timeout: float = 60.0) -> float:
        """Spawn and send ``initialize``; seconds until it was answered."""
        began = time.monotonic()
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
            limit=16 * 1024 * 1024,
        )
        request = {
            "type": "control_request",
            "request_id": "init-1",
            "request": {"subtype": "initialize"},
        }
        await self._send(request)
        await self._until(lambda e: e.get("type") == "control_response", timeout)
        return time.monotonic() - began

    async def turn(self, text: str, timeout: float = 60.0) -> tuple[float, dict[str, Any]]:
        """Write one user line; seconds until its ``result``, and the result."""
        message = {"type": "user", "message": {"role": "user", "content": text}}
        began = time.monotonic()
        await self._send(message)
        result = await self._until(lambda e: e.get("type") == "result", timeout)
        return time.monotonic() - began, result

    async def _send(self, obj: dict[str, Any]) -> None:
        assert self.proc is not None
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(obj).encode() + b"\n")
        await self.proc.stdin.drain()

    async def _until(self, check: Any, timeout: float) -> dict[str, Any]:
        assert self.proc is not None
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            raw = await asyncio.wait_for(self.proc.stdout.readline(), deadline - time.monotonic())
            if not raw:
                raise RuntimeError(f"claude exited ({self.argv[0]})")
            with contextlib.suppress(ValueError):
                event = json.loads(raw)
                if isinstance(event, dict) and check(event):
                    return event

    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    async def close(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
