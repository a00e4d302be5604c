"""Which thread the worker serves: the one to propose (the configured one, or our root post in
the channel, found or made once) and ``ThreadBinder``, which proposes it until the worker's
``Welcome`` says it is bound as wanted (the operator's configuration wins over a remembered
binding).

A restart must never create a second thread: the root post carries the worker's stable
``bind_token`` in its props and a ``pending_post_id`` derived from it, so a retry (or a
second gateway racing this one) finds or gets back the post already made.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import TYPE_CHECKING

from loguru import logger

from gateway.errors import FatalError, NotFoundError
from protocol import BindThread
from protocol.backoff import Backoff

if TYPE_CHECKING:
    from gateway.bus import WorkerBus
    from gateway.config import GatewayConfig
    from gateway.mattermost import MattermostApi
    from gateway.models import Post
    from protocol import Welcome

__all__ = [
    "BIND_RESEND_CAP_S",
    "READY_MESSAGE",
    "ThreadBinder",
    "find_bind_post",
    "history_floor",
    "not_member",
    "propose_thread",
]

READY_MESSAGE = (
    "The Claude Code session is ready. Reply in this thread to talk to Claude; "
    "every reply gets an answer here."
)
BIND_SEARCH_PAGES = 50  # 10 000 channel posts: the bind post is recent; this only bounds it
PAGE_SIZE = 200
BIND_RESEND_CAP_S = 30.0


def not_member(channel_id: str) -> str:
    """The log text for a 403: what the operator must do."""
    return f"the bot is not a member of channel {channel_id}: add it to that channel"


async def propose_thread(
    client: MattermostApi, config: GatewayConfig, bot_id: str, token: str, *, started: int = 0
) -> tuple[str, str, int]:
    """``(thread_id, channel_id, floor)`` to propose to the worker with ``BindThread``.

    ``floor`` is the create_at (ms) up to which the thread's posts are history, never run:
    for a configured thread, its newest post made before ``started`` (the server's time, in
    ms, when this gateway started; a reply made since is not history), or just before
    ``since_post`` when the operator named one; for our own root post, 0 (every reply is
    newer than its root).
    """
    if config.thread_id:
        try:
            post = await client.call(
                "get the configured thread", lambda: client.get_post(config.thread_id)
            )
        except NotFoundError as exc:
            raise FatalError(f"MATTERMOST_THREAD_ID {config.thread_id} was not found") from exc
        # Seeing the post is proof enough; a 403 on posting later is logged and retried.
        thread_id = post.root_id or post.id
        floor = await history_floor(client, config, thread_id, started=started)
        return thread_id, post.channel_id, floor
    if not config.channel_id:
        raise FatalError("no thread is bound and MATTERMOST_CHANNEL_ID is not set")
    found = await find_bind_post(client, config.channel_id, bot_id, token)
    if found is not None:
        logger.info("bind.found", thread_id=found.id)
        return found.id, config.channel_id, 0
    post = await client.call(
        "create the thread's root post",
        lambda: client.create_post(
            channel_id=config.channel_id,
            message=READY_MESSAGE,
            props={"mmclaude_bind_token": token},
            pending_post_id=f"{bot_id}:{token}",
        ),
        forbidden=not_member(config.channel_id),
        recheck=lambda: find_bind_post(client, config.channel_id, bot_id, token),
    )
    logger.info("bind.created", thread_id=post.id, channel_id=post.channel_id)
    return post.id, post.channel_id or config.channel_id, 0


async def history_floor(
    client: MattermostApi, config: GatewayConfig, thread_id: str, *, started: int = 0
) -> int:
    """The create_at up to which an existing thread is history: just before the operator's
    ``since_post``, or the thread's newest post (paged to its end), but never a post made
    after ``started`` (ms, server time; 0: unknown): a reply made while the bot was starting
    is answered."""
    if config.since_post:
        try:
            since = await client.call(
                "get MMCLAUDE_SINCE_POST", lambda: client.get_post(config.since_post)
            )
        except NotFoundError as exc:
            raise FatalError(f"MMCLAUDE_SINCE_POST {config.since_post} was not found") from exc
        floor = max(0, since.create_at - 1)
        logger.info("bind.floor", since_post=since.id, floor=floor)
        return floor
    newest = 0
    async for posts in client.thread_after(thread_id, 0, forbidden=not_member(config.channel_id)):
        for post in posts:
            newest = max(newest, post.create_at)
    if not newest:  # no reply yet: the root's time
        root = await client.call("get the thread's root", lambda: client.get_post(thread_id))
        newest = root.create_at
    if started:
        newest = min(newest, started - 1)
    logger.info(
        "bind.floor", floor=newest, reason="older posts are the thread's history, never run"
    )
    return newest


async def find_bind_post(
    client: MattermostApi, channel_id: str, bot_id: str, token: str
) -> Post | None:
    """Our root post carrying ``token`` in the channel (made by an earlier attempt)."""
    for number in range(BIND_SEARCH_PAGES):
        page = await client.call(
            "search the channel for the bind post",
            functools.partial(client.channel_page, channel_id, page=number, per_page=PAGE_SIZE),
            forbidden=not_member(channel_id),
        )
        for post in page.posts.values():
            if (
                post.user_id == bot_id
                and not post.root_id
                and post.prop("mmclaude_bind_token") == token
            ):
                return post
        if len(page.order) < PAGE_SIZE:
            return None
    return None


class ThreadBinder:
    """Keeps the worker bound to the right thread: proposes one while it has none, and the
    configured one (``MATTERMOST_THREAD_ID``) while it serves another. Told of every
    ``Welcome`` (:meth:`welcomed`); :meth:`run` proposes once the bot is known."""

    def __init__(self, config: GatewayConfig, client: MattermostApi, bus: WorkerBus) -> None:
        self.config = config
        self.client = client
        self.bus = bus
        self.welcome: Welcome | None = None
        self._changed = asyncio.Event()
        self._log = logger.bind(gateway=config.gateway_id)

    def welcomed(self, welcome: Welcome) -> None:
        """The worker's newest word on its binding."""
        self.welcome = welcome
        self._changed.set()

    def _bound_as_wanted(self, wanted: str) -> bool:
        """True once the worker serves a thread (the configured one, ``wanted``, if any)."""
        bound = self.welcome.thread_id if self.welcome is not None else ""
        return bound == wanted if wanted else bool(bound)

    async def run(self, bot_id: str, started_ms: int) -> None:
        """Propose a thread while the worker has none, or while it serves another than the
        configured one. ``started_ms``: the server's time when this gateway started (0:
        unknown), the end of a configured thread's history."""
        configured = bool(self.config.thread_id)
        wanted: tuple[str, str, int] | None = None
        while True:
            await self._changed.wait()
            self._changed.clear()
            welcome = self.welcome
            if welcome is None or (welcome.thread_id and not configured):
                continue
            if configured and wanted is None and welcome.thread_id == self.config.thread_id:
                continue  # already bound to it: no need to page the thread for its floor
            if wanted is None or not configured:
                wanted = await propose_thread(
                    self.client, self.config, bot_id, welcome.bind_token, started=started_ms
                )
            thread_id, channel_id, floor = wanted
            target = thread_id if configured else ""
            if self._bound_as_wanted(target):
                continue
            if welcome.thread_id:
                self._log.warning(
                    "bind.replacing",
                    reason="the worker serves another thread than the configured one",
                    bound=welcome.thread_id,
                    configured=thread_id,
                )
            backoff = Backoff(initial=self.config.resend_interval, cap=BIND_RESEND_CAP_S)
            while not self._bound_as_wanted(target):
                self._log.info("bind.proposed", thread_id=thread_id, configured=configured)
                self.bus.send(
                    BindThread(
                        gateway_id=self.config.gateway_id,
                        thread_id=thread_id,
                        channel_id=channel_id,
                        bind_token=welcome.bind_token,
                        configured=configured,
                        floor=floor,
                    )
                )
                await self._await_binding(target, backoff.next())

    async def _await_binding(self, target: str, delay: float) -> None:
        """Every BindThread makes the worker send a Welcome: wait the whole ``delay`` (not
        just for the next Welcome) unless the binding is now as wanted."""
        deadline = time.monotonic() + delay
        while not self._bound_as_wanted(target):
            self._changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                async with asyncio.timeout(left):
                    await self._changed.wait()
            except TimeoutError:
                return
