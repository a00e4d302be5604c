"""The state dir is private (0700) and locked by one worker at a time."""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

import pytest

from session_worker import statedir
from session_worker.errors import AlreadyRunningError

if TYPE_CHECKING:
    from pathlib import Path


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_prepare_creates_and_tightens_the_state_dir(tmp_path: Path) -> None:
    """A new state dir is 0700; an existing 0755 one is tightened to 0700."""
    fresh = statedir.prepare(tmp_path / "new" / "state")
    assert mode(fresh) == 0o700
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    statedir.prepare(loose)
    assert mode(loose) == 0o700


def test_second_lock_on_one_state_dir_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    """flock is per open file: a second acquire fails (even in-process) until release."""
    first = statedir.acquire(tmp_path)
    with pytest.raises(AlreadyRunningError) as refused:
        statedir.acquire(tmp_path)
    assert refused.value.pid == os.getpid()
    assert str(refused.value) == (
        f"another worker is running on this state dir (pid {os.getpid()})"
    )
    assert mode(tmp_path / statedir.LOCK_NAME) == 0o600
    first.release()
    with statedir.acquire(tmp_path) as again:
        assert again.path.read_text() == f"{os.getpid()}\n"


def test_prepare_keeps_0710_for_a_gateway_under_another_user(tmp_path: Path) -> None:
    """0710 (the gateway's group passes through to run/) is kept; group read is not."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o710)
    statedir.prepare(shared)
    assert mode(shared) == 0o710
    shared.chmod(0o750)
    statedir.prepare(shared)
    assert mode(shared) == 0o700
