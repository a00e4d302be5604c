"""Binding the thread against the emulator, in-process: the configured thread (given as a
reply), a root post made by an earlier attempt found again, and never a second root."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from emulators.mattermost import MattermostEmulator, open_emulator
from gateway.binding import find_bind_post, propose_thread, resolve_allowlist
from gateway.config import GatewayConfig
from gateway.errors import FatalError
from gateway.mattermost import MattermostClient

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

pytestmark = pytest.mark.slow


def config(mm: MattermostEmulator, **overrides: Any) -> GatewayConfig:
    values: dict[str, Any] = {
        "url": mm.url,
        "token": mm.bot.token,
        "channel_id": mm.channel.id,
        "thread_id": "",
        "allowed_users": (),
        "state_dir": "/tmp",
        "gateway_id": "g1",
        "worker_endpoint": "ipc:///tmp/x",
        "endpoint": "ipc:///tmp/y",
    }
    values.update(overrides)
    return msgspec.convert(values, GatewayConfig)


def run(scenario: Callable[[MattermostEmulator, MattermostClient], Awaitable[None]]) -> None:
    async def main() -> None:
        async with open_emulator(port=0) as mm:
            client = MattermostClient(mm.url, mm.bot.token)
            try:
                await scenario(mm, client)
            finally:
                await client.aclose()

    asyncio.run(asyncio.wait_for(main(), 30))


def bot_roots(mm: MattermostEmulator) -> list[dict[str, Any]]:
    return [
        p
        for p in mm.posts(channel_id=mm.channel.id)
        if p["user_id"] == mm.bot.id and not p["root_id"]
    ]


def test_a_configured_reply_binds_its_root() -> None:
    """MATTERMOST_THREAD_ID may name a reply: the thread is its root, in its channel."""

    async def scenario(mm: MattermostEmulator, client: MattermostClient) -> None:
        root = await mm.post_as("alice", "let's talk here", channel_id=mm.other_channel.id)
        reply = await mm.post_as("alice", "ok", root_id=root["id"])
        got = await propose_thread(client, config(mm, thread_id=reply["id"]), mm.bot.id, "t")
        assert got == (root["id"], mm.other_channel.id)
        assert bot_roots(mm) == []

    run(scenario)


def test_a_configured_thread_that_does_not_exist_is_fatal() -> None:
    """A thread id nobody can find stops the gateway with a line naming the setting."""

    async def scenario(mm: MattermostEmulator, client: MattermostClient) -> None:
        with pytest.raises(FatalError, match="MATTERMOST_THREAD_ID"):
            await propose_thread(client, config(mm, thread_id="a" * 26), mm.bot.id, "t")

    run(scenario)


def test_the_root_post_is_made_once_and_found_again_past_a_page() -> None:
    """The first proposal makes the root (token in props); later ones find it, even when
    more than a page (200) of posts came after it."""

    async def scenario(mm: MattermostEmulator, client: MattermostClient) -> None:
        thread, channel = await propose_thread(client, config(mm), mm.bot.id, "tok-1")
        assert channel == mm.channel.id
        [root] = bot_roots(mm)
        assert root["id"] == thread
        assert root["props"]["mmclaude_bind_token"] == "tok-1"
        for i in range(210):
            await mm.post_as("alice", f"chatter {i}")
        again = await propose_thread(client, config(mm), mm.bot.id, "tok-1")
        assert again == (thread, mm.channel.id)
        assert len(bot_roots(mm)) == 1
        assert await find_bind_post(client, mm.channel.id, mm.bot.id, "other") is None

    run(scenario)


def test_usernames_resolve_once_and_unknown_names_are_kept_as_names() -> None:
    """Names become ids through the fast path, ids stay, and an unknown name is kept to be
    matched by username when that user posts (they may be created later)."""

    async def scenario(mm: MattermostEmulator, client: MattermostClient) -> None:
        bob = mm.users["bob"].id
        allow, names = await resolve_allowlist(client, ("@alice", bob, "nobody-here"))
        assert allow.user_ids == {mm.users["alice"].id, bob}
        assert allow.usernames == {"alice", "nobody-here"}
        assert names[mm.users["alice"].id] == "alice"

    run(scenario)


def test_without_users_usernames_the_names_are_kept_and_nothing_fails() -> None:
    """POST /users/usernames is not promised: a 404 or 405 leaves the names to be matched
    by username (no ids), and the allowlist is still built."""

    async def scenario(mm: MattermostEmulator, client: MattermostClient) -> None:
        for status in (404, 405, 500):
            mm.fail_route("POST", "/api/v4/users/usernames", status)
            allow, names = await resolve_allowlist(client, ("alice", "*x"))
            assert allow.user_ids == frozenset()
            assert allow.usernames == {"alice", "*x"}
            assert allow.allows("z" * 26, "alice")
            assert names == {}

    run(scenario)
