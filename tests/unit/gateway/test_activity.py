"""The gateway's activity posts: one per turn, coalesced edits, failures superseded, 429 backs
off, found again after a restart, reduced to the summary, never recreated after it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

import pytest

from gateway.activity import ACTIVITY_PROP, ActivityPosts
from gateway.errors import RateLimitedError, ServerError
from gateway.models import Post
from protocol import Activity
from tests.support import async_wait_for

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence

BOT, CHANNEL, THREAD, PROMPT = "bot", "chan", "thread", "p" * 26


class FakeClient:
    """An in-memory thread; `fail` holds errors to raise on the next create/patch calls."""

    def __init__(self) -> None:
        self.posts: dict[str, Post] = {}
        self.calls: list[tuple[str, str]] = []  # (kind, message)
        self.call_times: list[float] = []  # monotonic, at each create/patch
        self.fail: list[Exception] = []
        self.lookups = 0

    def _maybe_fail(self) -> None:
        if self.fail:
            raise self.fail.pop(0)

    async def thread_after(
        self, thread_id: str, create_at: int, *, forbidden: str = ""
    ) -> AsyncIterator[list[Post]]:
        self.lookups += 1
        yield list(self.posts.values())

    async def create_post(
        self,
        *,
        channel_id: str,
        message: str,
        root_id: str = "",
        props: Mapping[str, object] | None = None,
        pending_post_id: str = "",
        file_ids: Sequence[str] = (),
    ) -> Post:
        self.calls.append(("create", message))
        self.call_times.append(time.monotonic())
        self._maybe_fail()
        post = Post(
            id=f"r{len(self.posts)}",
            user_id=BOT,
            root_id=root_id,
            message=message,
            props=dict(props or {}),
        )
        self.posts[post.id] = post
        return post

    async def patch_post(
        self, post_id: str, *, message: str, props: Mapping[str, object] | None = None
    ) -> Post:
        self.calls.append(("patch", message))
        self.call_times.append(time.monotonic())
        self._maybe_fail()
        self.posts[post_id].message = message
        return self.posts[post_id]

    def activity_messages(self) -> list[str]:
        return [p.message for p in self.posts.values() if p.prop(ACTIVITY_PROP) == PROMPT]


def view(text: str, elapsed: float = 3.0, seq: int = 1) -> Activity:
    return Activity(post_id=PROMPT, create_at=1, text=text, elapsed_s=elapsed, seq=seq)


@contextlib.asynccontextmanager
async def running(client: FakeClient, edit_every: float = 0.05) -> AsyncIterator[ActivityPosts]:
    posts = ActivityPosts(client, lambda: (BOT, CHANNEL, THREAD), edit_every=edit_every)
    task = asyncio.create_task(posts.run())
    try:
        yield posts
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 20))


def test_views_are_coalesced_into_one_post_showing_the_latest() -> None:
    async def body() -> None:
        client = FakeClient()
        async with running(client, edit_every=0.5) as posts:
            for i in range(50):
                posts.view(view(f"view {i}", seq=i))
            await async_wait_for(
                lambda: client.activity_messages() == ["view 49"], 10, "the latest view shown"
            )
            # 50 views, one post: at most the create and an edit or two, never 50 calls.
            assert len(client.activity_messages()) == 1
            assert len(client.calls) <= 3

    run(body())


def test_edits_and_the_summary_keep_the_cadence() -> None:
    """However fast views come, creates and edits (the summary too) are >= edit_every apart."""

    async def body() -> None:
        client = FakeClient()
        async with running(client, edit_every=0.2) as posts:
            for i in range(30):
                posts.view(view(f"view {i}", seq=i))
                await asyncio.sleep(0.02)
            posts.finish(PROMPT, 1, "✅ done")
            await async_wait_for(lambda: client.activity_messages() == ["✅ done"], 10, "done")
        gaps = [b - a for a, b in zip(client.call_times, client.call_times[1:], strict=False)]
        assert len(client.call_times) >= 3
        assert min(gaps) >= 0.2 - 1e-6  # float rounding of the sums only

    run(body())


def test_under_two_seconds_no_call_and_no_post() -> None:
    async def body() -> None:
        client = FakeClient()
        async with running(client) as posts:
            posts.view(view("early", elapsed=1.5))
            assert len(posts) == 0
            await asyncio.sleep(0)
        assert client.calls == []
        assert client.lookups == 0

    run(body())


def test_a_failed_edit_is_superseded_and_a_429_backs_off() -> None:
    async def body() -> None:
        client = FakeClient()
        async with running(client) as posts:
            posts.view(view("one"))
            await async_wait_for(lambda: client.activity_messages() == ["one"], 5, "created")
            client.fail = [ServerError("boom", status=500)]
            posts.view(view("two"))
            await async_wait_for(lambda: ("patch", "two") in client.calls, 5, "failed edit")
            posts.view(view("three"))
            await async_wait_for(lambda: client.activity_messages() == ["three"], 5, "three")
            client.fail = [RateLimitedError("slow down", retry_after=0.3)]
            posts.view(view("four"))
            await async_wait_for(lambda: client.activity_messages() == ["four"], 5, "four")
            assert [c for c in client.calls if c[1] == "four"] == [("patch", "four")] * 2
            assert len(client.activity_messages()) == 1

    run(body())


def test_after_a_restart_the_existing_post_is_continued() -> None:
    async def body() -> None:
        client = FakeClient()
        client.posts["old"] = Post(
            id="old", user_id=BOT, root_id=THREAD, message="before", props={ACTIVITY_PROP: PROMPT}
        )
        async with running(client) as posts:
            posts.view(view("after the restart"))
            await async_wait_for(
                lambda: client.posts["old"].message == "after the restart", 5, "continued"
            )
        assert [kind for kind, _ in client.calls] == ["patch"]

    run(body())


def test_finish_reduces_the_post_and_late_views_are_ignored() -> None:
    async def body() -> None:
        client = FakeClient()
        async with running(client) as posts:
            posts.view(view("working"))
            await async_wait_for(lambda: client.activity_messages() == ["working"], 5, "shown")
            posts.finish(PROMPT, 1, "✅ Done in 3.0 s · 0 tool calls")
            await async_wait_for(
                lambda: client.activity_messages() == ["✅ Done in 3.0 s · 0 tool calls"],
                5,
                "reduced",
            )
            posts.view(view("late view", seq=99))
            assert len(posts) == 0
        assert len(client.activity_messages()) == 1

    run(body())


@pytest.mark.parametrize("in_thread", [False, True])
def test_finish_without_a_known_post_creates_none(in_thread: bool) -> None:
    async def body() -> None:
        client = FakeClient()
        if in_thread:
            client.posts["old"] = Post(
                id="old", user_id=BOT, root_id=THREAD, message="x", props={ACTIVITY_PROP: PROMPT}
            )
        async with running(client) as posts:
            posts.finish(PROMPT, 1, "✅ done")
            await async_wait_for(lambda: PROMPT in posts.finished, 5, "settled")
        assert all(kind != "create" for kind, _ in client.calls)
        assert client.activity_messages() == (["✅ done"] if in_thread else [])

    run(body())
