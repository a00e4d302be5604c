"""The state dir check every process makes before it binds: ours, and writable by us alone."""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

import pytest

from protocol import StateDirError, prepare_state_dir, private_dir

if TYPE_CHECKING:
    from pathlib import Path

NOBODY = 65534

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_missing_state_dir_is_created_private_with_its_run_dir(tmp_path: Path) -> None:
    """A new state dir and its run/ are 0700."""
    state = prepare_state_dir(tmp_path / "a" / "state")
    assert mode(state) == mode(state / "run") == 0o700


def test_a_readable_state_dir_of_ours_is_tightened(tmp_path: Path) -> None:
    """0755 (readable, not writable, by others) is ours to fix: made 0700."""
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o755)
    prepare_state_dir(state)
    assert mode(state) == 0o700


@pytest.mark.parametrize("loose", [0o777, 0o775, 0o1777, 0o722])
def test_a_state_dir_others_can_write_is_refused(tmp_path: Path, loose: int) -> None:
    """Group- or world-writable: refused, naming the setting, and nothing made inside it."""
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(loose)
    with pytest.raises(StateDirError) as refused:
        prepare_state_dir(state)
    text = str(refused.value)
    assert text.startswith("MMCLAUDE_STATE_DIR: ")
    assert f"mode {loose:04o}" in text
    assert "\n" not in text
    assert not (state / "run").exists()
    assert mode(state) == loose  # not "fixed" behind the operator's back


def test_a_loose_run_dir_is_refused_too(tmp_path: Path) -> None:
    """run/ holds the sockets: the same rule."""
    (tmp_path / "run").mkdir()
    (tmp_path / "run").chmod(0o777)
    tmp_path.chmod(0o700)
    with pytest.raises(StateDirError, match=r"MMCLAUDE_STATE_DIR: .*run"):
        prepare_state_dir(tmp_path)


def test_a_file_is_not_a_state_dir(tmp_path: Path) -> None:
    """A path that is a file is refused with a line naming the setting."""
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(StateDirError, match="MMCLAUDE_STATE_DIR: "):
        private_dir(path)


@as_root
def test_a_state_dir_of_another_user_is_refused(tmp_path: Path) -> None:
    """Owned by uid 65534 (even 0700): refused, with both uids named."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.chown(state, NOBODY, NOBODY)
    with pytest.raises(StateDirError) as refused:
        prepare_state_dir(state)
    assert f"belongs to uid {NOBODY}, not to this user (uid 0)" in str(refused.value)
    assert str(refused.value).startswith("MMCLAUDE_STATE_DIR: ")


@as_root
def test_a_run_dir_of_another_user_is_refused(tmp_path: Path) -> None:
    """A run/ planted by another user is refused, even in a state dir of ours."""
    state = tmp_path / "state"
    (state / "run").mkdir(parents=True, mode=0o700)
    state.chmod(0o700)
    os.chown(state / "run", NOBODY, NOBODY)
    with pytest.raises(StateDirError, match=f"run' belongs to uid {NOBODY}"):
        prepare_state_dir(state)
