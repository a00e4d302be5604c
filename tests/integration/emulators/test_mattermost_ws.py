"""The emulator's WebSocket against mattermost-protocol.md section 1."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import msgspec
import pytest

from emulators.mattermost.testing import Harness, WsProbe, open_harness, run

pytestmark = pytest.mark.slow

BROADCAST_KEYS = {"omit_users", "user_id", "channel_id", "team_id", "connection_id"}


async def hello_of(h: Harness, username: str = "claudebot", query: str = "") -> tuple[WsProbe, str]:
    probe = await h.ws(username, query)
    hello = await probe.next()
    assert hello["event"] == "hello"
    return probe, hello["data"]["connection_id"]


def test_header_auth_gets_hello_with_seq_zero() -> None:
    """A Bearer upgrade is registered at once and gets hello (seq 0) with the documented keys."""

    async def body() -> None:
        async with open_harness() as h:
            probe = await h.ws()
            hello = await probe.next()
            assert hello["event"] == "hello"
            assert hello["seq"] == 0
            assert set(hello["data"]) == {"connection_id", "server_hostname", "server_version"}
            assert len(hello["data"]["connection_id"]) == 26
            assert hello["data"]["server_version"].count(".") >= 3
            assert hello["broadcast"]["user_id"] == h.mm.bot.id
            assert set(hello["broadcast"]) >= BROADCAST_KEYS
            assert hello["broadcast"]["omit_users"] is None

    run(body())


def test_trailing_slash_and_lowercase_bearer_are_accepted() -> None:
    """/api/v4/websocket/ works, and the Bearer scheme is compared case-insensitively."""

    async def body() -> None:
        async with open_harness() as h:
            url = h.mm.url.replace("http", "ws") + "/api/v4/websocket/"
            ws = await h.session.ws_connect(
                url, headers={"Authorization": f"bearer {h.mm.bot.token}"}
            )
            assert (await WsProbe(ws).next())["event"] == "hello"

    run(body())


def test_bad_token_socket_is_silent_then_closed_after_auth_timeout() -> None:
    """An invalid header token still upgrades, gets no hello, and is closed after the timeout."""

    async def body() -> None:
        async with open_harness(auth_timeout_s=0.3) as h:
            url = h.mm.url.replace("http", "ws") + "/api/v4/websocket"
            ws = await h.session.ws_connect(url, headers={"Authorization": "Bearer wrong"})
            probe = WsProbe(ws)
            await probe.send({"seq": 1, "action": "ping"})  # unregistered: no answer
            assert await probe.closed(timeout=2)
            assert h.mm.stats.ws_auth_failures == 1

    run(body())


def test_authentication_challenge_registers_with_hello_and_ok() -> None:
    """A token-less socket authenticates by challenge and gets hello and the OK reply."""

    async def body() -> None:
        async with open_harness() as h:
            probe = await h.ws(None)
            assert await probe.silent(0.1)
            await probe.send(
                {"seq": 1, "action": "authentication_challenge", "data": {"token": h.mm.bot.token}}
            )
            frames = [await probe.next(), await probe.next()]
            hello = next(f for f in frames if f.get("event") == "hello")
            assert hello["seq"] == 0
            assert hello["broadcast"]["user_id"] == h.mm.bot.id
            assert {"status": "OK", "seq_reply": 1} in frames

    run(body())


def test_bad_challenge_token_closes_the_socket() -> None:
    """A challenge with an unknown (or missing) token closes the socket without a reply."""

    async def body() -> None:
        async with open_harness() as h:
            for data in ({"token": "nope"}, {}):
                probe = await h.ws(None)
                await probe.send({"seq": 1, "action": "authentication_challenge", "data": data})
                assert await probe.closed()

    run(body())


def test_challenge_on_authenticated_socket_is_ignored() -> None:
    """A second authentication gets no response at all; the next request is answered normally."""

    async def body() -> None:
        async with open_harness() as h:
            probe, _ = await hello_of(h)
            await probe.send(
                {"seq": 1, "action": "authentication_challenge", "data": {"token": h.mm.bot.token}}
            )
            await probe.send({"seq": 2, "action": "ping"})
            reply = await probe.next()
            assert reply["seq_reply"] == 2
            assert reply["status"] == "OK"

    run(body())


def test_query_string_token_is_refused_before_upgrade() -> None:
    """?access_token= with a bot token is a 401 token_provided before the upgrade."""

    async def body() -> None:
        async with open_harness() as h:
            url = (
                h.mm.url.replace("http", "ws") + f"/api/v4/websocket?access_token={h.mm.bot.token}"
            )
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await h.session.ws_connect(url)
            assert info.value.status == 401

    run(body())


def test_posted_reaches_members_and_author_not_outsiders() -> None:
    """posted goes to every member's sockets (the author too), never to non-members."""

    async def body() -> None:
        async with open_harness() as h:
            bot, _ = await hello_of(h)
            alice, _ = await hello_of(h, "alice")
            outsider, _ = await hello_of(h, "outsider")
            post = await h.mm.post_as("alice", "hello all")
            for probe in (bot, alice):
                event = await probe.next_event("posted")
                assert json.loads(event["data"]["post"])["id"] == post["id"]
            assert await outsider.silent(0.2)

    run(body())


