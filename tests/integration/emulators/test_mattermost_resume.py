"""WebSocket resumption (mattermost-protocol.md 1.6): replay, lossless, loss, expiry, overflow."""

from __future__ import annotations

import asyncio
import json

import pytest

from emulators.mattermost.testing import Harness, WsProbe, open_harness, run

pytestmark = pytest.mark.slow


async def connect(h: Harness, query: str = "") -> tuple[WsProbe, str]:
    probe = await h.ws("claudebot", query)
    hello = await probe.next()
    assert hello["event"] == "hello"
    assert hello["seq"] == 0
    return probe, hello["data"]["connection_id"]


async def drop(h: Harness, probe: WsProbe) -> None:
    assert h.mm.drop_sockets() >= 1
    assert await probe.closed()


def resume_query(connection_id: str, sequence_number: int) -> str:
    return f"?connection_id={connection_id}&sequence_number={sequence_number}"


def test_lossless_resume_continues_without_hello() -> None:
    """Resuming with the next expected seq delivers what was queued while away, no hello."""

    async def body() -> None:
        async with open_harness() as h:
            probe, conn_id = await connect(h)
            await h.mm.post_as("alice", "before")
            assert (await probe.next_event("posted"))["seq"] == 1
            await drop(h, probe)
            away = [await h.mm.post_as("alice", f"away {i}") for i in range(2)]
            resumed = await h.ws("claudebot", resume_query(conn_id, 2))
            frames = [await resumed.next(), await resumed.next()]
            assert [f["event"] for f in frames] == ["posted", "posted"]
            assert [f["seq"] for f in frames] == [2, 3]
            ids = [json.loads(f["data"]["post"])["id"] for f in frames]
            assert ids == [p["id"] for p in away]
            assert h.mm.stats.resumes_lossless == 1

    run(body())


def test_resume_replays_the_dead_queue_with_original_seqs() -> None:
    """A sequence_number still in the dead queue replays from there, keeping the seqs."""

    async def body() -> None:
        async with open_harness() as h:
            probe, conn_id = await connect(h)
            sent = []
            for i in range(3):
                await h.mm.post_as("bob", f"m{i}")
                sent.append(await probe.next_event("posted"))
            assert [f["seq"] for f in sent] == [1, 2, 3]
            await drop(h, probe)
            resumed = await h.ws("claudebot", resume_query(conn_id, 2))
            replay = [await resumed.next(), await resumed.next()]
            assert replay == sent[1:]
            await h.mm.post_as("bob", "after")
            assert (await resumed.next())["seq"] == 4
            assert h.mm.stats.resumes_replayed == 1

    run(body())


def test_too_far_behind_gets_a_new_hello_and_connection_id() -> None:
    """A sequence_number older than the dead queue yields a fresh hello with a new id."""

    async def body() -> None:
        async with open_harness(dead_queue_size=4) as h:
            probe, conn_id = await connect(h)
            for i in range(6):
                await h.mm.post_as("bob", f"m{i}")
                await probe.next_event("posted")
            await drop(h, probe)
            resumed = await h.ws("claudebot", resume_query(conn_id, 2))
            hello = await resumed.next()
            assert hello["event"] == "hello"
            assert hello["seq"] == 0
            assert hello["data"]["connection_id"] != conn_id
            await h.mm.post_as("bob", "next")
            assert (await resumed.next())["seq"] == 1
            assert h.mm.stats.resumes_lost == 1

    run(body())


def test_expired_connection_gets_a_new_hello() -> None:
    """After the (shortened) resume window the old id is unknown: new hello, new id."""

    async def body() -> None:
        async with open_harness(resume_window_s=0.2) as h:
            probe, conn_id = await connect(h)
            await drop(h, probe)
            await asyncio.sleep(0.3)
            resumed = await h.ws("claudebot", resume_query(conn_id, 1))
            hello = await resumed.next()
            assert hello["event"] == "hello"
            assert hello["data"]["connection_id"] != conn_id

    run(body())


