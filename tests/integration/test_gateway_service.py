"""The gateway's service in-process against the Mattermost emulator, with an in-memory bus
standing in for the worker: start-up during an outage, allowlists by name without
``users/usernames``, a configured thread, answer order after a refused post, catch-up
retries and its floor.

These drive ``GatewayService`` directly, so each case controls exactly what "the worker" says.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from emulators.mattermost import open_emulator
from gateway.answer_queue import FALLBACK_AFTER
from gateway.config import GatewayConfig
from gateway.mattermost import MattermostClient
from gateway.service import GatewayService
from gateway.testing import MemoryBus
from protocol import (
    Accepted,
    Answer,
    BindThread,
    Delivered,
    GatewayHello,
    Prompt,
    Welcome,
)
from protocol.backoff import Backoff
from tests.support import async_wait_for

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.slow


class FakeBus(MemoryBus):
    """The worker's side of the bus, in memory, with a way to welcome the gateway."""

    def welcome(self, thread_id: str = "", channel_id: str = "", catch_up_from: int = 0) -> None:
        self.inbox.put_nowait(
            Welcome(
                worker_pid=1,
                incarnation="w1",
                thread_id=thread_id,
                channel_id=channel_id,
                bind_token="tok",
                catch_up_from=catch_up_from,
            )
        )


def make_config(url: str, token: str, **overrides: Any) -> GatewayConfig:
    values: dict[str, Any] = {
        "url": url,
        "token": token,
        "channel_id": "",
        "thread_id": "",
        "allowed_users": ("alice",),
        "state_dir": "/tmp",
        "gateway_id": "g1",
        "worker_endpoint": "ipc:///tmp/unused-w",
        "endpoint": "ipc:///tmp/unused-g",
        "resend_interval": 0.2,
    }
    values.update(overrides)
    return msgspec.convert(values, GatewayConfig)


@contextlib.asynccontextmanager
async def running(config: GatewayConfig) -> AsyncIterator[tuple[GatewayService, FakeBus]]:
    bus = FakeBus()
    client = MattermostClient(config.url, config.token, timeout=2.0)
    gateway = GatewayService(
        config, client, bus, answer_backoff=Backoff(initial=0.05, cap=0.1, jitter=0.0)
    )
    task = asyncio.create_task(gateway.run())
    try:
        yield gateway, bus
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        await client.aclose()


def prompted(bus: FakeBus) -> list[str]:
    return [p.post_id for p in bus.of(Prompt)]


def run(coro: Any, timeout: float = 40) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout))


# --- 1. heartbeats before any Mattermost I/O -----------------------------------------------


def test_heartbeats_flow_while_mattermost_is_down_at_start_then_it_comes_up() -> None:
    """With Mattermost unreachable at start, hellos and heartbeats (connected=False) go out
    every second and the gateway keeps retrying; when the server appears it starts."""

    async def main() -> None:
        async with open_emulator(port=0, seed=7) as first:
            port, token = int(first.url.rsplit(":", 1)[1]), first.bot.token
            url = first.url
        config = make_config(url, token)
        async with running(config) as (gateway, bus):
            await async_wait_for(
                lambda: len(bus.of(GatewayHello)) >= 2 and len(bus.beats) >= 2, 10, "2 beats"
            )
            assert not any(beat.connected for beat in bus.beats)
            assert bus.beats[-1].pid == os.getpid()
            async with open_emulator(port=port, seed=7) as mm:
                await async_wait_for(lambda: gateway.bot.id == mm.bot.id, 20, "users/me")

    run(main())


# --- 2. allowlist names without users/usernames --------------------------------------------


