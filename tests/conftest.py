"""Fixtures for the whole suite."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.support import ProcessGroup, short_tmpdir

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temporary directory short enough for ipc socket paths."""
    with short_tmpdir() as path:
        yield path


@pytest.fixture
def procs() -> Iterator[ProcessGroup]:
    """Start processes through this; every one (and its group) is killed at teardown."""
    with ProcessGroup() as group:
        yield group
