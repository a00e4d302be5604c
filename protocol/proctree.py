"""Linux process-tree plumbing shared by the supervisor and the worker, one rule each:
the parent-death signal, the child-subreaper mode, the orphan sweep, and keeping
``MATTERMOST_*`` out of an environment.

claude's Bash tools run in their own session (setsid), so neither killing claude nor its
process group reaches them (claude-stream-json.md §5.5). A subreaper (the supervisor, the
worker) inherits such orphans when their parent dies, and :func:`sweep_orphans` kills and
reaps them. Only exact pids are reaped (never ``waitpid(-1)``: that would steal the children
asyncio or multiprocess wait for).
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

from protocol.procfs import children_of

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping, MutableMapping

__all__ = [
    "become_subreaper",
    "child_preexec",
    "drop_mattermost",
    "kill_orphans",
    "orphans",
    "set_parent_death_signal",
    "sweep_orphans",
    "without_mattermost",
]

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36

_libc: ctypes.CDLL | None = None


def _prctl(option: int, arg: int) -> bool:
    """prctl(2); False where it is not available (not Linux) or refused."""
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return int(_libc.prctl(option, arg, 0, 0, 0)) == 0
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return False


def set_parent_death_signal(sig: int) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent thread dies."""
    return _prctl(PR_SET_PDEATHSIG, int(sig))


def become_subreaper() -> bool:
    """Orphaned descendants are reparented to this process instead of PID 1."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1)


def child_preexec(parent_pid: int) -> Callable[[], None]:
    """A preexec_fn: SIGKILL this child when its parent dies; exit if it already has.

    The getppid check closes the race where the parent died between fork and prctl (the
    signal would then never come).
    """

    def preexec() -> None:
        set_parent_death_signal(signal.SIGKILL)
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec


def _is_mattermost(name: str) -> bool:
    return name.startswith("MATTERMOST_")


def without_mattermost(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` minus every ``MATTERMOST_*`` variable: a child must never see the token
    (its tools could read /proc/<pid>/environ)."""
    return {k: v for k, v in environ.items() if not _is_mattermost(k)}


def drop_mattermost(environ: MutableMapping[str, str]) -> None:
    """Remove every ``MATTERMOST_*`` variable from ``environ`` (``os.environ``: what the
    children we start from now on inherit)."""
    for name in [n for n in environ if _is_mattermost(n)]:
        del environ[name]


def orphans(exclude: Collection[int]) -> list[int]:
    """Our direct children (from /proc, zombies included) other than ``exclude``."""
    return [pid for pid in children_of(os.getpid()) if pid not in exclude]


def _kill(pid: int) -> None:
    """SIGKILL ``pid``'s process group (never our own) and ``pid`` itself."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        group = os.getpgid(pid)
        if group != os.getpgrp():
            os.killpg(group, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def _reap(pid: int) -> bool:
    """waitpid on exactly ``pid``, not blocking; True once it is reaped (or not ours)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == pid


def kill_orphans(exclude: Collection[int]) -> list[int]:
    """One pass: kill every orphan of ours not in ``exclude`` and reap the ones already dead
    (the rest are reaped by the next pass). Returns the orphans found."""
    found = orphans(exclude)
    for pid in found:
        _kill(pid)
        _reap(pid)
    return found


async def sweep_orphans(exclude: Collection[int], timeout: float = 2.0) -> list[int]:
    """:func:`kill_orphans` until none is left and each is reaped, bounded by ``timeout``
    (killing one tree can orphan another setsid'd group). Returns the pids killed."""
    killed: list[int] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        found = [p for p in kill_orphans(exclude) if p not in killed]
        if not found:
            break
        killed.extend(found)
        waiting = set(found)
        while waiting and loop.time() < deadline:
            waiting = {p for p in waiting if not _reap(p)}
            if waiting:
                await asyncio.sleep(0.01)
    if killed:
        logger.info("orphans.killed", pids=killed)
    return killed