def test_names_match_without_users_usernames_including_a_user_created_later() -> None:
    """users/usernames answers 404: alice (catch-up) and carol (created after start, seen
    on the socket) are looked up by id and accepted; mallory is not."""

    async def main() -> None:
        async with open_emulator(port=0) as mm:
            mm.fail_route("POST", "/api/v4/users/usernames", 404)
            mm.fail_route("GET", "/api/v4/users/username/{username}", 404)
            root = await mm.post_as("bob", "a thread")
            early = await mm.post_as("alice", "before the gateway", root_id=root["id"])
            config = make_config(
                mm.url, mm.bot.token, thread_id=root["id"], allowed_users=("alice", "@Carol")
            )
            async with running(config) as (gateway, bus):
                bus.welcome(root["id"], mm.channel.id)
                await async_wait_for(lambda: early["id"] in prompted(bus), 10, "alice's post")
                bus.inbox.put_nowait(Accepted(post_id=early["id"]))
                await async_wait_for(lambda: gateway.connected, 10, "the socket")
                mm.add_user("carol", (mm.channel.id,))
                later = await mm.post_as("carol", "hi, I am new", root_id=root["id"])
                stranger = await mm.post_as("mallory", "me too", root_id=root["id"])
                await async_wait_for(lambda: later["id"] in prompted(bus), 10, "carol's post")
                bus.inbox.put_nowait(Accepted(post_id=later["id"]))
                await async_wait_for(
                    lambda: gateway.access.rejected(stranger["id"]), 10, "mallory refused"
                )
                assert stranger["id"] not in prompted(bus)
                [carols] = [p for p in bus.of(Prompt) if p.post_id == later["id"]]
                assert carols.username == "carol"

    run(main())


def test_a_server_without_any_user_lookup_matches_names_on_the_event_alone() -> None:
    """The last resort, never taken against a real Mattermost: with users/usernames,
    users/username/{name} and users/{id} all missing, a name is matched on each posted
    event's sender_name (not remembered); an integration post that shows an allowed name
    is still refused."""

    async def main() -> None:
        async with open_emulator(port=0) as mm:
            for method, route in (
                ("POST", "/api/v4/users/usernames"),
                ("GET", "/api/v4/users/username/{username}"),
                ("GET", "/api/v4/users/{user_id}"),
            ):
                mm.fail_route(method, route, 404)
            root = await mm.post_as("bob", "a thread")
            config = make_config(mm.url, mm.bot.token, thread_id=root["id"])
            async with running(config) as (gateway, bus):
                bus.welcome(root["id"], mm.channel.id)
                await async_wait_for(lambda: gateway.connected, 10, "the socket")
                stranger = await mm.post_as("mallory", "me", root_id=root["id"])
                await async_wait_for(
                    lambda: gateway.access.rejected(stranger["id"]), 10, "mallory refused"
                )
                assert gateway.access.names_unresolvable
                alice = await mm.post_as("alice", "hello", root_id=root["id"])
                await async_wait_for(lambda: alice["id"] in prompted(bus), 10, "alice's post")
                hook = await mm.post_as(
                    "alice", "from a hook", root_id=root["id"], props={"from_webhook": "true"}
                )
                await async_wait_for(lambda: gateway.access.rejected(hook["id"]), 10, "hook")
                assert prompted(bus) == [alice["id"]] * len(prompted(bus))

    run(main())


def test_access_follows_renames_and_a_refused_post_stays_refused() -> None:
    """The issue's rename attack: mallory's post is refused; she renames herself to an
    allowed name nobody holds and posts again (answered: she holds the name now), renames
    back (refused within one refresh), and a catch-up never answers her first post.
    sender_name plays no part: events are not the server's word on who is allowed."""

    async def main() -> None:
        async with open_emulator(port=0) as mm:
            mallory = mm.users["mallory"].id
            root = await mm.post_as("bob", "a thread")
            config = make_config(
                mm.url,
                mm.bot.token,
                thread_id=root["id"],
                allowed_users=("alice", "carol"),
                allow_refresh_s=0.3,
            )
            async with running(config) as (gateway, bus):
                bus.welcome(root["id"], mm.channel.id)
                await async_wait_for(lambda: gateway.connected, 10, "the socket")
                first = await mm.post_as("mallory", "rm -rf /", root_id=root["id"])
                await async_wait_for(lambda: gateway.access.rejected(first["id"]), 10, "refused")
                mm.rename_user(mallory, "carol")
                await async_wait_for(lambda: gateway.access.allows(mallory, 1 << 50), 10, "ren")
                second = await mm.post_as("carol", "now as carol", root_id=root["id"])
                await async_wait_for(lambda: second["id"] in prompted(bus), 10, "as carol")
                bus.inbox.put_nowait(Accepted(post_id=second["id"]))
                gateway.catchups.want()  # a catch-up re-reads the whole thread
                await async_wait_for(lambda: gateway.catchups.high >= second["create_at"], 10, "cu")
                mm.rename_user(mallory, "mallory")
                await async_wait_for(
                    lambda: not gateway.access.allows(mallory, 1 << 50), 10, "renamed back"
                )
                third = await mm.post_as("mallory", "still here", root_id=root["id"])
                await async_wait_for(lambda: gateway.access.rejected(third["id"]), 10, "third")
                assert first["id"] not in prompted(bus)
                assert third["id"] not in prompted(bus)

    run(main())


