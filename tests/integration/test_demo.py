"""`mmclaude demo --once`: the main job a newcomer runs, as CI runs it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_demo_once_plays_the_conversation() -> None:
    """The demo starts everything, prints each answer (context kept across a claude kill)
    and exits 0."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MATTERMOST_", "ANTHROPIC_"))}
    result = subprocess.run(
        [sys.executable, "-m", "devtools.cli", "demo", "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "Mattermost emulator" in out
    assert out.count("claude <") == 3
    assert "killing the claude child" in out
    assert "echo[5]" in out  # the third answer still knows the first two turns
