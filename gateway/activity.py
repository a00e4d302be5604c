"""One activity post per long turn (MMCLAUDE_LIVE), edited at most once a second.

The worker sends :class:`protocol.Activity` views while a turn runs (from 2 s on); this keeps
only the latest view per prompt and shows it: the first one creates the post (a reply with
``props.mmclaude_activity_for`` = the prompt's id, never ``mmclaude_reply_to``, so it is never
taken for an answer), later ones edit it. Views that come faster are coalesced; a failed call
is simply superseded by the next view; a 429 pushes the next call back by its Retry-After.
This loop never delays an answer: answers are posted by their own task.

When the answer is posted, :meth:`ActivityPosts.finish` reduces the post to the summary line
the answer carries. After a restart the post is found again in the thread by its props, so a
turn never gets a second one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from loguru import logger

from gateway.errors import AuthError, MattermostError, RateLimitedError
from gateway.prompts import Lru

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping, Sequence

    from gateway.models import Post
    from protocol import Activity

__all__ = ["ACTIVITY_PROP", "EDIT_EVERY_S", "ActivityClient", "ActivityPosts"]

ACTIVITY_PROP = "mmclaude_activity_for"
EDIT_EVERY_S = 1.0
SHOW_AFTER_S = 2.0  # contract: a turn longer than 2 s gets an activity post
MAX_FINAL_FAILURES = 8  # then the summary edit is dropped (the answer is posted anyway)
TICK_S = 0.05


class ActivityClient(Protocol):
    """What this needs of :class:`gateway.mattermost.MattermostClient`."""

    def thread_after(
        self, thread_id: str, create_at: int, *, forbidden: str = ""
    ) -> AsyncIterator[list[Post]]: ...

    async def create_post(
        self,
        *,
        channel_id: str,
        message: str,
        root_id: str = "",
        props: Mapping[str, object] | None = None,
        pending_post_id: str = "",
        file_ids: Sequence[str] = (),
    ) -> Post: ...

    async def patch_post(
        self, post_id: str, *, message: str, props: Mapping[str, object] | None = None
    ) -> Post: ...


@dataclass
class _Turn:
    post_id: str
    create_at: int
    reply_id: str | None = None
    looked_up: bool = False
    text: str | None = None  # the newest view not shown yet
    final: str | None = None  # the summary line, once the answer is posted
    next_at: float = 0.0  # earliest next Mattermost call for this post
    failures: int = 0

    def has_work(self) -> bool:
        return self.text is not None or self.final is not None


class ActivityPosts:
    """The activity posts this gateway keeps, keyed by prompt post id."""

    def __init__(
        self,
        client: ActivityClient,
        where: Callable[[], tuple[str, str, str]],
        *,
        edit_every: float = EDIT_EVERY_S,
    ) -> None:
        self.client = client
        self.where = where  # (bot id, channel id, thread id)
        self.edit_every = edit_every
        self.turns: dict[str, _Turn] = {}
        self.finished = Lru()  # prompts whose activity post is settled
        self.calls = 0  # Mattermost calls made (for benchmarks and tests)
        self._wake = asyncio.Event()

    def __len__(self) -> int:
        return len(self.turns)

    def view(self, activity: Activity) -> None:
        """A view of a running turn: only the latest one counts."""
        if activity.post_id in self.finished or activity.elapsed_s < SHOW_AFTER_S:
            return
        turn = self.turns.get(activity.post_id)
        if turn is None:
            turn = self.turns[activity.post_id] = _Turn(activity.post_id, activity.create_at)
        if turn.final is None:
            turn.text = activity.text
            self._wake.set()

    def finish(self, post_id: str, create_at: int, summary: str) -> None:
        """The answer is posted: reduce the activity post (if there is one) to ``summary``."""
        if post_id in self.finished:
            return
        turn = self.turns.get(post_id)
        if turn is None:
            turn = self.turns[post_id] = _Turn(post_id, create_at)
        turn.final, turn.text = summary, None  # at the edit cadence too: never 2 edits in 1 s
        self._wake.set()

    async def run(self) -> None:
        while True:
            now = time.monotonic()
            due = [t for t in self.turns.values() if t.has_work() and now >= t.next_at]
            for turn in due:
                await self._step(turn)
            if not due:
                self._wake.clear()
                waits = [t.next_at - now for t in self.turns.values() if t.has_work()]
                timeout = max(TICK_S, min(waits)) if waits else None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)

    def _settle(self, turn: _Turn) -> None:
        self.turns.pop(turn.post_id, None)
        self.finished.remember(turn.post_id)

    async def _step(self, turn: _Turn) -> None:
        text, final = turn.text, turn.final
        turn.text = None
        log = logger.bind(post_id=turn.post_id)
        try:
            if turn.reply_id is None and not turn.looked_up:
                turn.reply_id = await self._find(turn)
                turn.looked_up = True
            if final is not None:
                if turn.reply_id is not None:
                    await self._patch(turn.reply_id, final)
                    log.bind(reply_id=turn.reply_id).info("activity.finished")
                self._settle(turn)
                return
            if text is None:
                return
            if turn.reply_id is None:
                turn.reply_id = await self._create(turn, text)
                log.bind(reply_id=turn.reply_id).info("activity.created")
            else:
                await self._patch(turn.reply_id, text)
                log.bind(reply_id=turn.reply_id, chars=len(text)).debug("activity.edited")
            turn.failures = 0
            turn.next_at = time.monotonic() + self.edit_every
        except AuthError:
            raise
        except MattermostError as exc:
            turn.failures += 1
            if turn.text is None and turn.final is None:
                turn.text = text  # nothing newer came: this view is still the one to show
            if isinstance(exc, RateLimitedError):
                delay = max(self.edit_every, exc.retry_after)
            else:
                delay = min(30.0, self.edit_every * 2 ** min(turn.failures, 5))
            turn.next_at = time.monotonic() + delay
            log.bind(status=exc.status, retry_s=round(delay, 2)).warning("activity.failed {}", exc)
            if final is not None and turn.failures >= MAX_FINAL_FAILURES:
                log.warning("activity.abandoned")
                self._settle(turn)

    async def _find(self, turn: _Turn) -> str | None:
        """The bot's activity post for this prompt already in the thread (after a restart)."""
        bot_id, _, thread_id = self.where()
        self.calls += 1
        async for posts in self.client.thread_after(thread_id, max(0, turn.create_at - 1)):
            for post in posts:
                if (
                    post.user_id == bot_id
                    and post.prop(ACTIVITY_PROP) == turn.post_id
                    and not post.delete_at
                ):
                    return post.id
        return None

    async def _create(self, turn: _Turn, text: str) -> str:
        _, channel_id, thread_id = self.where()
        self.calls += 1
        post = await self.client.create_post(
            channel_id=channel_id,
            root_id=thread_id,
            message=text,
            props={ACTIVITY_PROP: turn.post_id},
            pending_post_id=f"{turn.post_id}:activity",
        )
        return post.id

    async def _patch(self, reply_id: str, text: str) -> None:
        self.calls += 1
        await self.client.patch_post(reply_id, message=text)  # props stay as they are
