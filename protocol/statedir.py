"""The state dir's safety check, shared by every process before it binds or writes anything.

The state dir holds the journal and the ipc sockets: whoever can write in it can take a
socket's place (a second bind to an ipc path silently takes the traffic) or read every
prompt. So it must belong to the user we run as and be writable by nobody else. A missing
dir is created 0700; a dir of ours with a loose but not writable mode (0755) is tightened;
anything else is refused with a :class:`StateDirError` whose text names the setting, and
the caller exits 2 with that one line.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from protocol.endpoints import run_dir
from protocol.errors import StateDirError

__all__ = [
    "SETTING",
    "SHARED_RUN_MODE",
    "SHARED_STATE_MODE",
    "prepare_run_dir",
    "prepare_state_dir",
    "private_dir",
]

SETTING = "MMCLAUDE_STATE_DIR"
# The modes of the state dir and its run dir laid out for roles under separate users
# (supervisor.users): the gateway's group may pass through the state dir and use the sockets.
SHARED_STATE_MODE = 0o710
SHARED_RUN_MODE = 0o2770


def private_dir(path: Path | str, setting: str = SETTING, shared_mode: int | None = None) -> Path:
    """Create ``path`` 0700 if missing and check that only we can use it; return it.

    ``shared_mode``: the mode of the same directory laid out for roles under separate users
    (``supervisor.users``: owned by the worker's user, its group ours too). Such a directory
    is used as it is, by a process of that group or by root.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = path.stat()
    except OSError as exc:
        raise StateDirError(f"{setting}: cannot use {str(path)!r}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise StateDirError(f"{setting}: {str(path)!r} is not a directory")
    mode = stat.S_IMODE(info.st_mode)
    me = os.geteuid()
    if (
        shared_mode is not None
        and mode == shared_mode
        and (me == 0 or info.st_gid in {os.getegid(), *os.getgroups()})
    ):
        return path
    if info.st_uid != me:
        raise StateDirError(
            f"{setting}: {str(path)!r} belongs to uid {info.st_uid}, not to this user "
            f"(uid {me}); refusing to use it"
        )
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise StateDirError(
            f"{setting}: {str(path)!r} can be written by other users (mode {mode:04o}); "
            f"refusing to use it (chmod 700 it, or choose another directory)"
        )
    if mode != 0o700:
        try:
            path.chmod(0o700)
        except OSError as exc:
            raise StateDirError(
                f"{setting}: cannot make {str(path)!r} private: {exc.strerror or exc}"
            ) from None
    return path


def prepare_state_dir(state_dir: Path | str, setting: str = SETTING) -> Path:
    """Check (and create) the state dir and its ``run/`` dir of sockets; return the state dir."""
    path = private_dir(state_dir, setting, SHARED_STATE_MODE)
    prepare_run_dir(path, setting)
    return path


def prepare_run_dir(state_dir: Path | str, setting: str = SETTING) -> Path:
    """Check (and create) ``<state dir>/run``, where the ipc sockets go; return it. Every
    process that binds a socket there calls this (or :func:`prepare_state_dir`) first."""
    return private_dir(run_dir(Path(state_dir)), setting, SHARED_RUN_MODE)
