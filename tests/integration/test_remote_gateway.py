"""A gateway on another host, over CURVE: a worker in one network namespace and a gateway in
another (made by the test, joined by a veth pair), the Mattermost emulator next to the gateway.

Prompts are answered across the link; peers without an allowed key (no CURVE at all, an
unlisted key, another local user) get nothing: no Welcome, no thread id, their prompt never
runs, their binding and Delivered change nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from devtools.harness import answer_of, fake_claude_path
from emulators.mattermost import open_emulator
from protocol import curve
from session_worker.journal import Journal
from session_worker.states import State
from tests.integration.everyone import python_for_everyone
from tests.integration.hostile_peer import ATTACK_POST, ATTACK_THREAD
from tests.support import REPO, ProcessGroup, short_tmpdir

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.timeout(120)

WORKER_IP, GATEWAY_IP = "10.200.0.1", "10.200.0.2"
INBOX = f"tcp://{WORKER_IP}:7700"
GATEWAY_ENDPOINT = f"tcp://{GATEWAY_IP}:7701"
_CLONE_NEWNET = 0x40000000


def _need_root_and_ip() -> None:
    if os.geteuid() != 0:
        pytest.skip("SKIPPED LOUDLY: network namespaces need root (CI runs as root)")
    if shutil.which("ip") is None:
        pytest.skip("SKIPPED LOUDLY: no `ip` command (iproute2) to make network namespaces")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)


class Namespaces:
    """Two network namespaces, ``w`` (worker) and ``g`` (gateway), joined by a veth pair."""

    def __init__(self) -> None:
        tag = f"{os.getpid() % 100000}"
        self.w, self.g = f"mmcw{tag}", f"mmcg{tag}"

    def make(self) -> None:
        _ip("netns", "add", self.w)
        _ip("netns", "add", self.g)
        _ip("-n", self.w, "link", "add", "veth-w", "type", "veth", "peer", "name", "veth-g")
        _ip("-n", self.w, "link", "set", "veth-g", "netns", self.g)
        _ip("-n", self.w, "addr", "add", f"{WORKER_IP}/30", "dev", "veth-w")
        _ip("-n", self.g, "addr", "add", f"{GATEWAY_IP}/30", "dev", "veth-g")
        for ns, dev in ((self.w, "veth-w"), (self.g, "veth-g")):
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")

    def remove(self) -> None:
        for ns in (self.w, self.g):
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                _ip("netns", "del", ns)

    def exec(self, ns: str, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", ns, *argv]

    @contextlib.contextmanager
    def entered(self, ns: str) -> Iterator[None]:
        """Run this thread in ``ns`` (sockets made meanwhile stay there), then come back."""
        libc = ctypes.CDLL(None, use_errno=True)
        home = os.open("/proc/self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            if libc.setns(target, _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
            yield
        finally:
            if libc.setns(home, _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
            os.close(home)
            os.close(target)


@pytest.fixture
def netns() -> Iterator[Namespaces]:
    _need_root_and_ip()
    spaces = Namespaces()
    spaces.remove()  # a leftover of a killed run with our pid
    try:
        spaces.make()
        yield spaces
    finally:
        spaces.remove()


def _keys(scratch: Path) -> tuple[Path, Path]:
    """`mmclaude keys` in the worker's state dir; the gateway's three files copied over."""
    worker_state, gateway_state = scratch / "w", scratch / "g"
    subprocess.run(
        [sys.executable, "-m", "supervisor.cli", "keys"],
        env={**os.environ, "MMCLAUDE_STATE_DIR": str(worker_state)},
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    src, dst = curve.keys_dir(worker_state), curve.keys_dir(gateway_state)
    dst.mkdir(parents=True, mode=0o700)
    for name in ("gateway.key", "gateway.key_secret", "worker.key"):
        shutil.copy2(src / name, dst / name)
    return worker_state, gateway_state


def _stop_peer(peer: subprocess.Popen[bytes]) -> dict[str, int]:
    peer.send_signal(signal.SIGTERM)
    out, _ = peer.communicate(timeout=10)
    return dict(json.loads(out.decode().strip().splitlines()[-1]))


def test_a_remote_gateway_over_curve_is_served_and_keyless_peers_get_nothing(
    netns: Namespaces, procs: ProcessGroup
) -> None:
    with short_tmpdir() as scratch:
        everyone, everyone_path = python_for_everyone()  # for the peer of uid 65534
        worker_state, gateway_state = _keys(scratch)
        workdir = scratch / "work"
        workdir.mkdir()
        base = {k: v for k, v in os.environ.items() if not k.startswith(("MATTERMOST_", "MMC"))}
        log_w, log_g = scratch / "worker.log", scratch / "gateway.log"
        worker_env = {
            **base,
            "CLAUDE_PATH": fake_claude_path(scratch),
            "CLAUDE_WORKDIR": str(workdir),
            "FAKE_CLAUDE_SESSIONS_DIR": str(scratch / "sessions"),
            "MMCLAUDE_STATE_DIR": str(worker_state),
            "MMCLAUDE_WORKER_ENDPOINT": INBOX,
            "MMCLAUDE_LOG_FORMAT": "json",
        }
        worker_public = curve.load_public(curve.keys_dir(worker_state) / "worker.key").decode()

        async def scenario() -> None:
            with netns.entered(netns.g):
                emulator = open_emulator(port=0)
                mm = await emulator.__aenter__()
            try:
                gateway_env = {
                    **base,
                    "MATTERMOST_URL": mm.url,
                    "MATTERMOST_TOKEN": mm.bot.token,
                    "MATTERMOST_CHANNEL_ID": mm.channel.id,
                    "MATTERMOST_ALLOWED_USERS": "alice",
                    "MMCLAUDE_STATE_DIR": str(gateway_state),
                    "MMCLAUDE_WORKER_ENDPOINT": INBOX,
                    "MMCLAUDE_GATEWAY_ENDPOINT": GATEWAY_ENDPOINT,
                    "MMCLAUDE_LOG_FORMAT": "json",
                }
                py = [sys.executable, "-m", "supervisor.cli"]
                with log_w.open("wb") as w, log_g.open("wb") as g:
                    procs.start(netns.exec(netns.w, *py, "worker"), env=worker_env, cwd=REPO,
                                stdout=w, stderr=subprocess.STDOUT)  # fmt: skip
                    procs.start(netns.exec(netns.g, *py, "gateway"), env=gateway_env, cwd=REPO,
                                stdout=g, stderr=subprocess.STDOUT)  # fmt: skip
                # Hostile peers, started before the bot binds its thread: one with no CURVE in
                # the gateway's namespace, one with an unlisted key, and another local user
                # (uid 65534) on the worker's own host.
                peer = [sys.executable, "-m", "tests.integration.hostile_peer", INBOX]
                pipes = {"stdout": subprocess.PIPE, "cwd": REPO, "env": base}
                peers = [
                    procs.start(netns.exec(netns.g, *peer, f"tcp://{GATEWAY_IP}:7702", "plain"),
                                **pipes),
                    procs.start(netns.exec(netns.g, *peer, f"tcp://{GATEWAY_IP}:7703",
                                           f"unlisted:{worker_public}"), **pipes),
                    procs.start(netns.exec(netns.w, "setpriv", "--reuid=65534", "--regid=65534",
                                           "--clear-groups", everyone, *peer[1:],
                                           f"tcp://{WORKER_IP}:7704", "plain"),
                                stdout=subprocess.PIPE, cwd=REPO,
                                env={**base, "PYTHONPATH": everyone_path}),
                ]  # fmt: skip
                for p in peers:
                    assert p.stdout is not None
                    assert p.stdout.readline().strip() == b"ready"
                root = await mm.wait_for_post(
                    lambda p: p["user_id"] == mm.bot.id and not p["root_id"], timeout=60
                )
                post = await mm.post_as("alice", "hello across hosts", root_id=root["id"])
                answer = await answer_of(mm, post["id"], timeout=60)
                assert "hello across hosts" in answer
                second = await mm.post_as("alice", "and again", root_id=root["id"])
                assert "and again" in await answer_of(mm, second["id"], timeout=60)
                reports = [_stop_peer(p) for p in peers]
                assert [r["received"] for r in reports] == [0, 0, 0], reports
            finally:
                await emulator.__aexit__(None, None, None)

        asyncio.run(asyncio.wait_for(scenario(), 100))
        procs.close()
        worker_log = log_w.read_text(errors="replace")
        assert '"inbox.curve"' in worker_log
        assert "gateway.joined" in worker_log
        assert "evil" not in worker_log  # no hostile hello, binding or prompt was ever read
        with Journal(str(worker_state)) as journal:
            assert journal.binding().thread_id != ATTACK_THREAD
            assert ATTACK_POST not in {row.post_id for row in journal.rows(*State)}