def test_posted_data_shape_and_mentions_only_for_the_mentioned() -> None:
    """posted data has the documented keys, post as a JSON string, mentions only for the target."""

    async def body() -> None:
        async with open_harness() as h:
            bot, _ = await hello_of(h)
            bob, _ = await hello_of(h, "bob")
            post = await h.mm.post_as("alice", "@claudebot please look")
            event = await bot.next_event("posted")
            data = event["data"]
            assert isinstance(data["post"], str)
            decoded = json.loads(data["post"])
            assert decoded["id"] == post["id"]
            assert decoded["pending_post_id"] != ""
            assert data["channel_type"] == "O"
            assert data["channel_name"] == "town-square"
            assert data["channel_display_name"] == "Town Square"
            assert data["sender_name"] == "@alice"
            assert data["set_online"] is True
            assert data["team_id"] == h.mm.team.id
            assert json.loads(data["mentions"]) == [h.mm.bot.id]
            assert event["broadcast"]["channel_id"] == h.mm.channel.id
            assert event["broadcast"]["omit_users"] is None
            assert "mentions" not in (await bob.next_event("posted"))["data"]

    run(body())


def test_bot_sees_its_own_rest_post_with_pending_post_id() -> None:
    """The author's own socket gets posted, echoing pending_post_id and from_bot."""

    async def body() -> None:
        async with open_harness() as h:
            bot, _ = await hello_of(h)
            fields = {"channel_id": h.mm.channel.id, "message": "mine", "pending_post_id": "p:1"}
            assert (await h.rest().post("/api/v4/posts", fields)).status == 201
            post = json.loads((await bot.next_event("posted"))["data"]["post"])
            assert post["pending_post_id"] == "p:1"
            assert post["props"]["from_bot"] == "true"

    run(body())


def test_seq_is_per_connection() -> None:
    """Each connection numbers its own events from 0 with no gaps."""

    async def body() -> None:
        async with open_harness() as h:
            first, _ = await hello_of(h)
            await h.mm.post_as("alice", "one")
            second, _ = await hello_of(h)
            await h.mm.post_as("alice", "two")
            assert [(await first.next())["seq"], (await first.next())["seq"]] == [1, 2]
            assert (await second.next())["seq"] == 1

    run(body())


