"""``mmclaude demo``: the whole process tree against the built-in Mattermost emulator.

It starts the emulator, then ``mmclaude run`` against it, plays a short conversation as the
user ``alice`` and prints each answer as it arrives; it kills the claude child once on the
way to show that the session resumes with its context. It uses the real Claude Code CLI when
one is installed (the pinned npm install, else ``claude`` on PATH) — against the real API when
ANTHROPIC_API_KEY is set, else against the built-in fake Anthropic API — and the fake claude
when none is installed.
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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["run_demo"]

SCRIPT = (
    "Hello Claude! Please remember the word 'pineapple'.",
    "What word did I ask you to remember?",
    "Thanks! One more question after a restart of your process.",
)
ANSWER_TIMEOUT = 120.0


@dataclass
class ClaudeChoice:
    """Which claude the demo runs, and the environment it needs."""

    path: str
    args: tuple[str, ...]
    description: str
    env: dict[str, str]


def _say(text: str) -> None:
    print(text, flush=True)


def _fake_claude_path(state: Path) -> str:
    found = shutil.which("fake-claude") or str(Path(sys.executable).parent / "fake-claude")
    if Path(found).exists():
        return found
    wrapper = state / "fake-claude"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m emulators.claude "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


@contextlib.asynccontextmanager
async def _choose_claude(state: Path) -> AsyncIterator[ClaudeChoice]:
    from emulators.anthropic_api import (
        REAL_CLAUDE_ARGS,
        find_pinned_claude,
        open_anthropic_api,
        real_claude_env,
    )

    real = find_pinned_claude()
    if real is None:
        sessions = state / "fake-claude-sessions"
        yield ClaudeChoice(
            path=_fake_claude_path(state),
            args=(),
            description="the fake claude (no Claude Code CLI is installed: `make demo` "
            "installs the pinned one with npm)",
            env={"FAKE_CLAUDE_SESSIONS_DIR": str(sessions)},
        )
        return
    home = state / "claude-home"
    home.mkdir()
    if os.environ.get("ANTHROPIC_API_KEY"):
        yield ClaudeChoice(
            path=real,
            args=(),
            description=f"the real Claude Code CLI ({real}) against the real Anthropic API",
            env={},
        )
        return
    async with open_anthropic_api(port=0) as api:
        env = real_claude_env(api.url, str(home))
        yield ClaudeChoice(
            path=real,
            args=tuple(REAL_CLAUDE_ARGS),
            description=(
                f"the real Claude Code CLI ({real}) against the built-in fake Anthropic API "
                f"at {api.url} (set ANTHROPIC_API_KEY to use the real one)"
            ),
            env={k: v for k, v in env.items() if k not in os.environ or os.environ[k] != v},
        )


def _status(state: Path) -> dict[str, Any] | None:
    result = subprocess.run(
        [sys.executable, "-m", "supervisor.cli", "status", "--json"],
        env={**os.environ, "MMCLAUDE_STATE_DIR": str(state / "state")},
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    if result.returncode != 0:
        return None
    return dict(json.loads(result.stdout))


async def _answer_to(mm: Any, post_id: str, timeout: float) -> str:
    """Wait for every part of the answer to ``post_id`` and return the whole text."""
    first = await mm.wait_for_post(
        lambda p: p.get("props", {}).get("mmclaude_reply_to") == post_id, timeout=timeout
    )
    parts = int(first.get("props", {}).get("mmclaude_parts", 1) or 1)
    deadline = time.monotonic() + timeout
    while True:
        replies = [
            p
            for p in mm.posts(root_id=first["root_id"])
            if p.get("props", {}).get("mmclaude_reply_to") == post_id
        ]
        if len(replies) >= parts or time.monotonic() > deadline:
            return "\n".join(p["message"] for p in replies)
        await asyncio.sleep(0.05)


async def _demo(once: bool) -> int:
    from emulators.mattermost import open_emulator

    state = Path(tempfile.mkdtemp(prefix="mmdemo-", dir="/tmp"))
    log_path = state / "mmclaude.log"
    supervisor: subprocess.Popen[bytes] | None = None
    try:
        async with open_emulator(port=0) as mm, _choose_claude(state) as claude:
            workdir = state / "workdir"
            workdir.mkdir()
            env = {
                **os.environ,
                **claude.env,
                "MATTERMOST_URL": mm.url,
                "MATTERMOST_TOKEN": mm.bot.token,
                "MATTERMOST_CHANNEL_ID": mm.channel.id,
                "MATTERMOST_ALLOWED_USERS": "alice",
                "CLAUDE_PATH": claude.path,
                "CLAUDE_ARGS": " ".join(claude.args),
                "CLAUDE_WORKDIR": str(workdir),
                "MMCLAUDE_STATE_DIR": str(state / "state"),
                "MMCLAUDE_LOG_FORMAT": "json",
            }
            env.pop("MATTERMOST_THREAD_ID", None)
            env.pop("MATTERMOST_TOKEN_FILE", None)
            _say("mmclaude demo")
            _say(f"  Mattermost emulator : {mm.url} (channel {mm.channel.id})")
            _say(f"  Claude              : {claude.description}")
            _say(f"  State dir           : {state / 'state'}")
            _say(f"  Logs (JSON lines)   : {log_path}")
            with log_path.open("wb") as log:
                supervisor = subprocess.Popen(
                    [sys.executable, "-m", "supervisor"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            _say(f"  Supervisor          : pid {supervisor.pid} (`mmclaude run`)")
            root = await mm.wait_for_post(
                lambda p: p["user_id"] == mm.bot.id and not p["root_id"], timeout=60
            )
            _say(f"\nThe bot opened its thread {root['id']}: {root['message']!r}\n")
            ok = await _play(mm, root["id"], state)
            if once:
                return 0 if ok else 1
            _say(
                "\nThe bot keeps running. Post as alice in the thread with:\n"
                f"  curl -s -X POST {mm.url}/_admin/posts -H 'Content-Type: application/json' "
                f'-d \'{{"user": "alice", "root_id": "{root["id"]}", '
                f'"message": "hello again"}}\'\n'
                f"  and read the thread: curl -s '{mm.url}/_admin/posts?root_id={root['id']}'\n"
                "Ctrl-C stops everything."
            )
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            printed: set[str] = set()
            while not stop.is_set():
                for post in mm.posts(root_id=root["id"]):
                    if post["id"] not in printed and post["user_id"] != mm.bot.id:
                        printed.add(post["id"])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
            return 0
    finally:
        if supervisor is not None:
            _stop(supervisor)
            _say(f"\nStopped. Logs kept in {log_path}")


async def _play(mm: Any, thread: str, state: Path) -> bool:
    ok = True
    for i, text in enumerate(SCRIPT):
        if i == len(SCRIPT) - 1:
            status = _status(state)
            pid = status["claude"]["pid"] if status else None
            if pid:
                _say(f"(killing the claude child, pid {pid}, to show that the session resumes)")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
        post = await mm.post_as("alice", text, root_id=thread)
        _say(f"alice  > {text}")
        started = time.monotonic()
        try:
            answer = await _answer_to(mm, post["id"], ANSWER_TIMEOUT)
        except (TimeoutError, AssertionError):
            _say(f"claude ! no answer within {ANSWER_TIMEOUT:.0f} s (see the logs)")
            ok = False
            continue
        _say(f"claude < {answer}   ({time.monotonic() - started:.2f} s)")
    status = _status(state)
    if status:
        c = status["claude"]
        _say(
            f"\nstatus: claude pid {c['pid']}, session {c['session_id']}, "
            f"{c['restarts']} claude restart(s); `mmclaude status` shows this table"
        )
    return ok


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def run_demo(*, once: bool) -> int:
    """Run the demo; with ``once``, play the script and exit (0 when every post was answered)."""
    return asyncio.run(_demo(once))
