"""`mmclaude demo --once`: the main job a newcomer runs, as CI runs it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import urllib.request
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.support import ProcessGroup

pytestmark = pytest.mark.slow


def test_demo_once_plays_the_conversation(procs: ProcessGroup) -> None:
    """The demo starts everything, prints each answer (context kept across a claude kill)
    and exits 0."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MATTERMOST_", "ANTHROPIC_"))}
    # In the test's process group: whatever happens, the tree the demo started is killed.
    proc = procs.python(
        "-m", "devtools.cli", "demo", "--once", env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = proc.communicate(timeout=110)
    result = subprocess.CompletedProcess(
        proc.args, proc.returncode, stdout.decode(), stderr.decode()
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "Mattermost emulator" in out
    assert out.count("claude <") == 3
    assert "killing the claude child" in out
    assert "echo[5]" in out  # the third answer still knows the first two turns


def test_demo_serves_the_page_until_ctrl_c(procs: ProcessGroup) -> None:
    """`mmclaude demo` (no --once) prints the page's URL and the admin routes, serves the web
    page there, and stops everything on SIGINT with exit 0."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MATTERMOST_", "ANTHROPIC_"))}
    proc = procs.python(
        "-u", "-m", "devtools.cli", "demo", "--port", "0", env=env, stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    seen: list[str] = []
    url = None
    while url is None:  # bounded by the pytest timeout; EOF ends it too
        line = proc.stdout.readline().decode()
        assert line, "the demo exited early:\n" + "".join(seen)
        seen.append(line)
        match = re.match(r"Open (http://127\.0\.0\.1:\d+)/ in a browser", line)
        url = match.group(1) if match else None
    while "Ctrl-C stops everything" not in seen[-1]:
        line = proc.stdout.readline().decode()
        assert line, "".join(seen)
        seen.append(line)
    out = "".join(seen)
    assert f"{url}/_admin/post" in out
    assert f"{url}/_admin/seed" in out
    assert "  SLOW:8 take your time " in out
    assert re.search(r"^  (BASH:echo hi \| tee hello\.txt|please APPROVE) ", out, re.MULTILINE), out
    with urllib.request.urlopen(url + "/", timeout=5) as response:
        page = response.read().decode()
    assert 'id="composer"' in page
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
