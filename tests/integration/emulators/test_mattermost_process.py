"""`python -m emulators.mattermost` as a process: one JSON line when ready, clean SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow


def test_process_prints_seed_and_exits_zero_on_sigterm(tmp_path: Path) -> None:
    """The process prints the seed line (also written to --seed-file), serves, and exits 0."""
    seed_file = tmp_path / "seed.json"
    cmd = [sys.executable, "-u", "-m", "emulators.mattermost", "--port", "0"]
    proc = subprocess.Popen(
        [*cmd, "--seed-file", str(seed_file), "--seed", "7"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # bounded by the pytest timeout; the process is quick
        seed = json.loads(line)
        assert json.loads(seed_file.read_text()) == seed
        request = urllib.request.Request(
            seed["url"] + "/api/v4/users/me",
            headers={"Authorization": f"Bearer {seed['bot']['token']}"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.loads(response.read())["id"] == seed["bot"]["id"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()
