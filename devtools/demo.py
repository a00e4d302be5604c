"""``mmclaude demo``: the whole process tree against the built-in Mattermost emulator.

It starts the emulator, then ``mmclaude run`` against it. By default it prints the URL of
the emulator's web page (a browser shows the bot's thread live and posts as alice, bob or
mallory) and runs until Ctrl-C, echoing the thread in the terminal. With ``--once`` it
plays a short conversation as the user ``alice`` instead, prints each answer as it arrives,
kills the claude child once on the way to show that the session resumes with its context,
and exits. It uses the real Claude Code CLI when
one is installed (the pinned npm install, else ``claude`` on PATH) — against the real API when
ANTHROPIC_API_KEY is set, else against the built-in fake Anthropic API — and the fake claude
when none is installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from typing import TYPE_CHECKING

from devtools.harness import answer_of

if TYPE_CHECKING:
    from devtools.harness import ClaudeChoice, Tree

__all__ = ["run_demo"]

SCRIPT = (
    "Hello Claude! Please remember the word 'pineapple'.",
    "What word did I ask you to remember?",
    "Thanks! One more question after a restart of your process.",
)
ANSWER_TIMEOUT = 120.0


def _say(text: str) -> None:
    print(text, flush=True)


def _free_or_zero(port: int) -> int:
    """``port`` when it can be bound on loopback now, else 0 (the emulator picks one)."""
    if port <= 0:
        return 0
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return 0
    return port


async def _demo(once: bool, port: int) -> int:
    from devtools.harness import open_tree

    options = {"port": 0 if once else _free_or_zero(port)}
    async with open_tree(real_claude=None, keep_scratch=True, emulator_options=options) as tree:
        mm = tree.mm
        _say("mmclaude demo")
        _say(f"  Mattermost emulator : {mm.url} (channel {mm.channel.id})")
        _say(f"  Claude              : {tree.claude.description}")
        _say(f"  State dir           : {tree.state_dir}")
        _say(f"  Logs (JSON lines)   : {tree.log_path}")
        _say(f"  Supervisor          : pid {tree.process.pid} (`mmclaude run`)")
        thread = await tree.wait_thread()
        root = next(p for p in mm.posts() if p["id"] == thread)
        _say(f"\nThe bot opened its thread {thread}: {root['message']!r}\n")
        if once:
            ok = await _play(tree, thread)
        else:
            ok = True
            await _keep_running(tree, thread)
    _say(f"\nStopped. Logs kept in {tree.log_path}")
    return 0 if ok else 1


def tries(claude: ClaudeChoice) -> list[str]:
    """Prompts worth typing in the page with this claude (the fakes' keywords)."""
    slow = "SLOW:8 take your time   (a slow turn: watch its live activity post)"
    if not claude.real:  # the fake claude
        return ["please APPROVE   (Claude asks to run a command: click Allow once)", slow]
    if claude.env:  # the real CLI against the fake Anthropic API
        return ["BASH:echo hi | tee hello.txt   (Claude asks to run it: click Allow once)", slow]
    return ["create hello.txt with the shell   (Claude asks to run a command)"]


async def _keep_running(tree: Tree, thread: str) -> None:
    mm = tree.mm
    _say(
        f"Open {mm.url}/ in a browser: the bot's thread, live. Pick alice or bob to talk to "
        "Claude;\nmallory is not on the allowlist (MATTERMOST_ALLOWED_USERS=alice,bob), so "
        "her posts get no answer.\n"
        "\nTry:\n"
        + "".join(f"  {line}\n" for line in tries(tree.claude))
        + "\nThe emulator's admin routes (loopback only):\n"
        f"  curl -s -X POST {mm.url}/_admin/post -H 'Content-Type: application/json' "
        f'-d \'{{"username": "alice", "root_id": "{thread}", "message": "hello again"}}\'\n'
        f"  curl -s '{mm.url}/_admin/posts?root_id={thread}'   (the thread)\n"
        f"  curl -s {mm.url}/_admin/seed   (users, tokens, channel)\n"
        f"  curl -s {mm.url}/_admin/stats\n"
        "\nThe bot keeps running; the thread is echoed below. Ctrl-C stops everything."
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    names = {u.id: name for name, u in mm.users.items()} | {mm.bot.id: "claude"}
    shown = {p["id"] for p in mm.posts(root_id=thread)}
    while not stop.is_set():
        for post in mm.posts(root_id=thread):
            if post["id"] not in shown:
                shown.add(post["id"])
                who = names.get(post["user_id"], post["user_id"])
                arrow = "<" if post["user_id"] == mm.bot.id else ">"
                _say(f"{who:<9}{arrow} {post['message']}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


async def _play(tree: Tree, thread: str) -> bool:
    mm = tree.mm
    ok = True
    killed = None
    for i, text in enumerate(SCRIPT):
        if i == len(SCRIPT) - 1:
            try:  # heartbeats come every second: the first turns may have been quicker
                status = await tree.wait_status(lambda s: s.claude.pid, 10)
            except TimeoutError:
                status = None
            pid = status.claude.pid if status else None
            if pid:
                _say(f"(killing the claude child, pid {pid}, to show that the session resumes)")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
                    killed = pid
        post = await mm.post_as("alice", text, root_id=thread)
        _say(f"alice  > {text}")
        started = time.monotonic()
        try:
            answer = await answer_of(mm, post["id"], ANSWER_TIMEOUT)
        except (TimeoutError, AssertionError):
            _say(f"claude ! no answer within {ANSWER_TIMEOUT:.0f} s (see the logs)")
            ok = False
            continue
        _say(f"claude < {answer}   ({time.monotonic() - started:.2f} s)")
    try:
        status = await tree.wait_status(lambda s: s.claude.pid not in (None, killed), 10)
    except TimeoutError:
        status = tree.status()
    if status:
        c = status.claude
        _say(
            f"\nstatus: claude pid {c.pid}, session {c.session_id}, "
            f"{c.restarts} claude restart(s); `mmclaude status` shows it as a table"
        )
    return ok


def run_demo(*, once: bool, port: int = 8065) -> int:
    """Run the demo; with ``once``, play the script and exit (0 when every post was answered);
    else serve the browser page on ``port`` (a free one if taken) until Ctrl-C."""
    return asyncio.run(_demo(once, port))
