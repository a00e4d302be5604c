"""The gateway: binds the thread, turns thread posts into prompts for the worker and the
worker's answers into thread posts. Holds no durable state, so any number may run.

Every message that matters is re-sent until acknowledged (prompts until ``Accepted``; the
worker re-sends answers until ``Delivered``), and every effect on Mattermost is idempotent
(``pending_post_id``, a look in the thread before re-posting), so a SIGKILL at any point
neither loses a post nor answers one twice.
"""

from __future__ import annotations

import asyncio
import bisect
import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loguru import logger

from gateway.binding import not_member, propose_thread, resolve_allowlist
from gateway.bridge import (
    Allowlist,
    catchup_start,
    reject_reason,
)
from gateway.delivery import deliver
from gateway.errors import AuthError, MattermostError
from gateway.feed import follow
from gateway.models import Post, User
from protocol import (
    Accepted,
    Answer,
    BindThread,
    Delivered,
    GatewayHeartbeat,
    GatewayHello,
    Progress,
    Prompt,
    Welcome,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from gateway.bus import Bus
    from gateway.config import GatewayConfig
    from gateway.mattermost import MattermostClient

__all__ = ["Gateway"]

HELLO_INTERVAL_S = 1.0  # the worker forgets a gateway silent for ~5 s
TYPING_INTERVAL_S = 3.0
LRU_SIZE = 2048


@dataclass
class _Pending:
    prompt: Prompt
    sent_at: float  # monotonic time of the last send; negative: not sent yet


class _Lru(OrderedDict[str, tuple[str, ...]]):
    def remember(self, key: str, value: tuple[str, ...] = ()) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > LRU_SIZE:
            self.popitem(last=False)


class Gateway:
    """One gateway process's logic over a Mattermost client and the ZeroMQ bus."""

    def __init__(self, config: GatewayConfig, client: MattermostClient, bus: Bus) -> None:
        self.config = config
        self.client = client
        self.bus = bus
        self.bot = User(id="")
        self.allow = Allowlist()
        self.usernames: dict[str, str] = {}  # user id → username, for Prompt.username
        self.welcome: Welcome | None = None
        self.thread_id = ""
        self.channel_id = ""
        self.connected = False
        self.accepted_high = 0
        self.pending: dict[str, _Pending] = {}
        self._order: list[tuple[int, str]] = []  # pending keys in (create_at, post_id) order
        self.acked = _Lru()
        self.delivered = _Lru()
        self.in_delivery: set[str] = set()
        self.answers: asyncio.Queue[Answer] = asyncio.Queue()
        self.chores: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue()
        self.catchup_wanted = asyncio.Event()
        self.thread_ready = asyncio.Event()
        self.welcomed = asyncio.Event()
        self._last_typing = -TYPING_INTERVAL_S
        self._log = logger.bind(gateway=config.gateway_id)

    def __repr__(self) -> str:
        return (
            f"<Gateway {self.config.gateway_id} thread={self.thread_id or '-'} "
            f"connected={self.connected} pending={len(self.pending)} "
            f"delivering={len(self.in_delivery)}>"
        )

    # --- start ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until cancelled; raises AuthError or FatalError for what only an operator fixes."""
        self.bot = await self.client.call("get users/me", self.client.get_me)
        self._log.info("gateway.started", bot_id=self.bot.id, bot=self.bot.username)
        await self._resolve_allowlist()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._hello_loop())
            tasks.create_task(self._bus_loop())
            tasks.create_task(self._bind_loop())
            tasks.create_task(self._ws_loop())
            tasks.create_task(self._catchup_loop())
            tasks.create_task(self._delivery_loop())
            tasks.create_task(self._chores_loop())

    async def _resolve_allowlist(self) -> None:
        self.allow, names = await resolve_allowlist(self.client, self.config.allowed_users)
        self.usernames.update(names)
        self._log.info("allow.ready", everyone=self.allow.everyone, users=len(self.allow.user_ids))

    # --- the worker side --------------------------------------------------------------------

    async def _hello_loop(self) -> None:
        """Hello and heartbeat every second; prompts not yet accepted every resend interval."""
        hello = GatewayHello(
            gateway_id=self.config.gateway_id, endpoint=self.config.endpoint, pid=os.getpid()
        )
        tick = min(0.25, self.config.resend_interval)
        last_hello = -HELLO_INTERVAL_S
        while True:
            now = time.monotonic()
            if now - last_hello >= HELLO_INTERVAL_S:
                last_hello = now
                self.bus.send(hello)
                self.bus.heartbeat(
                    GatewayHeartbeat(
                        pid=os.getpid(),
                        gateway_id=self.config.gateway_id,
                        connected=self.connected,
                        thread_id=self.thread_id,
                    )
                )
            head = self._head()
            if head is not None and now - head.sent_at >= self.config.resend_interval:
                head.sent_at = now
                self.bus.send(head.prompt)
            await asyncio.sleep(tick)

    # Prompts go to the worker one at a time, oldest first (stop-and-wait): a later post is
    # never sent while an earlier one is unaccepted, so it cannot overtake one whose frame was
    # lost in a dying worker's pipe and reach claude first (answers keep the posts' order).

    def _head(self) -> _Pending | None:
        return self.pending[self._order[0][1]] if self._order else None

    def _pump(self) -> None:
        """Send the oldest unaccepted prompt if it has not been sent yet."""
        head = self._head()
        if head is not None and head.sent_at < 0:
            head.sent_at = time.monotonic()
            self.bus.send(head.prompt)

    async def _bus_loop(self) -> None:
        while True:
            message = await self.bus.receive(timeout=1.0)
            match message:
                case Welcome():
                    self._on_welcome(message)
                case Accepted():
                    self._on_accepted(message)
                case Answer():
                    self._on_answer(message)
                case Progress():
                    self._on_progress(message)
                case None:
                    pass

    def _on_welcome(self, welcome: Welcome) -> None:
        restarted = self.welcome is None or welcome.incarnation != self.welcome.incarnation
        self.welcome = welcome
        self.welcomed.set()
        if restarted:
            self._log.info(
                "bus.welcome",
                worker_pid=welcome.worker_pid,
                incarnation=welcome.incarnation,
                thread_id=welcome.thread_id,
                catch_up_from=welcome.catch_up_from,
                unacked=len(self.pending),
            )
            head = self._head()  # a new worker: re-send what it may lack, right away
            if head is not None:
                head.sent_at = -1.0
                self._pump()
            self.catchup_wanted.set()
        if welcome.thread_id and welcome.thread_id != self.thread_id:
            self.thread_id, self.channel_id = welcome.thread_id, welcome.channel_id
            self._log.info("thread.bound", thread_id=self.thread_id, channel_id=self.channel_id)
            self.thread_ready.set()
            self.catchup_wanted.set()

    def _on_accepted(self, accepted: Accepted) -> None:
        entry = self.pending.pop(accepted.post_id, None)
        self.acked.remember(accepted.post_id)
        if entry is not None:
            self._order.remove((entry.prompt.create_at, accepted.post_id))
            self.accepted_high = max(self.accepted_high, entry.prompt.create_at)
            self._pump()
        self._log.info("prompt.accepted", post_id=accepted.post_id, first=accepted.first)
        if accepted.first:
            self.chores.put_nowait(lambda: self._react(accepted.post_id))

    def _on_answer(self, answer: Answer) -> None:
        done = self.delivered.get(answer.post_id)
        if done is not None:
            self._send_delivered(answer.post_id, done)
            self._log.info("answer.redelivered", post_id=answer.post_id, parts=len(done))
        elif answer.post_id in self.in_delivery:
            self._log.debug("answer.duplicate", post_id=answer.post_id, attempt=answer.attempt)
        else:
            self.in_delivery.add(answer.post_id)
            self.answers.put_nowait(answer)
            self._log.info(
                "answer.received",
                post_id=answer.post_id,
                chars=len(answer.text),
                attempt=answer.attempt,
                is_error=answer.is_error,
            )

    def _on_progress(self, progress: Progress) -> None:
        now = time.monotonic()
        if self.thread_id and now - self._last_typing >= TYPING_INTERVAL_S:
            self._last_typing = now
            self.chores.put_nowait(self._typing)

    def _send_delivered(self, post_id: str, reply_ids: tuple[str, ...]) -> None:
        self.bus.send(
            Delivered(gateway_id=self.config.gateway_id, post_id=post_id, reply_ids=reply_ids)
        )

    # --- binding the thread ---------------------------------------------------------------

    async def _bind_loop(self) -> None:
        """While the worker has no thread: propose one, re-sending until a Welcome binds it."""
        while True:
            await self.welcomed.wait()
            self.welcomed.clear()
            welcome = self.welcome
            if welcome is None or welcome.thread_id:
                continue
            thread_id, channel_id = await propose_thread(
                self.client, self.config, self.bot.id, welcome.bind_token
            )
            while self.welcome is not None and not self.welcome.thread_id:
                self._log.info("bind.proposed", thread_id=thread_id, channel_id=channel_id)
                self.bus.send(
                    BindThread(
                        gateway_id=self.config.gateway_id,
                        thread_id=thread_id,
                        channel_id=channel_id,
                        bind_token=welcome.bind_token,
                    )
                )
                self.welcomed.clear()
                try:
                    async with asyncio.timeout(self.config.resend_interval):
                        await self.welcomed.wait()
                except TimeoutError:
                    pass

    # --- Mattermost → prompts ----------------------------------------------------------------

    async def _ws_loop(self) -> None:
        await self.thread_ready.wait()  # the filter needs the thread
        await follow(self.client, self, self.config.gateway_id)

    # FeedListener: what the WebSocket feed reports.

    def connected_changed(self, connected: bool) -> None:
        self.connected = connected

    def events_lost(self) -> None:
        self.catchup_wanted.set()

    def post_seen(self, post: Post, sender: str) -> None:
        if sender.startswith("@"):
            self.usernames.setdefault(post.user_id, sender[1:])
        self._consider(post, via="ws")

    def _consider(self, post: Post, *, via: str) -> None:
        reason = reject_reason(post, thread_id=self.thread_id, bot_id=self.bot.id, allow=self.allow)
        if reason is not None:
            self._log.debug("post.ignored", post_id=post.id, reason=reason, via=via)
            return
        if post.id in self.pending or post.id in self.acked:
            return
        prompt = Prompt(
            gateway_id=self.config.gateway_id,
            post_id=post.id,
            create_at=post.create_at,
            user_id=post.user_id,
            text=post.message,
            username=self.usernames.get(post.user_id, ""),
        )
        self.pending[post.id] = _Pending(prompt, -1.0)
        bisect.insort(self._order, (post.create_at, post.id))
        self._pump()
        self._log.info("prompt.sent", post_id=post.id, chars=len(post.message), via=via)

    async def _catchup_loop(self) -> None:
        while True:
            await self.catchup_wanted.wait()
            self.catchup_wanted.clear()
            if self.thread_id and self.welcome is not None:
                try:
                    await self._catch_up()
                except AuthError:
                    raise
                except MattermostError as exc:
                    self._log.error("catchup.failed {}", exc)

    async def _catch_up(self) -> None:
        """Page the thread after the high-water mark and offer every reply to the filter."""
        assert self.welcome is not None
        started = time.monotonic()
        thread = self.thread_id
        start = catchup_start(self.welcome.catch_up_from, self.accepted_high)
        self._log.info("catchup.started", thread_id=thread, from_create_at=start)
        pages = seen = 0
        async for posts in self.client.thread_after(
            thread, start, forbidden=not_member(self.channel_id)
        ):
            pages += 1
            seen += len(posts)
            for post in posts:
                self._consider(post, via="catchup")
        self._log.info(
            "catchup.complete",
            pages=pages,
            posts=seen,
            ms=round((time.monotonic() - started) * 1000),
        )

    # --- answers → Mattermost ----------------------------------------------------------------

    async def _delivery_loop(self) -> None:
        """Post answers one at a time, in the order they came (contract: answers in order)."""
        while True:
            answer = await self.answers.get()
            try:
                await self._deliver(answer)
            except AuthError:
                raise
            except MattermostError as exc:
                # Not Delivered: the worker re-sends it, and the next try posts what is missing.
                self._log.error("answer.failed {}", exc, post_id=answer.post_id)
            finally:
                self.in_delivery.discard(answer.post_id)

    async def _deliver(self, answer: Answer) -> None:
        await self.thread_ready.wait()
        started = time.monotonic()
        ids, reused = await deliver(
            self.client,
            answer,
            thread_id=self.thread_id,
            channel_id=self.channel_id,
            bot_id=self.bot.id,
        )
        self.delivered.remember(answer.post_id, ids)
        self._send_delivered(answer.post_id, ids)
        self._log.info(
            "answer.posted",
            post_id=answer.post_id,
            parts=len(ids),
            reused=reused,
            chars=len(answer.text),
            attempt=answer.attempt,
            ms=round((time.monotonic() - started) * 1000),
        )

    # --- best-effort side effects -----------------------------------------------------------

    async def _chores_loop(self) -> None:
        """Reactions and typing: nice to have, never worth blocking prompts or answers."""
        while True:
            chore = await self.chores.get()
            try:
                async with asyncio.timeout(30.0):
                    await chore()
            except AuthError:
                raise
            except (MattermostError, TimeoutError) as exc:
                self._log.warning("chore.failed {}", exc)

    async def _react(self, post_id: str) -> None:
        for attempt in range(3):
            try:
                await self.client.add_reaction(
                    user_id=self.bot.id, post_id=post_id, emoji_name="eyes"
                )
                return
            except AuthError:
                raise
            except MattermostError:
                if attempt == 2:
                    raise
                await asyncio.sleep(1.0)

    async def _typing(self) -> None:
        await self.client.typing(channel_id=self.channel_id, parent_id=self.thread_id)
        self._log.debug("typing.sent", thread_id=self.thread_id)
