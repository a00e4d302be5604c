"""Fixtures for the emulator tests. Other engineers may append their own below."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from emulators.claude.testing import FAKE_CLAUDE_ARGS, StreamJsonProcess

if TYPE_CHECKING:
    from pathlib import Path

SpawnFakeClaude = Callable[..., StreamJsonProcess]


@pytest.fixture
def sessions_dir(tmp_path: Path) -> Path:
    """The directory the fake claude keeps its session files in for this test."""
    return tmp_path / "sessions"


@pytest.fixture
def fake_claude(tmp_path: Path, sessions_dir: Path) -> Iterator[SpawnFakeClaude]:
    """Start fake claude processes (extra CLI args, env overrides); all killed at teardown."""
    started: list[StreamJsonProcess] = []

    def spawn(*extra: str, env: dict[str, str] | None = None) -> StreamJsonProcess:
        full_env = {**os.environ, "FAKE_CLAUDE_SESSIONS_DIR": str(sessions_dir), **(env or {})}
        proc = StreamJsonProcess([*FAKE_CLAUDE_ARGS, *extra], env=full_env, cwd=str(tmp_path))
        started.append(proc)
        return proc

    try:
        yield spawn
    finally:
        for proc in started:
            proc.close()