def test_unknown_connection_id_gets_a_new_hello() -> None:
    """A well-formed but unknown connection_id registers a fresh connection."""

    async def body() -> None:
        async with open_harness() as h:
            probe = await h.ws("claudebot", resume_query("a" * 26, 5))
            hello = await probe.next()
            assert hello["event"] == "hello"
            assert hello["data"]["connection_id"] != "a" * 26

    run(body())


def test_send_queue_overflow_while_away_removes_the_connection() -> None:
    """More events than the send queue holds while away: the connection is gone on return."""

    async def body() -> None:
        async with open_harness(send_queue_size=5) as h:
            probe, conn_id = await connect(h)
            await drop(h, probe)
            for i in range(6):
                await h.mm.post_as("bob", f"m{i}")
            assert h.mm.stats.connections_overflowed == 1
            resumed = await h.ws("claudebot", resume_query(conn_id, 1))
            hello = await resumed.next()
            assert hello["event"] == "hello"
            assert hello["data"]["connection_id"] != conn_id

    run(body())


def test_bad_resume_parameters_close_right_after_upgrade() -> None:
    """connection_id with a missing or non-int sequence_number, or a malformed id, is closed."""

    async def body() -> None:
        async with open_harness() as h:
            _, conn_id = await connect(h)
            for query in (
                f"?connection_id={conn_id}",
                f"?connection_id={conn_id}&sequence_number=abc",
                "?connection_id=short&sequence_number=1",
            ):
                probe = await h.ws("claudebot", query)
                assert await probe.closed(), query

    run(body())


def test_sequence_number_zero_with_known_id_just_continues() -> None:
    """sequence_number=0 with a found connection skips every check: no hello."""

    async def body() -> None:
        async with open_harness() as h:
            probe, conn_id = await connect(h)
            await drop(h, probe)
            await h.mm.post_as("bob", "queued")
            resumed = await h.ws("claudebot", resume_query(conn_id, 0))
            frame = await resumed.next()
            assert frame["event"] == "posted"
            assert frame["seq"] == 1

    run(body())


def test_resume_after_a_client_close_is_lossless() -> None:
    """A clean client close also leaves the connection resumable."""

    async def body() -> None:
        async with open_harness() as h:
            probe, conn_id = await connect(h)
            await probe.close()
            await h.mm.post_as("bob", "queued")
            resumed = await h.ws("claudebot", resume_query(conn_id, 1))
            frame = await resumed.next()
            assert frame["event"] == "posted"
            assert frame["seq"] == 1

    run(body())


def test_resume_of_a_still_active_connection_starts_fresh() -> None:
    """Only inactive connections can be adopted: a live id gets a new hello."""

    async def body() -> None:
        async with open_harness() as h:
            _, conn_id = await connect(h)
            second = await h.ws("claudebot", resume_query(conn_id, 1))
            hello = await second.next()
            assert hello["event"] == "hello"
            assert hello["data"]["connection_id"] != conn_id

    run(body())


def test_restart_forgets_all_resumption_state() -> None:
    """restart_sockets() behaves like a server restart: resuming gets a new hello."""

    async def body() -> None:
        async with open_harness() as h:
            probe, conn_id = await connect(h)
            h.mm.restart_sockets()
            assert await probe.closed()
            resumed = await h.ws("claudebot", resume_query(conn_id, 1))
            hello = await resumed.next()
            assert hello["event"] == "hello"
            assert hello["data"]["connection_id"] != conn_id

    run(body())


def test_challenge_auth_never_resumes() -> None:
    """With challenge auth the server always allocates a new connection_id."""

    async def body() -> None:
        async with open_harness() as h:
            probe, conn_id = await connect(h)
            await drop(h, probe)
            plain = await h.ws(None, resume_query(conn_id, 1))
            await plain.send(
                {"seq": 1, "action": "authentication_challenge", "data": {"token": h.mm.bot.token}}
            )
            hello = await plain.next_event("hello")
            assert hello["data"]["connection_id"] != conn_id

    run(body())
