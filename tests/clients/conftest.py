"""The Mattermost emulator as a process, for the real-client tests."""

from __future__ import annotations

import json
import subprocess
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.support import ProcessGroup


@pytest.fixture
def emulator_seed(procs: ProcessGroup) -> dict[str, Any]:
    """Start `python -m emulators.mattermost` (killed at teardown); its seed line."""
    proc = procs.python("-u", "-m", "emulators.mattermost", "--port", "0", stdout=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # printed once listening; bounded by the pytest timeout
    assert line, f"the emulator exited before listening (code {proc.poll()})"
    seed: dict[str, Any] = json.loads(line)
    return seed
