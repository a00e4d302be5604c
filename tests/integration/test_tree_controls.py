"""Controls through the whole tree (emulator + fake claude + `mmclaude run`): commands,
approval posts answered by reactions, and a gateway SIGKILL while an approval waits."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from devtools.harness import Tree, answer_of
from tests.tree import ask, run_tree

pytestmark = pytest.mark.slow


def props(post: dict[str, Any]) -> dict[str, Any]:
    value = post.get("props")
    return value if isinstance(value, dict) else {}


def approval_posts(tree: Tree, thread: str) -> list[dict[str, Any]]:
    return [p for p in tree.mm.posts(root_id=thread) if props(p).get("mmclaude_approval")]


async def approval_post(tree: Tree, thread: str, n: int = 1) -> dict[str, Any]:
    """The n-th approval post of the thread, once there are n."""
    deadline = time.monotonic() + 30
    while len(found := approval_posts(tree, thread)) < n:
        assert time.monotonic() < deadline, f"no approval post #{n}"
        await tree.mm.wait_for_post(lambda p: bool(props(p).get("mmclaude_approval")), timeout=30)
    return found[n - 1]


def test_commands_and_a_reaction_decide_and_status_json_has_the_keys() -> None:
    async def scenario(tree: Tree, thread: str) -> None:
        assert "mmclaude commands" in await ask(tree, thread, "!help")
        prompt = await tree.mm.post_as("alice", "please APPROVE", root_id=thread)
        post = await approval_post(tree, thread)
        assert props(post)["mmclaude_prompt"] == prompt["id"]
        assert "mmclaude_reply_to" not in props(post)
        assert "echo approved-run" in post["message"]
        await tree.mm.react_as("mallory", post["id"], "+1")  # not allowed: nothing happens
        status = await tree.wait_status(lambda s: s.claude.pending_approvals == 1, 10)
        await tree.mm.react_as("alice", post["id"], "+1")
        answer = await answer_of(tree.mm, prompt["id"], 30)
        assert answer.endswith("[allowed: approved-run]")
        [edited] = [p for p in tree.mm.posts(root_id=thread) if p["id"] == post["id"]]
        deadline = time.monotonic() + 10
        while "Allowed once by @alice" not in edited["message"]:
            assert time.monotonic() < deadline, edited["message"]
            await tree.mm.wait_for_post(lambda p: p["id"] == post["id"], timeout=1)
            [edited] = [p for p in tree.mm.posts(root_id=thread) if p["id"] == post["id"]]
        status = await tree.wait_status(lambda s: s.claude.turns >= 1, 10)
        out = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "supervisor.cli", "status", "--json"],
            env={**os.environ, "MMCLAUDE_STATE_DIR": str(tree.state_dir)},
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        )
        claude = json.loads(out.stdout)["claude"]
        for key in ("pid", "session_id", "restarts", "queue", "model", "permission_mode"):
            assert key in claude
        for key in ("pending_approvals", "turns", "cost_usd"):
            assert key in claude
        assert claude["pending_approvals"] == 0
        assert claude["permission_mode"] == "default"
        assert claude["model"]
        assert claude["cost_usd"] > 0
        assert status.claude.turns >= 1

    run_tree(scenario)


def test_gateway_killed_while_an_approval_waits() -> None:
    """The reaction is made while no gateway runs; the new gateway finds the post (no second
    one), reads the reaction and the turn goes on."""

    async def scenario(tree: Tree, thread: str) -> None:
        prompt = await tree.mm.post_as("alice", "APPROVE while down", root_id=thread)
        post = await approval_post(tree, thread)
        status = tree.status()
        assert status is not None
        old = status.gateway.pid
        assert old is not None
        os.kill(old, signal.SIGKILL)
        await tree.mm.react_as("alice", post["id"], "white_check_mark")
        await tree.wait_status(lambda s: s.gateway.pid not in (None, old), 30)
        answer = await answer_of(tree.mm, prompt["id"], 30)
        assert answer.endswith("[allowed always: approved-run]")
        assert len(approval_posts(tree, thread)) == 1

    run_tree(scenario)
