"""Fault injection, the /_admin API and the event log of the Mattermost emulator."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from emulators.mattermost.testing import Harness, RestClient, open_harness, run

pytestmark = pytest.mark.slow


def post_body(h: Harness, message: str = "hi") -> dict[str, Any]:
    return {"channel_id": h.mm.channel.id, "message": message}


def admin(h: Harness) -> RestClient:
    return RestClient(h.session, h.mm.url, None)


def test_drop_sockets_cuts_every_socket() -> None:
    """drop_sockets() ends authenticated and unauthenticated sockets alike."""

    async def body() -> None:
        async with open_harness() as h:
            bot = await h.ws()
            await bot.next()
            anonymous = await h.ws(None)
            assert h.mm.drop_sockets() == 2
            assert await bot.closed()
            assert await anonymous.closed()

    run(body())


def test_refuse_sockets_answers_503_for_a_while() -> None:
    """While refusing, upgrades get a 503 AppError; afterwards sockets connect again."""

    async def body() -> None:
        async with open_harness() as h:
            h.mm.refuse_sockets(0.3)
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await h.ws()
            assert info.value.status == 503
            plain = await h.rest().get("/api/v4/websocket")
            assert plain.status == 503
            assert plain.json()["request_id"] == plain.headers["X-Request-Id"]
            await asyncio.sleep(0.35)
            assert (await (await h.ws()).next())["event"] == "hello"
            assert h.mm.stats.ws_refused == 2

    run(body())


def test_fail_posts_with_500_app_error() -> None:
    """The next N creates fail with a 500 AppError and create nothing; then creates work."""

    async def body() -> None:
        async with open_harness() as h:
            h.mm.fail_posts(2)
            for _ in range(2):
                reply = await h.rest().post("/api/v4/posts", post_body(h))
                assert reply.status == 500
                error = reply.json()
                assert error["status_code"] == 500
                assert error["request_id"] == reply.headers["X-Request-Id"]
            assert h.mm.posts() == []
            assert (await h.rest().post("/api/v4/posts", post_body(h))).status == 201

    run(body())


def test_fail_posts_with_429_plain_text() -> None:
    """An injected 429 is plain text `limit exceeded\\n` with Retry-After and X-Ratelimit-*."""

    async def body() -> None:
        async with open_harness() as h:
            h.mm.fail_posts(1, status=429, retry_after=2)
            reply = await h.rest().post("/api/v4/posts", post_body(h))
            assert reply.status == 429
            assert reply.text == "limit exceeded\n"
            assert reply.headers["Content-Type"].startswith("text/plain")
            assert reply.headers["Retry-After"] == "2"
            for name in ("X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset"):
                assert reply.headers[name].isdigit()
            assert h.mm.posts() == []

    run(body())


def test_fail_posts_after_create_loses_only_the_response() -> None:
    """after_create=True creates and broadcasts the post but answers 500."""

    async def body() -> None:
        async with open_harness() as h:
            probe = await h.ws()
            await probe.next()
            h.mm.fail_posts(1, after_create=True)
            reply = await h.rest().post("/api/v4/posts", post_body(h, "ghost"))
            assert reply.status == 500
            assert [p["message"] for p in h.mm.posts()] == ["ghost"]
            event = await probe.next_event("posted")
            assert json.loads(event["data"]["post"])["message"] == "ghost"

    run(body())


def test_post_as_is_not_affected_by_injected_failures() -> None:
    """Scripted human posts bypass fail_posts, which targets the client under test."""

    async def body() -> None:
        async with open_harness() as h:
            h.mm.fail_posts(1)
            await h.mm.post_as("alice", "still works")
            assert (await h.rest().post("/api/v4/posts", post_body(h))).status == 500

    run(body())


def test_latency_delays_rest_requests() -> None:
    """set_latency() delays every REST request by at least that long (no upper bound is
    judged: a busy machine may be slow), and 0 switches it off."""

    async def body() -> None:
        async with open_harness() as h:
            h.mm.set_latency(0.3)
            start = time.monotonic()
            assert (await h.rest().get("/api/v4/users/me")).status == 200
            assert time.monotonic() - start >= 0.3
            h.mm.set_latency(0)
            assert (await h.rest().get("/api/v4/users/me")).status == 200

    run(body())


def test_garbage_frame_reaches_every_socket() -> None:
    """send_garbage_frame() writes a non-JSON text frame to each open socket."""

    async def body() -> None:
        async with open_harness() as h:
            probe = await h.ws()
            await probe.next()
            assert await h.mm.send_garbage_frame() == 1
            msg = await probe.raw()
            assert msg.type == aiohttp.WSMsgType.TEXT
            with pytest.raises(ValueError):
                json.loads(msg.data)

    run(body())


def test_rate_limit_gcra_headers_and_plain_429() -> None:
    """With rate limiting on, burst+1 requests pass with headers, then a plain-text 429."""

    async def body() -> None:
        async with open_harness() as h:
            h.mm.set_rate_limit(True, per_sec=1, burst=2)
            remaining = []
            for _ in range(3):
                reply = await h.rest().get("/api/v4/users/me")
                assert reply.status == 200
                assert reply.headers["X-Ratelimit-Limit"] == "3"
                remaining.append(int(reply.headers["X-Ratelimit-Remaining"]))
            assert remaining == sorted(remaining, reverse=True)
            assert remaining[-1] == 0
            limited = await h.rest().get("/api/v4/users/me")
            assert limited.status == 429
            assert limited.text == "limit exceeded\n"
            assert int(limited.headers["Retry-After"]) >= 1
            assert (await h.rest("alice").get("/api/v4/users/me")).status == 200  # per token
            h.mm.set_rate_limit(False)
            reply = await h.rest().get("/api/v4/users/me")
            assert reply.status == 200
            assert "X-Ratelimit-Limit" not in reply.headers

    run(body())


def test_wait_for_post_and_post_timings() -> None:
    """wait_for_post resolves on a later post and times out bounded; timings are ordered."""

    async def body() -> None:
        async with open_harness() as h:
            probe = await h.ws()
            await probe.next()

            async def later() -> None:
                await asyncio.sleep(0.05)
                await h.rest().post("/api/v4/posts", post_body(h, "needle"))

            task = asyncio.create_task(later())
            found = await h.mm.wait_for_post(lambda p: p["message"] == "needle", timeout=2)
            await task
            await probe.next_event("posted")
            timing = h.mm.post_timings[found["id"]]
            assert timing.created_at <= timing.broadcast_at
            assert timing.broadcast_at <= timing.delivered_at[h.mm.bot.id]
            with pytest.raises(TimeoutError):
                await h.mm.wait_for_post(lambda p: p["message"] == "never", timeout=0.1)

    run(body())


def test_admin_seed_describes_a_working_setup() -> None:
    """GET /_admin/seed gives url, team, channels, bot and users whose tokens work."""

    async def body() -> None:
        async with open_harness() as h:
            seed = (await admin(h).get("/_admin/seed")).json()
            assert seed["url"] == h.mm.url
            assert seed["bot"]["id"] == h.mm.bot.id
            assert seed["bot"]["is_bot"] is True
            assert set(seed["users"]) == {"alice", "bob", "mallory", "outsider", "otherbot"}
            assert seed["channel"]["id"] == h.mm.channel.id
            assert seed["other_channel"]["id"] == h.mm.other_channel.id
            assert seed["team"]["id"] == h.mm.team.id
            client = RestClient(h.session, seed["url"], seed["users"]["bob"]["token"])
            assert (await client.get("/api/v4/users/me")).json()["username"] == "bob"

    run(body())


def test_admin_post_patch_delete_and_list() -> None:
    """The admin API acts as users (broadcasting posted) and lists posts with a deleted flag."""

    async def body() -> None:
        async with open_harness() as h:
            probe = await h.ws()
            await probe.next()
            api = admin(h)
            root = await api.post("/_admin/post", {"username": "alice", "message": "root"})
            assert root.status == 201
            root_id = root.json()["id"]
            await probe.next_event("posted")
            reply = await api.post(
                "/_admin/post", {"username": "bob", "message": "re", "root_id": root_id}
            )
            reply_id = reply.json()["id"]
            patched = await api.post(
                "/_admin/patch", {"username": "bob", "post_id": reply_id, "message": "re2"}
            )
            assert patched.json()["message"] == "re2"
            await api.post("/_admin/delete", {"username": "bob", "post_id": reply_id})
            live = (await api.get(f"/_admin/posts?root_id={root_id}")).json()
            assert [p["id"] for p in live] == [root_id]
            rows = (await api.get(f"/_admin/posts?root_id={root_id}&include_deleted=true")).json()
            assert {p["id"]: p["deleted"] for p in rows}[reply_id] is True
            assert (
                await api.post("/_admin/post", {"username": "nobody", "message": "x"})
            ).status == 404
            assert (await api.post("/_admin/post", {"message": "x"})).status == 400
            bad = await api.post("/_admin/post", {"username": "outsider", "message": "x"})
            assert bad.status == 403

    run(body())


def test_admin_fault_routes() -> None:
    """Every fault is reachable over /_admin/ with a JSON body."""

    async def body() -> None:
        async with open_harness() as h:
            api = admin(h)
            probe = await h.ws()
            await probe.next()
            assert (await api.post("/_admin/garbage_frame")).json() == {"sent": 1}
            assert (await probe.raw()).data == "}this is not JSON{"
            assert (await api.post("/_admin/drop_sockets")).json() == {"dropped": 1}
            assert await probe.closed()
            await api.post("/_admin/fail_posts", {"n": 1, "status": 429, "retry_after": 3})
            assert (await h.rest().post("/api/v4/posts", post_body(h))).status == 429
            await api.post("/_admin/latency", {"seconds": 0.2})
            start = time.monotonic()
            await h.rest().get("/api/v4/users/me")
            assert time.monotonic() - start >= 0.2
            await api.post("/_admin/latency", {"seconds": 0})
            await api.post("/_admin/rate_limit", {"enabled": True, "per_sec": 5, "burst": 7})
            assert (await h.rest().get("/api/v4/users/me")).headers["X-Ratelimit-Limit"] == "8"
            await api.post("/_admin/rate_limit", {"enabled": False})
            await api.post("/_admin/refuse_sockets", {"seconds": 5})
            with pytest.raises(aiohttp.WSServerHandshakeError):
                await h.ws()
            await api.post("/_admin/refuse_sockets", {"seconds": 0})
            fresh = await h.ws()
            await fresh.next()
            assert (await api.post("/_admin/restart_sockets")).status == 200
            assert await fresh.closed()
            stats = (await api.get("/_admin/stats")).json()
            assert stats["ws_refused"] == 1
            assert stats["post_failures_injected"] == 1
            assert (await api.post("/_admin/latency", {"seconds": "slow"})).status == 400
            assert (await api.get("/_admin/timings")).json() == []

    run(body())
