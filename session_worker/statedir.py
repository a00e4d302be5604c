"""The worker's state dir: private to its user, and owned by one worker at a time.

:func:`prepare` creates ``<state dir>`` with mode 0700 (tightening an existing one, as
``protocol.run_dir`` does for ``run/``): the journal holds every prompt and answer of the
thread. :func:`acquire` takes an exclusive, non-blocking ``flock`` on ``worker.lock``: two
workers on one journal would both run the queue and both answer. The lock belongs to the open
file, so it dies with the process however it dies (a SIGKILLed worker never blocks its
successor); the descriptor is not inherited by claude (close-on-exec, PEP 446).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from pathlib import Path

from session_worker.errors import AlreadyRunningError, WorkerError

__all__ = ["LOCK_NAME", "WorkerLock", "acquire", "prepare"]

LOCK_NAME = "worker.lock"


def prepare(state_dir: Path | str) -> Path:
    """Create the state dir with mode 0700 (tightening it if it exists) and return it."""
    path = Path(state_dir)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = path.stat()
    if info.st_uid != os.getuid():
        raise WorkerError(f"state dir {path} belongs to another user; refusing to use it")
    # 0710: roles under separate users (supervisor.users), the gateway's group passes through.
    if stat.S_IMODE(info.st_mode) not in (0o700, 0o710):
        path.chmod(0o700)
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
