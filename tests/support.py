"""Helpers shared by the integration and chaos tests: short temp dirs, bounded polling, and
cleanup of every process a test starts (by pid and process group, never by name)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

from protocol.procfs import descendants, pid_alive

__all__ = [
    "FIXTURES",
    "REPO",
    "ProcessGroup",
    "async_wait_for",
    "descendants",  # the one /proc parser, protocol.procfs, re-exported for the tests
    "kill_tree",
    "pid_alive",
    "short_tmpdir",
    "wait_for",
]

T = TypeVar("T")

REPO = Path(__file__).resolve().parent.parent
# Recorded real CLI streams, copied from shared/fixtures so the suite needs nothing outside
# the repository.
FIXTURES = REPO / "tests" / "fixtures" / "claude-stream-json"


@contextlib.contextmanager
def short_tmpdir(prefix: str = "mmc-") -> Iterator[Path]:
    """A temp dir short enough for ipc socket paths (107 bytes), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def wait_for(
    predicate: Callable[[], T | bool | None], timeout: float, what: str, interval: float = 0.02
) -> T:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value  # type: ignore[return-value]  # truthy, so not None or False
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


async def async_wait_for(
    predicate: Callable[[], Awaitable[T | bool | None]] | Callable[[], T | bool | None],
    timeout: float,
    what: str,
    interval: float = 0.02,
) -> T:
    """The asyncio twin of :func:`wait_for`; ``predicate`` may be sync or async."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value) or isinstance(value, Awaitable):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


def kill_tree(pids: set[int] | list[int], sig: int = signal.SIGKILL) -> None:
    """Signal each pid's process group and the pid itself; ignore the ones already gone."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(os.getpgid(pid), sig)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


class ProcessGroup:
    """Processes started by a test, each in its own session, all killed on exit.

    Also remembers extra pids (grandchildren a test learnt about) so they are killed too.
    """

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.extra: set[int] = set()

    def start(self, args: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
        kwargs.setdefault("start_new_session", True)
        proc = subprocess.Popen(args, **kwargs)  # type: ignore[call-overload]
        self.procs.append(proc)
        return proc  # type: ignore[no-any-return]

    def python(self, *args: str, **kwargs: object) -> subprocess.Popen[bytes]:
        return self.start([sys.executable, *args], **kwargs)

    def close(self) -> None:
        pids = {p.pid for p in self.procs} | self.extra
        for p in self.procs:
            pids |= descendants(p.pid)
        kill_tree(pids)
        for p in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=5)
            for stream in (p.stdin, p.stdout, p.stderr):
                if stream is not None:
                    stream.close()

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
