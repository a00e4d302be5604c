"""Spawning one child role through ``multiprocess`` (spawn start method) and stopping it.

Linux process plumbing lives here too: the parent-death signal each child sets on itself, the
supervisor's child-subreaper mode, and the sweep that kills orphans reparented to it (tool
processes of a dead worker's claude, which run in sessions of their own).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from typing import TYPE_CHECKING, Any

import multiprocess

if TYPE_CHECKING:
    from gateway.config import GatewayConfig
    from session_worker.config import WorkerConfig

__all__ = [
    "ChildProcess",
    "child_main",
    "children_of",
    "descendants",
    "pid_alive",
    "set_child_subreaper",
    "set_parent_death_signal",
    "stop_resource_tracker",
    "sweep_orphans",
]

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36

# Spawn, explicitly: multiprocess still defaults to fork, and a forked child would inherit
# the supervisor's threads and locks. Spawn costs ~180 ms per start, which a supervisor that
# restarts a few times a minute can afford.
_spawn = multiprocess.get_context("spawn")


def _prctl(option: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return False


def set_parent_death_signal(sig: int) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent thread dies."""
    return _prctl(_PR_SET_PDEATHSIG, int(sig))


def set_child_subreaper() -> bool:
    """Orphaned descendants are reparented to this process instead of PID 1."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def children_of(pid: int) -> dict[int, str]:
    """Direct children of ``pid`` with their state letter (read from /proc)."""
    found: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 1 and fields[1] == str(pid):
            found[int(entry)] = fields[0]
    return found


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def descendants(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (children, their children, …)."""
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        children = [c for c, state in children_of(frontier.pop()).items() if state != "Z"]
        frontier.extend(c for c in children if c not in found)
        found.update(children)
    return found


def sweep_orphans(known: set[int]) -> list[int]:
    """Kill and reap every child of ours that we did not spawn; returns their pids.

    Such children are orphans the kernel reparented to us (we are a subreaper): the claude
    of a worker that died (its parent-death signal is on the way) or its tool processes.
    """
    swept = []
    for pid, state in children_of(os.getpid()).items():
        if pid in known:
            continue
        swept.append(pid)
        if state != "Z":
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL) if os.getpgid(pid) == pid else None
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
    return swept


def stop_resource_tracker(timeout: float = 2.0) -> int | None:
    """Stop multiprocess's resource tracker and reap it before we exit; returns its pid.

    Spawning a child starts the tracker as our child; left alone it notices our death only
    after we are gone and lives on for a moment reparented to init. Closing its pipe is its
    signal to exit (it ignores SIGTERM); SIGKILL after ``timeout`` (a child still holding the
    pipe). Call once every child has exited.
    """
    from multiprocess import resource_tracker

    tracker = resource_tracker._resource_tracker
    fd, pid = getattr(tracker, "_fd", None), getattr(tracker, "_pid", None)
    if fd is None or pid is None:
        return None
    tracker._fd = tracker._pid = None
    with contextlib.suppress(OSError):
        os.close(fd)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return int(pid)
        except ChildProcessError:
            return int(pid)
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            return int(pid)
        time.sleep(0.005)


def child_main(role: str, config: Any, supervisor_pid: int) -> None:
    """The first code a spawned child runs: tie its life to the supervisor, then serve."""
    # SIGTERM rather than SIGKILL: the worker must still stop claude and its tools.
    set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != supervisor_pid:  # the supervisor died before the signal was armed
        os._exit(0)
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)  # a group of its own, so that a stop reaches only this child
    if role == "worker":
        from session_worker import run_worker

        for name in [n for n in os.environ if n.startswith("MATTERMOST_")]:
            del os.environ[name]  # the worker and its claude child never hold the token
        code = run_worker(config)
    else:
        from gateway import run_gateway

        code = run_gateway(config)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip multiprocess's atexit machinery: nothing of it is ours to flush


class ChildProcess:
    """One incarnation of a role: spawn, pid, sentinel, stop with grace, reap."""

    def __init__(self, role: str, name: str, config: GatewayConfig | WorkerConfig) -> None:
        self.role = role
        self.name = name
        self.config = config
        self.started_at = time.monotonic()
        self._process = _spawn.Process(
            target=child_main, args=(role, config, os.getpid()), name=name, daemon=False
        )
        self._process.start()
        self.pid: int = self._process.pid
        self.sentinel: int = self._process.sentinel

    @property
    def exitcode(self) -> int | None:
        code = self._process.exitcode
        return None if code is None else int(code)

    def reap(self) -> int | None:
        """Collect the exit status of a child whose sentinel fired."""
        self._process.join(timeout=0.5)
        return self.exitcode

    def is_alive(self) -> bool:
        return bool(self._process.is_alive())

    def signal(self, sig: int) -> None:
        """Signal the child's process group (its own), falling back to the pid."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(self.pid) == self.pid:
                os.killpg(self.pid, sig)
                return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.pid, sig)

    def kill_group(self) -> None:
        """SIGKILL whatever is left of the child's process group (after it died)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def close(self) -> None:
        with contextlib.suppress(ValueError, OSError):
            self._process.close()

    def __repr__(self) -> str:
        return f"<ChildProcess {self.name} pid={self.pid} exitcode={self.exitcode}>"
