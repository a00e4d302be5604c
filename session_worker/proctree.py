"""Linux process-tree plumbing: parent-death signal, child subreaper, orphan sweep.

claude's Bash tools run in their own session (setsid), so neither killing claude nor its
process group reaches them (claude-stream-json.md §5.5). As child subreaper the worker
inherits them when claude dies, and :func:`sweep_orphans` kills and reaps them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import signal
from typing import TYPE_CHECKING

from loguru import logger

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

__all__ = ["become_subreaper", "child_preexec", "orphans", "sweep_orphans"]

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36

_libc: ctypes.CDLL | None = None


def _prctl(option: int, arg: int) -> int:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return int(_libc.prctl(option, arg, 0, 0, 0))


def become_subreaper() -> bool:
    """Make orphaned descendants reparent to this process instead of PID 1 (Linux only)."""
    try:
        return _prctl(PR_SET_CHILD_SUBREAPER, 1) == 0
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return False


def child_preexec(parent_pid: int) -> Callable[[], None]:
    """A preexec_fn: SIGKILL this child when its parent dies; exit if it already has.

    The getppid check closes the race where the parent died between fork and prctl (the
    signal would then never come).
    """

    def preexec() -> None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            # The command name may contain spaces and parentheses: split after the last ")".
            return int(f.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def orphans(exclude: Collection[int]) -> list[int]:
    """Our direct children (from /proc) other than ``exclude`` (the live claude)."""
    me = os.getpid()
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            pid = int(entry)
            if pid not in exclude and _ppid(pid) == me:
                found.append(pid)
    return found


def _reap(pid: int) -> bool:
    """waitpid on exactly ``pid`` (never -1: that would steal asyncio's children)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True  # not our child (any more): someone reaped it
    return done == pid


async def sweep_orphans(exclude: Collection[int], timeout: float = 2.0) -> list[int]:
    """Kill the process group of every orphan reparented to us, and reap each one.

    Repeats while new orphans appear (killing one tree can orphan another setsid'd group),
    bounded by ``timeout``. Returns the pids that were killed.
    """
    killed: list[int] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        found = [p for p in orphans(exclude) if p not in killed]
        if not found:
            break
        for pid in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                group = os.getpgid(pid)
                # Never our own group: that would kill the worker itself.
                if group != os.getpgrp():
                    os.killpg(group, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        waiting = set(found)
        while waiting and loop.time() < deadline:
            waiting = {p for p in waiting if not _reap(p)}
            if waiting:
                await asyncio.sleep(0.01)
    if killed:
        logger.bind(pids=killed).info("claude.orphans_killed")
    return killed
