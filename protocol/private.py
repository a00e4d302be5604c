"""Private directories: the state dir (the journal holds every prompt and answer) and its
``run/`` (the sockets) are this user's alone. One rule for both: created with mode 0700, an
existing one tightened to 0700, one that belongs to another user refused."""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

from protocol.errors import NotPrivateError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["ensure_private_dir"]


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) 0700, or tighten it; :class:`NotPrivateError` if
    another user owns it. OSError as the file system says."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = path.stat()
    if info.st_uid != os.getuid():
        raise NotPrivateError(f"{path} belongs to another user; refusing to use it")
    if stat.S_IMODE(info.st_mode) != 0o700:
        path.chmod(0o700)
    return path
