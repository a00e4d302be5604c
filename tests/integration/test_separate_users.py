"""The supported production setup: `mmclaude run` as root, the gateway and the worker each under
a user of its own (made by the test, removed after). A tool run by claude (a probe that the
claude wrapper runs with claude's uid, groups and environment) cannot read the token file nor
any process environment naming the token; the bot still answers end to end; ANTHROPIC_*
reaches claude and not the gateway."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
from typing import TYPE_CHECKING

import pytest

from devtools.harness import answer_of
from emulators.mattermost import open_emulator
from supervisor.status import read_status
from tests.integration.everyone import python_for_everyone
from tests.support import REPO, short_tmpdir

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.timeout(150)


def _need_root_and_useradd() -> None:
    if os.geteuid() != 0:
        pytest.skip("SKIPPED LOUDLY: creating users and switching to them needs root (CI is root)")
    if shutil.which("useradd") is None or shutil.which("userdel") is None:
        pytest.skip("SKIPPED LOUDLY: no useradd/userdel to create the test's users")


@pytest.fixture
def users() -> Iterator[tuple[str, str]]:
    _need_root_and_useradd()
    tag = os.getpid() % 100000
    names = (f"mmcw{tag}", f"mmcg{tag}")
    for name in names:
        subprocess.run(["userdel", name], capture_output=True, timeout=30, check=False)
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home",
             "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
    try:
        yield names
    finally:
        for name in names:
            subprocess.run(["userdel", name], capture_output=True, timeout=30, check=False)


def _uid_of(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        line = next(x for x in f if x.startswith("Uid:"))
    return int(line.split()[1])


def _environ_names(pid: int) -> set[str]:
    with open(f"/proc/{pid}/environ", "rb") as f:
        return {item.split(b"=", 1)[0].decode() for item in f.read().split(b"\0") if item}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("transport", ["ipc", "tcp+curve"])
def test_claudes_tools_cannot_read_the_token_and_the_bot_still_answers(
    users: tuple[str, str], transport: str
) -> None:
    """ipc (the default) and tcp with CURVE keys (each role reads its own key files)."""
    worker_user, gateway_user = users
    python, pythonpath = python_for_everyone()
    worker_pw = pwd.getpwnam(worker_user)
    with short_tmpdir() as scratch:
        scratch.chmod(0o711)  # the users pass through to their dirs; nothing to list
        workdir, sessions = scratch / "work", scratch / "sessions"
        for path in (workdir, sessions):
            path.mkdir()
            os.chown(path, worker_pw.pw_uid, worker_pw.pw_gid)
        token_file = scratch / "token"
        probe_out = workdir / "probe.json"
        wrapper = scratch / "claude"
        wrapper.write_text(
            "#!/bin/sh\n"
            f'"{python}" "{REPO}/tests/integration/token_probe.py" '
            f'"{token_file}" "{probe_out}"\n'
            f'exec "{python}" -m emulators.claude "$@"\n'
        )
        wrapper.chmod(0o755)
        log_path = scratch / "tree.log"
        endpoints: dict[str, str] = {}
        if transport == "tcp+curve":
            subprocess.run(
                [python, "-m", "supervisor.cli", "keys"],
                env={**os.environ, "MMCLAUDE_STATE_DIR": str(scratch / "state"),
                     "PYTHONPATH": pythonpath},
                cwd=REPO, check=True, capture_output=True, timeout=60,
            )  # fmt: skip
            endpoints = {
                "MMCLAUDE_WORKER_ENDPOINT": f"tcp://127.0.0.1:{_free_port()}",
                "MMCLAUDE_GATEWAY_ENDPOINT": f"tcp://127.0.0.1:{_free_port()}",
            }

        async def scenario() -> None:
            async with open_emulator(port=0) as mm:
                token_file.write_text(mm.bot.token + "\n")
                token_file.chmod(0o600)  # root's: the supervisor reads it and tells the gateway
                env = {
                    **{k: v for k, v in os.environ.items() if not k.startswith("MATTERMOST_")},
                    "MATTERMOST_URL": mm.url,
                    "MATTERMOST_TOKEN_FILE": str(token_file),
                    "MATTERMOST_CHANNEL_ID": mm.channel.id,
                    "MATTERMOST_ALLOWED_USERS": "alice",
                    "CLAUDE_PATH": str(wrapper),
                    "CLAUDE_WORKDIR": str(workdir),
                    "FAKE_CLAUDE_SESSIONS_DIR": str(sessions),
                    "ANTHROPIC_API_KEY": "sk-test-only-for-claude",
                    "MMCLAUDE_STATE_DIR": str(scratch / "state"),
                    "MMCLAUDE_LOG_FORMAT": "json",
                    "MMCLAUDE_WORKER_USER": worker_user,
                    "MMCLAUDE_GATEWAY_USER": gateway_user,
                    "PYTHONPATH": pythonpath,
                    **endpoints,
                }
                with log_path.open("wb") as log:
                    tree = subprocess.Popen(  # noqa: ASYNC220 - fork+exec only
                        [python, "-m", "supervisor"], env=env, cwd=REPO,
                        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )  # fmt: skip
                try:
                    root = await mm.wait_for_post(
                        lambda p: p["user_id"] == mm.bot.id and not p["root_id"], timeout=60
                    )
                    post = await mm.post_as("alice", "hello from alice", root_id=root["id"])
                    assert "hello from alice" in await answer_of(mm, post["id"], timeout=60)
                    status = read_status(scratch / "state")
                    assert status is not None
                    worker_pid, gateway_pid = status.worker.pid, status.gateway.pid
                    assert worker_pid is not None
                    assert gateway_pid is not None
                    assert _uid_of(worker_pid) == worker_pw.pw_uid
                    assert _uid_of(gateway_pid) == pwd.getpwnam(gateway_user).pw_uid
                    gateway_env = _environ_names(gateway_pid)
                    assert not {n for n in gateway_env if n.startswith("ANTHROPIC_")}
                    assert not {n for n in gateway_env if n.startswith("MATTERMOST_")}
                    assert not {n for n in _environ_names(worker_pid) if "MATTERMOST" in n}
                    probe = json.loads(probe_out.read_text())
                finally:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(tree.pid, signal.SIGTERM)
                    try:
                        await asyncio.to_thread(tree.wait, 20)
                    except subprocess.TimeoutExpired:
                        os.killpg(tree.pid, signal.SIGKILL)
                        await asyncio.to_thread(tree.wait, 5)
            assert probe["uid"] == worker_pw.pw_uid
            assert probe["token_file"].startswith("error: Permission denied"), probe
            # No process whose environment claude can read names the token or its file.
            leaks = {pid: n for pid, n in probe["environ_readable"].items()
                     if any(x.startswith("MATTERMOST_") for x in n)}  # fmt: skip
            assert not leaks, probe
            assert str(gateway_pid) not in probe["environ_readable"]
            assert probe["own_env"] == ["ANTHROPIC_API_KEY"]  # claude's, and only claude's

        try:
            asyncio.run(asyncio.wait_for(scenario(), 130))
        except BaseException:
            print(log_path.read_text(errors="replace")[-6000:])
            raise
        assert tree_exited_cleanly(log_path)
        if transport == "tcp+curve":
            assert '"inbox.curve"' in log_path.read_text(errors="replace")


def tree_exited_cleanly(log_path: Path) -> bool:
    text = log_path.read_text(errors="replace")
    return '"supervisor.stopped"' in text and "child.gave_up" not in text