def test_edit_delete_and_reaction_events() -> None:
    """post_edited, post_deleted (sanitized) and reaction_added/removed carry JSON strings."""

    async def body() -> None:
        async with open_harness() as h:
            bot, _ = await hello_of(h)
            post = await h.mm.post_as("alice", "v1")
            await bot.next_event("posted")
            await h.mm.patch_as("alice", post["id"], "v2")
            edited = await bot.next_event("post_edited")
            assert json.loads(edited["data"]["post"])["message"] == "v2"
            await h.mm.react_as("alice", post["id"], "smile")
            added = await bot.next_event("reaction_added")
            assert json.loads(added["data"]["reaction"])["emoji_name"] == "smile"
            path = f"/api/v4/users/{h.mm.users['alice'].id}/posts/{post['id']}/reactions/smile"
            assert (await h.rest("alice").delete(path)).status == 200
            removed = await bot.next_event("reaction_removed")
            assert json.loads(removed["data"]["reaction"])["post_id"] == post["id"]
            await h.mm.delete_as("alice", post["id"])
            deleted = await bot.next_event("post_deleted")
            assert json.loads(deleted["data"]["post"])["id"] == post["id"]
            assert deleted["broadcast"]["contains_sanitized_data"] is True

    run(body())


def test_typing_event_omits_the_typer() -> None:
    """REST typing and the user_typing action reach others with omit_users, not the typer."""

    async def body() -> None:
        async with open_harness() as h:
            bot, _ = await hello_of(h)
            alice, _ = await hello_of(h, "alice")
            fields = {"channel_id": h.mm.channel.id, "parent_id": "p" * 26}
            await h.rest("alice").post("/api/v4/users/me/typing", fields)
            typing = await bot.next_event("typing")
            assert typing["data"] == {"parent_id": "p" * 26, "user_id": h.mm.users["alice"].id}
            assert typing["broadcast"]["omit_users"] == {h.mm.users["alice"].id: True}
            await bot.send({"seq": 5, "action": "user_typing", "data": fields})
            assert await bot.next() == {"status": "OK", "seq_reply": 5}
            assert (await alice.next_event("typing"))["data"]["user_id"] == h.mm.bot.id
            assert await bot.silent(0.1)

    run(body())


def test_action_responses_and_errors() -> None:
    """ping answers pong; bad seq, no action, unknown action and bad typing give FAIL replies."""

    async def body() -> None:
        async with open_harness() as h:
            probe, _ = await hello_of(h)
            await probe.send({"seq": 1, "action": "ping", "data": {}})
            pong = await probe.next()
            assert pong["status"] == "OK"
            assert pong["seq_reply"] == 1
            assert pong["data"]["text"] == "pong"
            assert "seq" not in pong
            cases: list[tuple[dict[str, Any], str, int]] = [
                ({"seq": 0, "action": "ping"}, "api.web_socket_router.bad_seq.app_error", 400),
                ({"seq": 2}, "api.web_socket_router.no_action.app_error", 400),
                ({"seq": 3, "action": "dance"}, "api.web_socket_router.bad_action.app_error", 500),
                (
                    {"seq": 4, "action": "user_typing", "data": {"channel_id": "x"}},
                    "api.websocket_handler.invalid_param.app_error",
                    400,
                ),
            ]
            for frame, error_id, status in cases:
                await probe.send(frame)
                reply = await probe.next()
                assert reply["status"] == "FAIL"
                assert reply["seq_reply"] == frame["seq"]
                assert reply["error"]["id"] == error_id
                assert reply["error"]["status_code"] == status

    run(body())


def test_msgpack_binary_request_is_decoded() -> None:
    """Binary frames are msgpack requests, as on the real server."""

    async def body() -> None:
        async with open_harness() as h:
            probe, _ = await hello_of(h)
            await probe.ws.send_bytes(msgspec.msgpack.encode({"seq": 7, "action": "ping"}))
            assert (await probe.next())["seq_reply"] == 7

    run(body())


def test_undecodable_frame_closes_the_socket() -> None:
    """A text frame that is not a JSON request closes the connection."""

    async def body() -> None:
        async with open_harness() as h:
            for frame in ("not json", "[1, 2]", '{"seq": "one", "action": "ping"}'):
                probe, _ = await hello_of(h)
                await probe.ws.send_str(frame)
                assert await probe.closed(), frame

    run(body())


