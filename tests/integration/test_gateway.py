"""The gateway as a real process against the Mattermost emulator, the real session worker
and the fake claude: conversations, reconnects, REST faults, long answers, several gateways,
kills mid-delivery, garbage frames, and a token that never reaches a log line.

The emulator runs inside the test's event loop; worker and gateways are child processes
(killed by pid and group at teardown). The fake claude answers ``echo[N]: <text>``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

import protocol
from emulators.claude.engine import long_answer
from emulators.mattermost import MattermostEmulator, open_emulator
from emulators.mattermost.hub import make_broadcast
from gateway.config import GatewayConfig
from gateway.splitting import reassemble
from protocol import GatewayHeartbeat
from session_worker.config import WorkerConfig
from tests.support import REPO, ProcessGroup, async_wait_for

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Awaitable, Callable
    from pathlib import Path

pytestmark = pytest.mark.slow

Post = dict[str, Any]


class Rig:
    """One emulator, one worker and any number of gateways on one state dir."""

    def __init__(self, mm: MattermostEmulator, state_dir: Path, procs: ProcessGroup) -> None:
        self.mm = mm
        self.dir = state_dir
        self.procs = procs
        self.worker: subprocess.Popen[bytes] | None = None
        self.gateways: dict[str, subprocess.Popen[bytes]] = {}

    # --- processes ---------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "FAKE_CLAUDE_SESSIONS_DIR": str(self.dir / "sessions"),
        }

    def start_worker(self, **overrides: Any) -> None:
        claude = self.dir / "fake-claude"
        claude.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m emulators.claude "$@"\n')
        claude.chmod(0o755)
        (self.dir / "work").mkdir(exist_ok=True)
        config = WorkerConfig(
            state_dir=str(self.dir),
            claude_path=str(claude),
            claude_args=(),
            claude_workdir=str(self.dir / "work"),
            endpoint=protocol.worker_endpoint(self.dir),
            log_level="DEBUG",
            log_format="json",
            redeliver_interval=0.5,
        )
        config = msgspec.structs.replace(config, **overrides)
        path = self.dir / "worker.json"
        path.write_bytes(msgspec.json.encode(config))
        with open(self.dir / "worker.log", "ab") as log:
            self.worker = self.procs.python(
                "-m", "session_worker", str(path), env=self.env(), cwd=REPO, stderr=log
            )

    def config(self, gateway_id: str, **overrides: Any) -> GatewayConfig:
        values: dict[str, Any] = {
            "url": self.mm.url,
            "token": self.mm.bot.token,
            "channel_id": self.mm.channel.id,
            "thread_id": "",
            "allowed_users": ("alice", self.mm.users["bob"].id),
            "state_dir": str(self.dir),
            "gateway_id": gateway_id,
            "worker_endpoint": protocol.worker_endpoint(self.dir),
            "endpoint": protocol.gateway_endpoint(self.dir, gateway_id),
            "log_level": "DEBUG",
            "log_format": "json",
            "resend_interval": 0.5,
        }
        values.update(overrides)
        return msgspec.convert(values, GatewayConfig)

    def start_gateway(self, gateway_id: str = "g1", **overrides: Any) -> subprocess.Popen[bytes]:
        path = self.dir / f"{gateway_id}.json"
        path.write_bytes(msgspec.json.encode(self.config(gateway_id, **overrides)))
        with open(self.log_path(gateway_id), "ab") as log:
            proc = self.procs.python(
                "-m", "gateway", str(path), env=self.env(), cwd=REPO, stderr=log
            )
        self.gateways[gateway_id] = proc
        return proc

    def log_path(self, gateway_id: str) -> Path:
        return self.dir / f"{gateway_id}.log"

    def events(self, gateway_id: str, name: str) -> list[dict[str, Any]]:
        found = []
        path = self.log_path(gateway_id)
        text = path.read_text(errors="replace") if path.exists() else ""
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if str(record.get("message", "")).startswith(name):
                found.append(record)
        return found

    def kill(self, gateway_id: str) -> None:
        proc = self.gateways.pop(gateway_id)
        proc.kill()
        proc.wait(timeout=5)

    def assert_token_never_logged(self) -> None:
        for path in self.dir.glob("*.log"):
            assert self.mm.bot.token not in path.read_text(errors="replace"), path

    # --- the thread --------------------------------------------------------------------

    def roots(self) -> list[Post]:
        return [
            p
            for p in self.mm.posts(channel_id=self.mm.channel.id)
            if not p["root_id"] and p["user_id"] == self.mm.bot.id
        ]

    async def thread(self, timeout: float = 15.0) -> str:
        """The bound thread, once the gateway made its root post."""
        root = await async_wait_for(lambda: self.roots(), timeout, "the thread's root post")
        return str(root[0]["id"])

    def replies(self, post_id: str) -> list[Post]:
        return [
            p
            for p in self.mm.posts(channel_id=self.mm.channel.id)
            if (p.get("props") or {}).get("mmclaude_reply_to") == post_id
        ]

    async def answer(self, post_id: str, timeout: float = 20.0) -> list[Post]:
        """All parts of the answer to ``post_id`` (in part order), once they are all there."""

        def complete() -> list[Post] | None:
            parts = self.replies(post_id)
            if parts and len(parts) >= int(parts[0]["props"]["mmclaude_parts"]):
                return sorted(parts, key=lambda p: p["props"]["mmclaude_part"])
            return None

        return await async_wait_for(complete, timeout, f"the answer to {post_id}")

    async def ask(self, text: str, user: str = "alice") -> Post:
        return await self.mm.post_as(user, text, root_id=await self.thread())

    async def barrier(self) -> None:
        """Ask once more and wait for the answer: answers are delivered in order, so what an
        earlier post could still cause (a duplicate, an answer to an ignored post) has shown
        by then. A condition to wait on instead of a fixed sleep."""
        post = await self.ask("barrier")
        await self.answer(post["id"])

    def answer_order(self) -> list[str]:
        """The posts answered, in the order their (first) parts were created."""
        order: list[str] = []
        for post in self.mm.posts(channel_id=self.mm.channel.id):
            reply_to = (post.get("props") or {}).get("mmclaude_reply_to")
            if reply_to and reply_to not in order:
                order.append(reply_to)
        return order

    def assert_answered_in_order(self, asked: list[Post]) -> None:
        """Answers follow the posts' create_at (ms); posts made in one ms may go either way,
        as Mattermost itself only orders them by time."""
        made = {p["id"]: p["create_at"] for p in asked}
        order = [post_id for post_id in self.answer_order() if post_id in made]
        assert sorted(order) == sorted(made)
        times = [made[post_id] for post_id in order]
        assert times == sorted(times), order

    def reactions(self, post_id: str) -> list[str]:
        post = next(p for p in self.mm.posts(channel_id=self.mm.channel.id) if p["id"] == post_id)
        return [r["emoji_name"] for r in (post.get("metadata") or {}).get("reactions") or []]

    def assert_answered_once(self, post_id: str) -> None:
        parts = self.replies(post_id)
        numbers = [p["props"]["mmclaude_part"] for p in parts]
        assert sorted(numbers) == list(range(1, len(numbers) + 1)), numbers


def run(
    scenario: Callable[[Rig], Awaitable[None]],
    state_dir: Path,
    procs: ProcessGroup,
    *,
    start: bool = True,
    **emulator: Any,
) -> None:
    """Run ``scenario`` with an emulator (and, with ``start``, a worker and gateway g1)."""

    async def main() -> None:
        async with open_emulator(port=0, **emulator) as mm:
            rig = Rig(mm, state_dir, procs)
            if start:
                rig.start_worker()
                rig.start_gateway("g1")
            try:
                await scenario(rig)
            finally:
                procs.close()
            rig.assert_token_never_logged()

    asyncio.run(asyncio.wait_for(main(), 80))


def text_of(parts: list[Post]) -> str:
    return reassemble([p["message"] for p in parts])


# --- tests -------------------------------------------------------------------------------


def test_a_conversation_is_answered_in_order(short_tmp: Path, procs: ProcessGroup) -> None:
    """Replies by allowed users are answered once each, in order, with props and 👀."""

    async def scenario(rig: Rig) -> None:
        thread = await rig.thread()
        asked = [await rig.ask(f"question {i}") for i in range(3)]
        asked.append(await rig.ask("from bob", user="bob"))
        ignored = await rig.ask("nobody asked me", user="mallory")
        answers = [await rig.answer(p["id"]) for p in asked]
        for post, parts in zip(asked, answers, strict=True):
            assert len(parts) == 1
            assert parts[0]["root_id"] == thread
            assert post["message"] in parts[0]["message"]
            rig.assert_answered_once(post["id"])
        rig.assert_answered_in_order(asked)
        await rig.barrier()
        assert rig.replies(ignored["id"]) == []
        assert len(rig.roots()) == 1
        await async_wait_for(
            lambda: all("eyes" in rig.reactions(p["id"]) for p in asked),
            5,
            "👀 on every accepted post",
        )

    run(scenario, short_tmp, procs)


def test_restarts_reuse_the_one_thread_and_sigterm_exits_at_once(
    short_tmp: Path, procs: ProcessGroup
) -> None:
    """SIGTERM stops a gateway with 0 (a bounded wait); after killing everything, the new
    processes serve the same thread: exactly one root post across restarts."""

    async def scenario(rig: Rig) -> None:
        first = await rig.ask("before the restart")
        await rig.answer(first["id"])
        gateway = rig.gateways.pop("g1")
        started = time.monotonic()
        gateway.send_signal(signal.SIGTERM)
        while gateway.poll() is None and time.monotonic() - started < 5:
            await asyncio.sleep(0.02)
        assert gateway.returncode == 0
        assert rig.events("g1", "gateway.stopped")
        assert rig.worker is not None
        rig.worker.kill()
        rig.worker.wait(timeout=5)
        rig.start_worker()
        rig.start_gateway("g2")
        second = await rig.ask("after the restart")
        parts = await rig.answer(second["id"])
        assert "after the restart" in parts[0]["message"]
        assert len(rig.roots()) == 1
        rig.assert_answered_once(first["id"])

    run(scenario, short_tmp, procs)


def test_posts_made_while_sockets_are_refused_are_answered_after(
    short_tmp: Path, procs: ProcessGroup
) -> None:
    """The server forgets every connection and refuses sockets for 3 s; posts made then are
    found by the REST catch-up after the new hello and answered once."""

    async def scenario(rig: Rig) -> None:
        first = await rig.ask("warm up")
        await rig.answer(first["id"])
        rig.mm.refuse_sockets(3.0)
        rig.mm.restart_sockets()
        missed = [await rig.ask(f"while down {i}") for i in range(2)]
        for post in missed:
            await rig.answer(post["id"], timeout=20)
            rig.assert_answered_once(post["id"])
        assert len(rig.events("g1", "ws.hello")) >= 2
        assert len(rig.events("g1", "catchup.complete")) >= 2

    run(scenario, short_tmp, procs)


def test_a_short_drop_is_resumed_and_replayed_without_duplicates(
    short_tmp: Path, procs: ProcessGroup
) -> None:
    """A dropped socket resumes its connection id; the post made meanwhile is replayed by the
    server (no new hello, no catch-up) and answered exactly once."""

    async def scenario(rig: Rig) -> None:
        first = await rig.ask("warm up")
        await rig.answer(first["id"])
        hellos = len(rig.events("g1", "ws.hello"))
        rig.mm.drop_sockets()
        during = await rig.ask("during the drop")
        await rig.answer(during["id"])
        after = await rig.ask("after the drop")
        await rig.answer(after["id"])
        for post in (first, during, after):
            rig.assert_answered_once(post["id"])
        assert rig.events("g1", "ws.resumed")
        assert len(rig.events("g1", "ws.hello")) == hellos

    run(scenario, short_tmp, procs)


def test_500_and_429_on_posting_still_answer_exactly_once(
    short_tmp: Path, procs: ProcessGroup
) -> None:
    """Failed creates are retried (429 after Retry-After), a 500 whose post was really made
    is folded by pending_post_id: every answer arrives exactly once."""

    async def scenario(rig: Rig) -> None:
        await rig.thread()
        rig.mm.fail_posts(2, status=500)
        one = await rig.ask("through two 500s")
        await rig.answer(one["id"])
        rig.mm.fail_posts(1, status=500, after_create=True)
        two = await rig.ask("through a lost reply")
        await rig.answer(two["id"])
        rig.mm.fail_posts(1, status=429, retry_after=1)
        three = await rig.ask("through a 429")
        await rig.answer(three["id"])
        await rig.barrier()  # a duplicate would show up before the next answer
        for post in (one, two, three):
            rig.assert_answered_once(post["id"])
            assert len(rig.replies(post["id"])) == 1
        statuses = [e.get("status") for e in rig.events("g1", "mm.retry")]
        assert 429 in statuses
        assert 500 in statuses

    run(scenario, short_tmp, procs)


def test_a_40000_character_answer_arrives_in_parts_that_reassemble(
    short_tmp: Path, procs: ProcessGroup
) -> None:
    """LONG:40000 comes back as 3 numbered parts of at most 16383 runes, exactly the text."""

    async def scenario(rig: Rig) -> None:
        post = await rig.ask("LONG:40000")
        parts = await rig.answer(post["id"])
        assert len(parts) == 3
        assert all(len(p["message"]) <= 16383 for p in parts)
        assert [p["props"]["mmclaude_parts"] for p in parts] == [3, 3, 3]
        text = text_of(parts)
        prefix = re.match(r"echo\[\d+\]: ", text)
        assert prefix is not None
        assert text == long_answer(prefix.group(0), 40_000)

    run(scenario, short_tmp, procs)


def test_two_gateways_answer_every_post_exactly_once(short_tmp: Path, procs: ProcessGroup) -> None:
    """Both gateways see every post; the worker de-duplicates and each answer is posted once."""

    async def scenario(rig: Rig) -> None:
        await rig.thread()
        rig.start_gateway("g2")
        await async_wait_for(lambda: rig.events("g2", "ws.connected"), 10, "g2 connected")
        asked = [await rig.ask(f"q{i}", user="alice" if i % 2 else "bob") for i in range(6)]
        for post in asked:
            await rig.answer(post["id"])
        await rig.barrier()
        for post in asked:
            assert len(rig.replies(post["id"])) == 1
        rig.assert_answered_in_order(asked)
        assert rig.events("g2", "prompt.sent")

    run(scenario, short_tmp, procs)


def test_a_gateway_killed_mid_delivery_leaves_no_duplicate_part(
    short_tmp: Path, procs: ProcessGroup
) -> None:
    """g1 dies after posting part 1 of 3; past the pending_post_id window, g2 finds that part
    in the thread and posts only parts 2 and 3."""

    async def scenario(rig: Rig) -> None:
        warm = await rig.ask("warm up")
        await rig.answer(warm["id"])
        rig.mm.set_latency(0.6)
        post = await rig.ask("LONG:40000")
        await async_wait_for(lambda: rig.replies(post["id"]), 20, "the first part")
        rig.kill("g1")
        rig.mm.set_latency(0.0)
        # The requests g1 had in flight land, then the pending_post_id window ends.
        await async_wait_for(lambda: rig.mm.rest_in_flight == 0, 10, "g1's requests landing")
        rig.mm.expire_pending_posts()
        rig.start_gateway("g2")
        parts = await rig.answer(post["id"], timeout=25)
        assert len(parts) == 3
        await rig.barrier()
        rig.assert_answered_once(post["id"])
        assert len(rig.replies(post["id"])) == 3
        assert text_of(parts).endswith(long_answer("", 40_000)[-100:])
        assert any(e.get("reused", 0) >= 1 for e in rig.events("g2", "answer.posted"))

    run(scenario, short_tmp, procs, dedup_ttl_s=1.0)


def test_garbage_frames_and_broken_posted_events_are_survived(
    short_tmp: Path, procs: ProcessGroup
) -> None:
    """A non-JSON frame and a posted event whose post string is broken are logged and
    dropped; the next post is still answered."""

    async def scenario(rig: Rig) -> None:
        first = await rig.ask("before the garbage")
        await rig.answer(first["id"])
        assert await rig.mm.send_garbage_frame() >= 1
        data = {"post": '{"id": "broken', "channel_type": "O", "sender_name": "@alice"}
        rig.mm._hub.broadcast("posted", data, make_broadcast(channel_id=rig.mm.channel.id))
        await async_wait_for(lambda: rig.events("g1", "ws.bad_post"), 5, "ws.bad_post")
        after = await rig.ask("after the garbage")
        await rig.answer(after["id"])
        assert rig.events("g1", "ws.bad_frame")
        assert rig.gateways["g1"].poll() is None

    run(scenario, short_tmp, procs)


def test_a_rejected_token_is_fatal_and_never_logged(short_tmp: Path, procs: ProcessGroup) -> None:
    """A 401 on users/me stops the gateway with 1 and one clear line; the token is redacted."""
    bad = "not-the-right-token-7f3a9c"

    async def scenario(rig: Rig) -> None:
        gateway = rig.start_gateway("g1", token=bad)
        started = time.monotonic()
        while gateway.poll() is None and time.monotonic() - started < 15:
            await asyncio.sleep(0.05)
        assert gateway.returncode == 1
        fatal = rig.events("g1", "gateway.fatal")
        assert fatal
        assert str(fatal[0]["reason"]).startswith("Mattermost rejected the token")
        assert bad not in rig.log_path("g1").read_text()

    run(scenario, short_tmp, procs, start=False)


def test_heartbeats_and_typing_while_claude_works(short_tmp: Path, procs: ProcessGroup) -> None:
    """The gateway pushes heartbeats (connected, thread) and shows typing during a slow turn."""

    async def scenario(rig: Rig) -> None:
        endpoint = f"ipc://{protocol.prepare_run_dir(rig.dir)}/hb"
        with protocol.Receiver(endpoint) as receiver:
            rig.start_worker()
            rig.start_gateway("g1", heartbeat_endpoint=endpoint)
            thread = await rig.thread()
            deadline = time.monotonic() + 10
            beat = None
            while time.monotonic() < deadline:
                async with asyncio.timeout(5):
                    message = protocol.supervisor_codec.decode(await receiver.recv())
                if isinstance(message, GatewayHeartbeat) and message.connected:
                    beat = message
                    break
            assert beat is not None
            assert (beat.gateway_id, beat.thread_id) == ("g1", thread)
        post = await rig.ask("SLOW:2 take your time")
        await rig.answer(post["id"])
        assert rig.events("g1", "typing.sent")

    run(scenario, short_tmp, procs, start=False)
