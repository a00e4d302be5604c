"""Spawning one child role through ``multiprocess`` (spawn start method) and stopping it.

The Linux process plumbing (parent-death signal, subreaper, orphan sweep) is
``protocol.proctree``, shared with the worker.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from typing import TYPE_CHECKING, Any

import multiprocess

from protocol.proctree import drop_mattermost, set_parent_death_signal

if TYPE_CHECKING:
    from collections.abc import Iterator

    from gateway.config import GatewayConfig
    from session_worker.config import WorkerConfig
    from supervisor.users import RunAs

__all__ = ["ChildProcess", "child_main", "stop_resource_tracker"]

# Spawn, explicitly: multiprocess still defaults to fork, and a forked child would inherit
# the supervisor's threads and locks. Spawn costs ~180 ms per start, which a supervisor that
# restarts a few times a minute can afford.
_spawn = multiprocess.get_context("spawn")


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

        drop_mattermost(os.environ)  # the worker and its claude child never hold the token
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