# --- 3. a configured thread ----------------------------------------------------------------


def test_a_configured_thread_binds_without_get_channel_and_wins_over_a_remembered_one() -> None:
    """GET /channels/{id} fails (403): the configured thread is still proposed, with
    configured=True; a Welcome naming another thread gets the configured one again."""

    async def main() -> None:
        async with open_emulator(port=0) as mm:
            mm.fail_route("GET", "/api/v4/channels/{channel_id}", 403)
            root = await mm.post_as("alice", "serve this", channel_id=mm.other_channel.id)
            config = make_config(mm.url, mm.bot.token, thread_id=root["id"])
            async with running(config) as (_gateway, bus):
                bus.welcome()
                binds = await async_wait_for(lambda: bus.of(BindThread), 10, "a BindThread")
                assert (binds[0].thread_id, binds[0].channel_id) == (
                    root["id"],
                    mm.other_channel.id,
                )
                assert binds[0].configured
                bus.welcome("x" * 26, mm.channel.id)  # the worker remembered another thread
                await async_wait_for(lambda: len(bus.of(BindThread)) >= 3, 10, "re-proposals")
                assert all(b.configured and b.thread_id == root["id"] for b in bus.of(BindThread))
                count = len(bus.of(BindThread))
                bus.welcome(root["id"], mm.other_channel.id)
                beats = len(bus.beats)  # the gateway's own clock: a beat a second
                await async_wait_for(lambda: len(bus.beats) >= beats + 2, 10, "two more beats")
                assert len(bus.of(BindThread)) <= count + 1  # bound as configured: it stops

    run(main())


# --- 4. answer order after a refused post --------------------------------------------------


def test_a_refused_answer_holds_later_ones_then_a_fallback_is_posted_first() -> None:
    """POST /posts answers 400 for X's tries: Y is not posted before X; after the retries a
    fallback with X's props is posted, then Y."""

    async def main() -> None:
        async with open_emulator(port=0) as mm:
            root = await mm.post_as("alice", "thread")
            x = await mm.post_as("alice", "x", root_id=root["id"])
            y = await mm.post_as("alice", "y", root_id=root["id"])
            config = make_config(mm.url, mm.bot.token, thread_id=root["id"])
            async with running(config) as (_gateway, bus):
                bus.welcome(root["id"], mm.channel.id)
                await async_wait_for(lambda: bus.of(Prompt), 10, "the gateway up")
                mm.fail_route("POST", "/api/v4/posts", 400, n=FALLBACK_AFTER)
                for post in (x, y):
                    bus.inbox.put_nowait(Answer(post_id=post["id"], create_at=0, text="ok"))
                delivered = await async_wait_for(
                    lambda: len(bus.of(Delivered)) >= 2 and bus.of(Delivered), 15, "both answers"
                )
                assert [d.post_id for d in delivered] == [x["id"], y["id"]]
                replies = [
                    p
                    for p in mm.posts(channel_id=mm.channel.id)
                    if (p.get("props") or {}).get("mmclaude_reply_to")
                ]
                assert [p["props"]["mmclaude_reply_to"] for p in replies] == [x["id"], y["id"]]
                assert replies[0]["message"].startswith("⚠️ mmclaude could not post this answer")
                assert replies[0]["props"]["mmclaude_part"] == 1
                assert replies[1]["message"] == "ok"

    run(main())


