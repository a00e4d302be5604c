"""Running the whole tree against the built-in emulators: shared by the demo, the chaos runner
and the benchmarks.

``open_tree`` starts the Mattermost emulator in this process's event loop, picks a claude
(the real CLI, against the fake Anthropic API unless a real key is set, or the fake one), and
runs ``mmclaude run`` as a subprocess in a session of its own, logging to a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from protocol.proctree import child_preexec
from supervisor.status import Status, read_status

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

__all__ = ["ClaudeChoice", "Tree", "answer_of", "choose_claude", "open_tree", "replies"]


@dataclass
class ClaudeChoice:
    """Which claude the tree runs, and the environment it needs."""

    path: str
    args: tuple[str, ...]
    description: str
    env: dict[str, str]
    real: bool


def fake_claude_path(scratch: Path) -> str:
    """An executable that runs the fake claude (the console script, or a wrapper)."""
    found = shutil.which("fake-claude") or str(Path(sys.executable).parent / "fake-claude")
    if Path(found).exists():
        return found
    wrapper = scratch / "fake-claude"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m emulators.claude "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


@contextlib.asynccontextmanager
async def choose_claude(scratch: Path, *, real: bool | None) -> AsyncIterator[ClaudeChoice]:
    """``real=None``: the real CLI if installed, else the fake; True: the real one or fail."""
    from emulators.anthropic_api.process import open_anthropic_api_process
    from emulators.claude_cli import REAL_CLAUDE_ARGS, find_pinned_claude, real_claude_env

    path = find_pinned_claude() if real is not False else None
    if path is None:
        if real:
            raise RuntimeError("no Claude Code CLI installed: run `npm ci` (make test does)")
        yield ClaudeChoice(
            path=fake_claude_path(scratch),
            args=(),
            description="the fake claude",
            env={"FAKE_CLAUDE_SESSIONS_DIR": str(scratch / "fake-claude-sessions")},
            real=False,
        )
        return
    if real is None and os.environ.get("ANTHROPIC_API_KEY"):
        yield ClaudeChoice(
            path=path,
            args=(),
            description=f"the real Claude Code CLI ({path}) against the real Anthropic API",
            env={},
            real=True,
        )
        return
    home = scratch / "claude-home"
    home.mkdir(exist_ok=True)
    # Its own process, as a real API would be; it dies with us, however we die.
    async with open_anthropic_api_process(preexec_fn=child_preexec(os.getpid())) as api:
        yield ClaudeChoice(
            path=path,
            args=tuple(REAL_CLAUDE_ARGS),
            description=f"the real Claude Code CLI ({path}) against the fake Anthropic API",
            env=real_claude_env(api.url, str(home)),
            real=True,
        )


@dataclass
class Tree:
    """A running ``mmclaude run`` and where its things are."""

    mm: Any
    claude: ClaudeChoice
    scratch: Path
    state_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    env: dict[str, str] = field(default_factory=dict)

    def status(self) -> Status | None:
        """What `mmclaude status --json` prints (None while no supervisor runs)."""
        return read_status(self.state_dir)

    async def wait_status(self, check: Callable[[Status], object], timeout: float) -> Status:
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if status is not None and check(status):
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(f"status never matched within {timeout} s: {status}")
            await asyncio.sleep(0.05)

    async def wait_thread(self, timeout: float = 60.0) -> str:
        """The id of the root post the bot opened (or was given)."""
        root = await self.mm.wait_for_post(
            lambda p: p["user_id"] == self.mm.bot.id and not p["root_id"], timeout=timeout
        )
        return str(root["id"])

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM the supervisor and wait; SIGKILL its whole session if it does not exit."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
            return None


@contextlib.asynccontextmanager
async def open_tree(
    *,
    real_claude: bool | None = None,
    extra_env: dict[str, str] | None = None,
    emulator_options: dict[str, Any] | None = None,
    gateways: int = 1,
    keep_scratch: bool = False,
) -> AsyncIterator[Tree]:
    """The emulator, a claude, and ``mmclaude run`` against them; everything stopped after."""
    from emulators.mattermost import open_emulator

    scratch = Path(tempfile.mkdtemp(prefix="mmc-", dir="/tmp"))
    process: subprocess.Popen[bytes] | None = None
    tree: Tree | None = None
    try:
        async with (
            open_emulator(**{"port": 0, **(emulator_options or {})}) as mm,
            choose_claude(scratch, real=real_claude) as claude,
        ):
            workdir = scratch / "workdir"
            workdir.mkdir()
            env = {
                **os.environ,
                **claude.env,
                "MATTERMOST_URL": mm.url,
                "MATTERMOST_TOKEN": mm.bot.token,
                "MATTERMOST_CHANNEL_ID": mm.channel.id,
                "MATTERMOST_ALLOWED_USERS": "alice,bob",
                "CLAUDE_PATH": claude.path,
                "CLAUDE_ARGS": " ".join(claude.args),
                "CLAUDE_WORKDIR": str(workdir),
                "MMCLAUDE_STATE_DIR": str(scratch / "state"),
                "MMCLAUDE_LOG_FORMAT": "json",
                "MMCLAUDE_GATEWAYS": str(gateways),
                **(extra_env or {}),
            }
            for name in ("MATTERMOST_THREAD_ID", "MATTERMOST_TOKEN_FILE"):
                env.pop(name, None)
            log_path = scratch / "mmclaude.log"
            with log_path.open("wb") as log:
                process = subprocess.Popen(  # noqa: ASYNC220 - fork+exec only, no wait
                    [sys.executable, "-m", "supervisor"],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    # The tree dies with whoever opened it (a killed demo or chaos run leaves
                    # nothing behind): SIGKILL to the supervisor, whose children follow it.
                    preexec_fn=child_preexec(os.getpid()),
                )
            tree = Tree(mm, claude, scratch, scratch / "state", log_path, process, env)
            try:
                yield tree
            finally:
                tree.stop()
    finally:
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        if not keep_scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def replies(mm: Any, thread: str) -> dict[str, list[dict[str, Any]]]:
    """The bot's answer posts in ``thread``, grouped by the post they answer, in post order."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for post in mm.posts(root_id=thread):
        target = (post.get("props") or {}).get("mmclaude_reply_to")
        if target:
            grouped.setdefault(str(target), []).append(post)
    return grouped


async def answer_of(mm: Any, post_id: str, timeout: float) -> str:
    """Wait until every part of the answer to ``post_id`` is posted; the parts' text joined."""
    first = await mm.wait_for_post(
        lambda p: (p.get("props") or {}).get("mmclaude_reply_to") == post_id, timeout=timeout
    )
    parts = int((first.get("props") or {}).get("mmclaude_parts", 1) or 1)
    deadline = time.monotonic() + timeout
    while True:
        got = replies(mm, first["root_id"]).get(post_id, [])
        if len(got) >= parts or time.monotonic() > deadline:
            return "\n".join(p["message"] for p in got)
        await asyncio.sleep(0.05)


def dump(obj: object) -> str:
    return json.dumps(obj, indent=1, default=str)
