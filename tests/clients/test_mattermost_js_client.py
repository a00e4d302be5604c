"""The official JavaScript client, `@mattermost/client` (Client4 + WebSocketClient), against
the emulator, driven the way the web and mobile apps use it (tests/clients/mattermost_client.mjs).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).with_name("mattermost_client.mjs")
EXPECTED_STEPS = [
    "rest.get_me",
    "rest.get_user_bot",
    "rest.get_channel",
    "ws.hello",
    "ws.ping_action",
    "rest.create_root_post",
    "ws.posted_root",
    "rest.pending_post_id_dedup",
    "rest.create_reply",
    "ws.mentions",
    "rest.get_thread",
    "rest.posts_since",
    "rest.add_reaction",
    "rest.patch_post",
    "rest.message_length_limit",
    "ws.typing",
    "ws.client_actions",
    "rest.channel_pages",
    "rest.remove_reaction",
    "rest.delete_post",
    "rest.cookie_session",
    "rest.errors",
    "ws.seq_contiguous",
    "ws.reconnect_resumes",
    "ws.restart_resyncs",
]


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the @mattermost/client test needs it")
    if not (REPO / "node_modules" / "@mattermost" / "client" / "package.json").exists():
        pytest.skip("@mattermost/client is not installed: run `npm ci` (make test does)")
    return node


def test_official_js_client_works_against_the_emulator(emulator_seed: dict[str, Any]) -> None:
    """Every step of the script passes: REST (token login, users, root posts and replies,
    threads, posts?since, reactions, patch, the 16383-rune limit, pending_post_id) and the
    socket (hello, posted with contiguous seq, typing, resume after a drop, resync after a
    restart)."""
    result = subprocess.run(
        [_node(), str(SCRIPT), json.dumps(emulator_seed)],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        cwd=REPO,
    )
    steps = [
        json.loads(line.removeprefix("STEP "))
        for line in result.stdout.splitlines()
        if line.startswith("STEP ")
    ]
    failures = [s for s in steps if not s["ok"]]
    assert not failures, json.dumps(failures, indent=1) + "\n" + result.stderr[-3000:]
    assert [s["step"] for s in steps] == EXPECTED_STEPS, result.stdout + result.stderr[-3000:]
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert 'DONE {"failed":[]}' in result.stdout
