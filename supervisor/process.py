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
    from collections.abc import Iterator

    from gateway.config import GatewayConfig
    from session_worker.config import WorkerConfig
    from supervisor.users import RunAs

__all__ = [
    "ChildProcess",
    "child_main",
    "children_of",
    "descendants",
    "pid_alive",
    "set_child_subreaper",
    "set_parent_death_signal",
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


def child_main(role: str, config: Any, supervisor_pid: int, run_as: RunAs | None = None) -> None:
    """The first code a spawned child runs: become its user, tie its life to the supervisor,
    then serve."""
    if run_as is not None:
        from supervisor.users import become

        become(run_as)  # first: a change of user clears the parent-death signal
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

        for name in [n for n in os.environ if n.startswith(CLAUDE_ONLY)]:
            del os.environ[name]  # the Anthropic key is claude's alone
        code = run_gateway(config)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip multiprocess's atexit machinery: nothing of it is ours to flush


# Variables only claude may see: a gateway is spawned without them (its /proc/<pid>/environ
# is fixed at exec, so deleting them in the child would be too late).
CLAUDE_ONLY = ("ANTHROPIC_", "CLAUDE_CODE_")


@contextlib.contextmanager
def environment_without(prefixes: tuple[str, ...]) -> Iterator[None]:
    """Remove the variables starting with ``prefixes`` from our environment for a while."""
    saved = {k: v for k, v in os.environ.items() if k.startswith(prefixes)}
    for name in saved:
        del os.environ[name]
    try:
        yield
    finally:
        os.environ.update(saved)


class ChildProcess:
    """One incarnation of a role: spawn, pid, sentinel, stop with grace, reap."""

    def __init__(
        self,
        role: str,
        name: str,
        config: GatewayConfig | WorkerConfig,
        run_as: RunAs | None = None,
    ) -> None:
        self.role = role
        self.name = name
        self.config = config
        self.started_at = time.monotonic()
        self._process = _spawn.Process(
            target=child_main, args=(role, config, os.getpid(), run_as), name=name, daemon=False
        )
        if role == "worker":
            self._process.start()
        else:
            with environment_without(CLAUDE_ONLY):
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
