"""The worker's state dir: private to its user, and owned by one worker at a time.

:func:`prepare` creates ``<state dir>`` private (``protocol.private``, the rule ``run/``
follows too): the journal holds every prompt and answer of the
thread. :func:`acquire` takes an exclusive, non-blocking ``flock`` on ``worker.lock``: two
workers on one journal would both run the queue and both answer. The lock belongs to the open
file, so it dies with the process however it dies (a SIGKILLed worker never blocks its
successor); the descriptor is not inherited by claude (close-on-exec, PEP 446).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from protocol.endpoints import prepare_run_dir
from protocol.errors import EndpointError, NotPrivateError
from protocol.private import ensure_private_dir
from session_worker.errors import AlreadyRunningError, WorkerError

__all__ = ["LOCK_NAME", "WorkerLock", "acquire", "prepare"]

LOCK_NAME = "worker.lock"


def prepare(state_dir: Path | str) -> Path:
    """Create the state dir and its run/ with mode 0700 (tightening them if they exist)."""
    try:
        path = ensure_private_dir(Path(state_dir))
        prepare_run_dir(path)
    except (NotPrivateError, EndpointError) as exc:
        raise WorkerError(f"state dir: {exc}") from None
    return path


class WorkerLock:
    """The held lock; :meth:`release` (or the process's end) lets the next worker in."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = None

    def __enter__(self) -> WorkerLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def acquire(state_dir: Path | str) -> WorkerLock:
    """Lock ``<state dir>/worker.lock`` and write our pid in it.

    :class:`AlreadyRunningError` (with the holder's pid when it wrote one) if another
    process holds it. Call :func:`prepare` first.
    """
    path = Path(state_dir) / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_pid(fd)
        os.close(fd)
        raise AlreadyRunningError(holder) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return WorkerLock(path, fd)


def _read_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(os.pread(fd, 32, 0).decode().strip())
    return None