def test_answers_posted_back_to_back_get_distinct_create_at() -> None:
    """Mattermost orders a thread by (create_at ms, id): a burst of answers is posted with
    strictly increasing create_at, so none can show before an earlier one."""

    async def main() -> None:
        async with open_emulator(port=0) as mm:
            root = await mm.post_as("alice", "thread")
            asked = [await mm.post_as("alice", f"q{i}", root_id=root["id"]) for i in range(12)]
            config = make_config(mm.url, mm.bot.token, thread_id=root["id"])
            async with running(config) as (_gateway, bus):
                bus.welcome(root["id"], mm.channel.id)
                for post in asked:
                    bus.inbox.put_nowait(Answer(post_id=post["id"], create_at=0, text="a"))
                await async_wait_for(lambda: len(bus.of(Delivered)) == 12, 15, "the burst")
                times = [
                    p["create_at"]
                    for p in mm.posts(channel_id=mm.channel.id)
                    if (p.get("props") or {}).get("mmclaude_reply_to")
                ]
                assert len(times) == 12
                assert all(a < b for a, b in itertools.pairwise(times)), times

    run(main())


# --- 7 and 8. catch-up: retried after a failure, from a generous floor ----------------------


def test_a_failed_catch_up_is_retried_without_waiting_for_a_new_hello() -> None:
    """The thread endpoint answers 400 once (and the socket is refused, so no hello comes
    to ask again): the catch-up is tried again after a short backoff and finds the post."""

    async def main() -> None:
        async with open_emulator(port=0) as mm:
            root = await mm.post_as("alice", "thread")
            missed = await mm.post_as(
                "alice", "made while the gateway was down", root_id=root["id"]
            )
            mm.fail_route("GET", "/api/v4/posts/{post_id}/thread", 400, n=1)
            mm.refuse_sockets(30)  # no socket, so no hello: nothing else asks for a catch-up
            config = make_config(mm.url, mm.bot.token, thread_id=root["id"])
            async with running(config) as (_gateway, bus):
                bus.welcome(root["id"], mm.channel.id)
                await async_wait_for(lambda: missed["id"] in prompted(bus), 10, "the retry")

    run(main())


def test_catch_up_reaches_well_before_the_workers_newest_post() -> None:
    """The worker has B (catch_up_from = B); A, 30 s older, was never offered: the
    catch-up's floor is a generous minute back, so A is found."""

    async def main() -> None:
        async with open_emulator(port=0) as mm:
            root = await mm.post_as("alice", "thread")
            older = await mm.post_as("alice", "A, missed", root_id=root["id"])
            mm.advance_clock(30)
            newer = await mm.post_as("alice", "B, in the journal", root_id=root["id"])
            config = make_config(mm.url, mm.bot.token, thread_id=root["id"])
            async with running(config) as (_gateway, bus):
                bus.welcome(root["id"], mm.channel.id, catch_up_from=newer["create_at"])
                await async_wait_for(lambda: older["id"] in prompted(bus), 10, "the older post")

    run(main())


def test_a_live_post_waits_for_the_catch_up_that_finds_an_older_one() -> None:
    """A post made while the gateway was down is only found by the catch-up, which fails
    for a while; a newer post seen live on the socket meanwhile is not sent first: answers
    keep the posts' order (a chaos run once answered such a live post before the older one)."""

    async def main() -> None:
        async with open_emulator(port=0) as mm:
            root = await mm.post_as("alice", "thread")
            missed = await mm.post_as(
                "alice", "made while the gateway was down", root_id=root["id"]
            )
            mm.fail_route("GET", "/api/v4/posts/{post_id}/thread", 503)
            config = make_config(mm.url, mm.bot.token, thread_id=root["id"])
            async with running(config) as (gateway, bus):
                bus.welcome(root["id"], mm.channel.id)
                await async_wait_for(lambda: gateway.connected, 10, "the socket")
                live = await mm.post_as("alice", "made after", root_id=root["id"])
                await async_wait_for(lambda: gateway.prompts.head() is not None, 10, "queued")
                assert prompted(bus) == []  # the catch-up still fails: nothing may be sent
                mm.fail_route("GET", "/api/v4/posts/{post_id}/thread", 503, n=0)
                await async_wait_for(lambda: missed["id"] in prompted(bus), 20, "the catch-up")
                bus.inbox.put_nowait(Accepted(post_id=missed["id"]))
                await async_wait_for(lambda: live["id"] in prompted(bus), 10, "the live post")
                assert prompted(bus).index(missed["id"]) < prompted(bus).index(live["id"])

    run(main())
