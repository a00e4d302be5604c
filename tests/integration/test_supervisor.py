"""The process tree end to end: emulator + fake claude + `mmclaude run` as a real subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from devtools.harness import Tree, answer_of, open_tree
from protocol.procfs import descendants, pid_alive, read_stat, session_members
from tests.support import async_wait_for
from tests.tree import ask, run_tree

pytestmark = pytest.mark.slow


def status_cli(tree: Tree, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "supervisor.cli", "status", *args],
        env={**os.environ, "MMCLAUDE_STATE_DIR": str(tree.state_dir)},
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


@pytest.mark.parametrize("role", ["gateway", "worker", "claude"])
def test_sigkill_of_each_role_heals(role: str) -> None:
    """After SIGKILL of the gateway, the worker or claude, the next post is answered and
    `status --json` shows a new pid and the restart count."""

    async def scenario(tree: Tree, thread: str) -> None:
        assert "echo[1]: first" in await ask(tree, thread, "first")
        before = json.loads(status_cli(tree, "--json").stdout)
        old_pid = before[role]["pid"]
        os.kill(old_pid, signal.SIGKILL)
        after = await tree.wait_status(
            lambda s: (
                getattr(s, role).pid not in (None, old_pid) and getattr(s, role).restarts >= 1
            ),
            30,
        )
        answer = await ask(tree, thread, "second")
        assert "echo[3]: second" in answer  # the conversation went on, context kept
        await tree.wait_status(lambda s: s.claude.session_id, 5)  # next heartbeat
        shown = json.loads(status_cli(tree, "--json").stdout)
        assert shown[role]["pid"] == getattr(after, role).pid != old_pid
        assert shown[role]["restarts"] >= 1
        for key in ("supervisor", "gateway", "worker", "claude", "thread_id"):
            assert key in shown
        assert shown["thread_id"] == thread
        assert shown["claude"]["session_id"]

    run_tree(scenario)


def test_claude_restarts_grow_by_one_per_new_claude(tmp_path: Path) -> None:
    """`status --json` counts each new claude process after the first: 0, then 1 after a kill,
    even though a heartbeat came while claude was down (a claude that takes a while to start,
    as the real CLI does: the old count, by pid changes, stayed at 0)."""
    slow = tmp_path / "slow-claude"  # slow to start from the second start on
    started = tmp_path / "started-once"
    slow.write_text(
        f'#!/bin/sh\nif [ -e "{started}" ]; then sleep 1.5; fi\ntouch "{started}"\n'
        f'exec "{sys.executable}" -m emulators.claude "$@"\n'
    )
    slow.chmod(0o755)

    async def scenario(tree: Tree, thread: str) -> None:
        assert "echo[1]: first" in await ask(tree, thread, "first")
        before = await tree.wait_status(lambda s: s.claude.pid, 10)
        assert before.claude.restarts == 0
        old_pid = before.claude.pid
        assert old_pid is not None
        os.kill(old_pid, signal.SIGKILL)
        after = await tree.wait_status(lambda s: s.claude.pid not in (None, old_pid), 30)
        assert after.claude.restarts == 1
        shown = json.loads(status_cli(tree, "--json").stdout)
        assert shown["claude"]["restarts"] == 1

    run_tree(scenario, extra_env={"CLAUDE_PATH": str(slow)})


def test_stopped_child_is_replaced_after_heartbeat_limit() -> None:
    """A SIGSTOPped gateway sends no heartbeat; it is killed and replaced after the limit."""

    async def scenario(tree: Tree, thread: str) -> None:
        status = tree.status()
        assert status is not None
        old = status.gateway.pid
        assert old is not None
        os.kill(old, signal.SIGSTOP)
        started = time.monotonic()
        await tree.wait_status(lambda s: s.gateway.pid not in (None, old), 20)
        # Not replaced before the limit: the last beat came at most 1 s before the stop.
        assert time.monotonic() - started >= 0.9
        assert not pid_alive(old)
        assert "hung" in tree.log_path.read_text()
        assert "echo[1]: after" in await ask(tree, thread, "after")

    run_tree(scenario, extra_env={"MMCLAUDE_HEARTBEAT_LIMIT": "2"})


def test_crash_loop_gives_up_with_exit_1() -> None:
    """A gateway that dies at every start (bad token) makes the supervisor stop all, exit 1."""

    async def main() -> None:
        async with open_tree(
            real_claude=False,
            extra_env={
                "MATTERMOST_TOKEN": "not-the-right-token-zzzzzzzz",
                "MMCLAUDE_MAX_RESTARTS": "2",
                "MMCLAUDE_RESTART_PERIOD": "60",
            },
        ) as tree:
            tree_pids: set[int] = set()
            deadline = time.monotonic() + 40
            while tree.process.poll() is None and time.monotonic() < deadline:
                tree_pids |= descendants(tree.process.pid)
                await asyncio.sleep(0.05)
            assert tree.process.returncode == 1
            log = tree.log_path.read_text()
            assert "kept dying" in log
            assert "gateway-0" in log
            assert "not-the-right-token" not in log
            assert not [p for p in tree_pids if pid_alive(p)]  # none outlives the supervisor

    asyncio.run(main())


def test_sigterm_stops_everything_without_orphans() -> None:
    """SIGTERM exits 0 within 10 s, and no process of the tree is left, tool processes
    of claude included."""

    async def scenario(tree: Tree, thread: str) -> None:
        answer = await ask(tree, thread, "TOOL please")
        tool_pid = int(answer.split("tool-pid=")[1].split()[0].strip("`.,)"))
        assert pid_alive(tool_pid)
        tree_pids = descendants(tree.process.pid) | {tool_pid}
        started = time.monotonic()
        os.kill(tree.process.pid, signal.SIGTERM)
        # The moment the supervisor has exited (a zombie not yet reaped), nothing of the tree
        # may be left: multiprocess's resource tracker used to outlive it, reparented to
        # init, for some milliseconds. The tree has a session of its own.
        sid = tree.process.pid
        await async_wait_for(lambda: not pid_alive(sid), 15, "the supervisor exits", 0.001)
        left = {p for p in tree_pids if pid_alive(p)} | session_members(sid)
        code = await asyncio.to_thread(tree.process.wait, 15)
        assert code == 0
        assert time.monotonic() - started < 10
        assert not left, {p: read_stat(p) for p in left}
        assert status_cli(tree, "--json").returncode == 1

    run_tree(scenario)


def test_supervisor_sigkill_takes_the_children() -> None:
    """When the supervisor is SIGKILLed its children (and claude) are gone within 5 s."""

    async def scenario(tree: Tree, thread: str) -> None:
        assert "echo[1]" in await ask(tree, thread, "hello")
        tree_pids = descendants(tree.process.pid)
        assert len(tree_pids) >= 3
        os.kill(tree.process.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while [p for p in tree_pids if pid_alive(p)] and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not [p for p in tree_pids if pid_alive(p)]
        assert status_cli(tree, "--json").returncode == 1

    run_tree(scenario)


def test_status_table_and_gateways_option() -> None:
    """`status` prints a readable table; MMCLAUDE_GATEWAYS=2 runs two gateways, and every
    post is still answered exactly once."""

    async def scenario(tree: Tree, thread: str) -> None:
        await tree.wait_status(
            lambda s: len(s.gateways) == 2 and all(g.pid for g in s.gateways), 20
        )
        table = status_cli(tree).stdout
        for word in ("supervisor", "gateway-0", "gateway-1", "worker", "claude", thread):
            assert word in table
        posts = [await tree.mm.post_as("alice", f"m{i}", root_id=thread) for i in range(5)]
        for post in posts:
            await answer_of(tree.mm, post["id"], 30)
        # Answers are delivered in order: once a later post is answered, a duplicate of an
        # earlier answer would have been posted before it.
        barrier = await tree.mm.post_as("alice", "barrier", root_id=thread)
        await answer_of(tree.mm, barrier["id"], 30)
        posts.append(barrier)
        answers = [
            p
            for p in tree.mm.posts(root_id=thread)
            if (p.get("props") or {}).get("mmclaude_reply_to")
        ]
        assert sorted(p["props"]["mmclaude_reply_to"] for p in answers) == sorted(
            p["id"] for p in posts
        )

    run_tree(scenario, gateways=2)


def test_status_without_supervisor(short_tmp: Any) -> None:
    """`mmclaude status` exits 1 with a clear line when no supervisor runs."""
    result = subprocess.run(
        [sys.executable, "-m", "supervisor.cli", "status", "--json"],
        env={**os.environ, "MMCLAUDE_STATE_DIR": str(short_tmp)},
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 1
    assert "no supervisor is running" in result.stderr


def test_children_never_see_the_token_in_their_environment() -> None:
    """Neither the worker, the gateway nor claude is started with MATTERMOST_* in its
    environment (claude's tools could read /proc/<pid>/environ), and stale gateway socket
    files are removed when a gateway dies."""

    async def scenario(tree: Tree, thread: str) -> None:
        assert "echo[1]" in await ask(tree, thread, "hi")
        status = await tree.wait_status(lambda s: s.claude.pid, 10)
        token = tree.mm.bot.token.encode()
        for role in ("worker", "gateway", "claude"):
            environ = Path(f"/proc/{getattr(status, role).pid}/environ").read_bytes()
            assert token not in environ, role
            assert b"MATTERMOST_" not in environ, role
        run_dir = tree.state_dir / "run"
        before = {p.name for p in run_dir.iterdir() if p.name.startswith("gw-")}
        assert len(before) == 1
        assert status.gateway.pid is not None
        os.kill(status.gateway.pid, signal.SIGKILL)
        await tree.wait_status(lambda s: s.gateway.pid not in (None, status.gateway.pid), 20)
        deadline = time.monotonic() + 10
        after = before
        while after in (before, set()) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # the new incarnation binds its socket once started
            after = {p.name for p in run_dir.iterdir() if p.name.startswith("gw-")}
        assert len(after) == 1
        assert after != before

    run_tree(scenario)
