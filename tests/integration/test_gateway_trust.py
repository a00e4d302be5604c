"""The gateway's trust boundary with real processes (emulator, worker, fake claude): a post no
decoder can hold never stops the bot, and a thread's history is never run again."""

from __future__ import annotations

import contextlib
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest

from tests.integration.test_gateway import Rig, run
from tests.support import async_wait_for

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.support import ProcessGroup

pytestmark = pytest.mark.slow


def nested(depth: int) -> Any:
    """A JSON value nested ``depth`` lists deep (``[[[...]]]``, 2 bytes a level)."""
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


@contextlib.contextmanager
def deep_recursion() -> Iterator[None]:
    """The emulator (in this process) serialises the deep props with the json module."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 30_000))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def test_a_post_nested_5000_deep_never_stops_the_bot(short_tmp: Path, procs: ProcessGroup) -> None:
    """A member who is not allowed replies with props nested 5000 deep (10 KB, valid for
    Mattermost), and posts the same at the channel's top level. msgspec raises
    RecursionError on it; the gateway used to crash on the event and on every catch-up.
    Allowed users are still answered, and after a restart whose catch-up reads that post."""

    async def scenario(rig: Rig) -> None:
        with deep_recursion():
            thread = await rig.thread()
            first = await rig.ask("before")
            await rig.answer(first["id"])
            bomb = {"x": nested(5000)}
            in_thread = await rig.mm.post_as("mallory", "boom", root_id=thread, props=bomb)
            in_channel = await rig.mm.post_as("mallory", "boom at the top", props=bomb)
            by_alice = await rig.mm.post_as("alice", "alice's bomb", root_id=thread, props=bomb)
            after = await rig.ask("after the bomb")
            assert "after the bomb" in (await rig.answer(after["id"]))[0]["message"]
            await async_wait_for(lambda: refusals(rig, in_thread["id"]), 20, "the refusal")
            before = len(refusals(rig, in_thread["id"]))
            rig.kill("g1")
            rig.start_gateway("g1")  # its catch-up pages through the bomb
            again = await rig.ask("after a restart")
            assert "after a restart" in (await rig.answer(again["id"]))[0]["message"]
            await async_wait_for(
                lambda: len(refusals(rig, in_thread["id"])) > before, 20, "read again, refused"
            )
            assert rig.gateways["g1"].poll() is None
            for post in (in_thread, in_channel, by_alice):
                assert rig.replies(post["id"]) == []
            rig.assert_answered_once(after["id"])

    run(scenario, short_tmp, procs)


def test_binding_an_old_thread_never_runs_its_history(short_tmp: Path, procs: ProcessGroup) -> None:
    """MATTERMOST_THREAD_ID names a thread with old replies by an allowed user: none of them
    runs, a new reply does. After the state dir is lost, nothing is answered again; an
    operator who opts in with MMCLAUDE_SINCE_POST gets the old, unanswered replies run, and
    the one already answered (a reply of ours with mmclaude_reply_to) still is not."""

    async def scenario(rig: Rig) -> None:
        mm = rig.mm
        root = await mm.post_as("bob", "an old thread")
        old = [
            await mm.post_as("alice", f"rm -rf build/ && deploy {i}", root_id=root["id"])
            for i in range(3)
        ]
        # The start is known to the second (the server's Date header): what was posted in
        # the second the bot starts may still run, so start in the next one.
        await async_wait_for(lambda: time.time() >= old[-1]["create_at"] / 1000 + 1, 5, "1 s")
        rig.start_worker()
        rig.start_gateway("g1", thread_id=root["id"])
        await _bound(rig, "g1")
        new = await mm.post_as("alice", "a new question", root_id=root["id"])
        await rig.answer(new["id"])

        # The state dir is lost: a new worker and gateway on an empty one.
        rig.procs.close()
        lost = Rig(mm, short_tmp / "b", rig.procs)
        lost.dir.mkdir()
        lost.start_worker()
        lost.start_gateway("g2", thread_id=root["id"])
        await _bound(lost, "g2")
        newer = await mm.post_as("alice", "after the loss", root_id=root["id"])
        await lost.answer(newer["id"])
        for post in [*old, new]:
            assert len(rig.replies(post["id"])) == (1 if post is new else 0)

        # Once more, opting in to the history from the first old reply on.
        lost.procs.close()
        again = Rig(mm, short_tmp / "c", rig.procs)
        again.dir.mkdir()
        again.start_worker()
        again.start_gateway("g3", thread_id=root["id"], since_post=old[0]["id"])
        for post in old:
            await again.answer(post["id"])
        rig.assert_answered_once(new["id"])
        assert len(rig.replies(new["id"])) == 1
        assert len(rig.replies(newer["id"])) == 1

    run(scenario, short_tmp, procs, start=False)


def refusals(rig: Rig, post_id: str) -> list[dict[str, Any]]:
    """The gateway's log lines refusing ``post_id`` as unreadable."""
    return [
        e
        for e in rig.events("g1", "post.ignored")
        if e.get("post_id") == post_id and str(e.get("reason", "")).startswith("unreadable")
    ]


async def _bound(rig: Rig, gateway_id: str) -> None:
    await async_wait_for(lambda: rig.events(gateway_id, "thread.bound"), 20, "the binding")
