"""Files an answer carries (``!file``), kept in the state dir until the answer is delivered.

``<state dir>/outfiles/<post id>/<name>``: written before the journal row that answers the
request is committed, read for every (re-)send of that answer, removed on ``Delivered``.
"""

from __future__ import annotations

import os
import re
import shutil
from typing import TYPE_CHECKING

from loguru import logger

from protocol import OutFile

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["forget", "load", "store"]

_POST_ID = re.compile(r"[a-z0-9]{26}")


def _folder(state_dir: Path, post_id: str) -> Path | None:
    return state_dir / "outfiles" / post_id if _POST_ID.fullmatch(post_id) else None


def store(state_dir: Path, post_id: str, name: str, data: bytes) -> None:
    folder = _folder(state_dir, post_id)
    if folder is None:
        raise OSError(f"not a post id: {post_id!r}")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    for old in folder.iterdir():
        old.unlink()
    tmp = folder / ".tmp"
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, folder / (name or "file"))


def load(state_dir: Path, post_id: str) -> tuple[OutFile, ...]:
    folder = _folder(state_dir, post_id)
    if folder is None or not folder.is_dir():
        return ()
    found: list[OutFile] = []
    try:
        for path in sorted(folder.iterdir()):
            if not path.name.startswith("."):
                found.append(OutFile(name=path.name, data=path.read_bytes()))
    except OSError as exc:
        logger.bind(post_id=post_id, error=str(exc)).warning("outfile.unreadable")
    return tuple(found)


def forget(state_dir: Path, post_id: str) -> None:
    folder = _folder(state_dir, post_id)
    if folder is not None and folder.is_dir():
        shutil.rmtree(folder, ignore_errors=True)