def test_frame_over_8192_bytes_closes_but_8192_is_fine() -> None:
    """A request up to 8192 bytes is served; one byte more kills the connection."""

    async def body() -> None:
        async with open_harness() as h:
            probe, _ = await hello_of(h)
            frame = '{"seq": 1, "action": "ping", "data": {"pad": "%s"}}'
            fits = frame % ("x" * (8192 - len(frame % "")))
            assert len(fits.encode()) == 8192
            await probe.ws.send_str(fits)
            assert (await probe.next())["seq_reply"] == 1
            await probe.ws.send_str(fits[:-2] + 'x"}}')
            assert await probe.closed()

    run(body())


def test_server_sends_ping_frames() -> None:
    """The server PINGs at the configured interval (60 s by default)."""

    async def body() -> None:
        async with open_harness(ping_interval_s=0.2) as h:
            probe = await h.ws(autoping=False)
            await probe.next()  # hello
            msg = await probe.raw(timeout=2)
            assert msg.type == aiohttp.WSMsgType.PING

    run(body())


def test_server_pings_even_while_the_client_talks() -> None:
    """PINGs keep their interval while requests flow, and answered PINGs keep the socket."""

    async def body() -> None:
        async with open_harness(ping_interval_s=0.2) as h:
            probe = await h.ws(autoping=False)
            await probe.next()  # hello
            pings = 0
            loop = asyncio.get_running_loop()
            end = loop.time() + 0.9
            while loop.time() < end:
                await probe.send({"seq": 1, "action": "ping"})
                msg = await probe.raw(timeout=1)
                if msg.type == aiohttp.WSMsgType.PING:
                    pings += 1
                    await probe.ws.pong(msg.data)
                else:
                    assert msg.type == aiohttp.WSMsgType.TEXT
                await asyncio.sleep(0.02)
            assert pings >= 3
            assert not probe.ws.closed

    run(body())


def test_peer_without_pongs_is_dropped_after_the_pong_wait() -> None:
    """A client that never answers PINGs is dropped once 100/60 of the interval passes."""

    async def body() -> None:
        async with open_harness(ping_interval_s=0.2) as h:
            probe = await h.ws(autoping=False)
            await probe.next()
            start = asyncio.get_running_loop().time()
            while True:
                msg = await probe.raw(timeout=2)
                if msg.type != aiohttp.WSMsgType.PING:
                    break
            assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
            assert asyncio.get_running_loop().time() - start >= 0.3

    run(body())


def test_client_ping_frames_are_answered() -> None:
    """A client PING control frame gets a PONG."""

    async def body() -> None:
        async with open_harness() as h:
            probe = await h.ws(autoping=False)
            await probe.next()
            await probe.ws.ping(b"hi")
            msg = await probe.raw(timeout=2)
            assert msg.type == aiohttp.WSMsgType.PONG
            assert msg.data == b"hi"

    run(body())


def test_odd_requests_get_answers_or_a_close_never_a_crash() -> None:
    """Wrongly typed action data gets FAIL replies; an out-of-range seq closes the socket."""

    async def body() -> None:
        async with open_harness() as h:
            probe = await h.ws()
            await probe.next()
            for data in ({"user_ids": "x"}, {"user_ids": [1, {}, None]}):
                await probe.send({"seq": 1, "action": "get_statuses_by_ids", "data": data})
                assert (await probe.next())["seq_reply"] == 1
            await probe.send({"seq": 1, "action": "user_typing", "data": {"channel_id": 5}})
            assert (await probe.next())["status"] == "FAIL"
            await probe.ws.send_str('{"seq": 99999999999999999999999, "action": "ping"}')
            assert await probe.closed()
            assert (await (await h.ws()).next())["event"] == "hello"

    run(body())
