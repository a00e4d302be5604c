"""Binding the thread against the emulator, in-process: the configured thread (given as a
reply), a root post made by an earlier attempt found again, and never a second root."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from emulators.mattermost import MattermostEmulator, open_emulator
from gateway.access import Access
from gateway.config import GatewayConfig
from gateway.errors import FatalError
from gateway.mattermost import MattermostClient
from gateway.thread_binding import find_bind_post, history_floor, propose_thread

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
        assert got == (root["id"], mm.other_channel.id, reply["create_at"])  # reply: history
        assert bot_roots(mm) == []

    run(scenario)


def test_a_configured_thread_s_history_ends_at_its_newest_post_or_before_since_post() -> None:
    """Binding an existing thread: its posts so far are history (the floor is the newest
    one, past a page), unless the operator names the first post to run (since_post)."""

    async def scenario(mm: MattermostEmulator, client: MattermostClient) -> None:
        root = await mm.post_as("bob", "a thread")
        replies = [await mm.post_as("alice", f"old {i}", root_id=root["id"]) for i in range(205)]
        cfg = config(mm, thread_id=root["id"])
        assert await history_floor(client, cfg, root["id"]) == replies[-1]["create_at"]
        since = config(mm, thread_id=root["id"], since_post=replies[3]["id"])
        assert await history_floor(client, since, root["id"]) == replies[3]["create_at"] - 1
        started = replies[100]["create_at"]  # replies made since the gateway started count
        assert await history_floor(client, cfg, root["id"], started=started) == started - 1
        empty = await mm.post_as("bob", "an empty thread")
        assert await history_floor(client, cfg, empty["id"]) == empty["create_at"]
        with pytest.raises(FatalError, match="MMCLAUDE_SINCE_POST"):
            await history_floor(client, config(mm, since_post="a" * 26), root["id"])

    run(scenario)


def test_the_client_keeps_the_server_s_clock_from_the_date_header() -> None:
    """The floor's "since the gateway started" is on the server's clock, not ours."""

    async def scenario(mm: MattermostEmulator, client: MattermostClient) -> None:
        assert client.server_ms == 0
        await client.get_me()
        post = await mm.post_as("alice", "now")
        assert 0 < client.server_ms <= post["create_at"] < client.server_ms + 60_000

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
        thread, channel, floor = await propose_thread(client, config(mm), mm.bot.id, "tok-1")
        assert channel == mm.channel.id
        [root] = bot_roots(mm)
        assert root["id"] == thread
        assert floor == 0  # every reply is newer than the root we made
        assert root["props"]["mmclaude_bind_token"] == "tok-1"
        for i in range(210):
            await mm.post_as("alice", f"chatter {i}")
        again = await propose_thread(client, config(mm), mm.bot.id, "tok-1")
        assert again == (thread, mm.channel.id, floor)
        assert len(bot_roots(mm)) == 1
        assert await find_bind_post(client, mm.channel.id, mm.bot.id, "other") is None

    run(scenario)


def test_usernames_resolve_to_ids_and_an_unknown_name_allows_nobody() -> None:
    """Names become ids on the server's word, ids stay as they are, and a name nobody holds
    allows nobody (not whoever an event later says has it)."""

    async def scenario(mm: MattermostEmulator, client: MattermostClient) -> None:
        bob = mm.users["bob"].id
        access = Access(client, ("@alice", bob, "nobody-here"), refresh_s=60)
        assert await access.refresh()
        assert access.allow.user_ids == {mm.users["alice"].id, bob}
        assert access.resolved == {"alice": mm.users["alice"].id}
        assert access.name_of(mm.users["alice"].id) == "alice"
        assert not access.allows(mm.users["mallory"].id, 1)

    run(scenario)


def test_without_users_usernames_names_resolve_one_by_one_or_by_author() -> None:
    """POST /users/usernames is not promised: without it names resolve with GET
    /users/username/{name}; without that too, an author is looked up by id when they post.
    A 500 keeps the last answer."""

    async def scenario(mm: MattermostEmulator, client: MattermostClient) -> None:
        alice, mallory = mm.users["alice"].id, mm.users["mallory"].id
        mm.fail_route("POST", "/api/v4/users/usernames", 404)
        one_by_one = Access(client, ("alice", "nobody"), refresh_s=60)
        assert await one_by_one.refresh()
        assert one_by_one.resolved == {"alice": alice}
        mm.fail_route("GET", "/api/v4/users/username/{username}", 405)
        by_author = Access(client, ("alice",), refresh_s=60)
        assert await by_author.refresh()
        assert by_author.resolved == {}
        assert by_author.should_check(alice)
        assert await by_author.check_author(mallory, 5)
        assert not by_author.allows(mallory, 5)
        assert await by_author.check_author(alice, 7)
        assert by_author.allows(alice, 7)
        assert not by_author.allows(alice, 6)  # allowed from the post that was looked up
        mm.fail_route("GET", "/api/v4/users/{user_id}", 500)
        assert not await by_author.refresh()  # alice cannot be checked again: kept
        assert by_author.resolved == {"alice": alice}
        mm.fail_route("GET", "/api/v4/users/{user_id}", 500, n=0)
        mm.fail_route("POST", "/api/v4/users/usernames", 500)
        flaky = Access(client, ("alice",), refresh_s=60)
        assert not await flaky.refresh()
        assert flaky.resolved == {}

    run(scenario)


def test_a_rename_moves_access_at_the_next_refresh_and_only_for_later_posts() -> None:
    """alice renames away and mallory takes the name: after a refresh mallory is allowed,
    but only for posts made from then on; alice is no longer allowed."""

    async def scenario(mm: MattermostEmulator, client: MattermostClient) -> None:
        alice, mallory = mm.users["alice"].id, mm.users["mallory"].id
        access = Access(client, ("alice",), refresh_s=60)
        assert await access.refresh()
        assert access.allows(alice, 1)
        access.newest = 1000  # the newest post seen before the rename
        mm.rename_user(alice, "alice-old")
        mm.rename_user(mallory, "alice")
        assert await access.refresh()
        assert not access.allows(alice, 2000)
        assert not access.allows(mallory, 999)
        assert access.allows(mallory, 1000)
        mm.rename_user(mallory, "mallory")
        assert await access.refresh()
        assert not access.allows(mallory, 5000)

    run(scenario)
