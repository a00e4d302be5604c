"""The gateway: binds the thread, turns thread posts into prompts for the worker and the
worker's answers into thread posts. Holds no durable state, so any number may run.

Every message that matters is re-sent until acknowledged (prompts until ``Accepted``; the
worker re-sends answers until ``Delivered``), and every effect on Mattermost is idempotent
(``pending_post_id``, a look in the thread before re-posting), so a SIGKILL at any point
neither loses a post nor answers one twice.

The hello/heartbeat loop starts before any Mattermost call: a gateway whose Mattermost is
down keeps telling the supervisor it is alive (``connected=False``) while it retries.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING

from loguru import logger

from gateway.access import Access, refresh_forever
from gateway.activity import ActivityPosts
from gateway.approvals import ApprovalPosts, behavior_of
from gateway.binder import Binder
from gateway.binding import not_member
from gateway.bridge import catchup_start
from gateway.chores import Chores, run_chores
from gateway.commands import parse_command
from gateway.delivery import deliver, deliver_fallback
from gateway.errors import AuthError, MattermostError
from gateway.feed import follow
from gateway.files import fetch_attachments, parse_file_command
from gateway.filtering import NOT_ALLOWED, reject_reason
from gateway.models import Post, User
from gateway.outbox import Outbox
from gateway.prompts import Lru, PromptQueue
from protocol import (
    Accepted,
    Activity,
    Answer,
    ApprovalShow,
    ApprovalShown,
    Attachment,
    Command,
    Decision,
    Delivered,
    FileRequest,
    GatewayHeartbeat,
    GatewayHello,
    Progress,
    Prompt,
    Welcome,
)
from protocol.backoff import Backoff

if TYPE_CHECKING:
    from gateway.bus import Bus
    from gateway.config import GatewayConfig
    from gateway.mattermost import MattermostClient

__all__ = ["Gateway"]

HELLO_INTERVAL_S = 1.0  # the worker forgets a gateway silent for ~5 s
TYPING_INTERVAL_S = 3.0


class Gateway(Binder):
    """One gateway process's logic over a Mattermost client and the ZeroMQ bus."""

    def __init__(self, config: GatewayConfig, client: MattermostClient, bus: Bus) -> None:
        self.config = config
        self.client = client
        self.bus = bus
        self.bot = User(id="")
        self.started_ms = 0
        self.access = Access(client, config.allowed_users, refresh_s=config.allow_refresh_s)
        self.welcome: Welcome | None = None
        self.thread_id = ""
        self.channel_id = ""
        self.connected = False
        self.catchup_high = 0  # newest create_at seen by a complete catch-up
        self.floor = 0  # the binding's: posts made up to it are the thread's history
        self.answered: set[str] = set()  # posts the bot's replies in the thread answer
        self.prompts = PromptQueue()
        self.outbox = Outbox()
        self.delivered = Lru()
        self.approvals = ApprovalPosts()
        self.chores = Chores()
        self.catchup_wanted = asyncio.Event()
        # Catch-ups asked for / the last one completed: prompts wait while one is owed, so
        # a post seen live is never sent before an older one the catch-up is about to find.
        self._catchup_asked = 0
        self._catchup_done = 0
        self.thread_ready = asyncio.Event()
        self.welcomed = asyncio.Event()
        self._last_typing = -TYPING_INTERVAL_S
        self._lookups: set[asyncio.Task[None]] = set()
        self._fetching: dict[str, asyncio.Task[None]] = {}  # post id → attachment download
        self.activities = ActivityPosts(client, self._where)
        self._log = logger.bind(gateway=config.gateway_id)

    def __repr__(self) -> str:
        return (
            f"<Gateway {self.config.gateway_id} thread={self.thread_id or '-'} "
            f"connected={self.connected} prompts={len(self.prompts)} "
            f"answers={len(self.outbox)}>"
        )

    # --- start ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until cancelled; raises AuthError or FatalError for what only an operator fixes."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._hello_loop())  # first: heartbeats never wait for Mattermost
            tasks.create_task(self._bus_loop())
            await self._start()
            tasks.create_task(self._bind_loop())
            tasks.create_task(self._ws_loop())
            tasks.create_task(self._catchup_loop())
            tasks.create_task(self._delivery_loop())
            tasks.create_task(run_chores(self.chores, self.client, self._where))
            tasks.create_task(
                self.approvals.run(self.client, self._where, self._shown, self._reactions)
            )
            tasks.create_task(refresh_forever(self.access))
            if self.config.live:
                tasks.create_task(self._activity_loop())

    def _where(self) -> tuple[str, str, str]:
        return self.bot.id, self.channel_id, self.thread_id

    async def _start(self) -> None:
        """Who the bot is and who is allowed; retried with backoff forever (a 401 is fatal)."""
        backoff = Backoff(initial=0.5, cap=30.0)
        while True:
            try:
                self.bot = await self.client.call("get users/me", self.client.get_me)
                break
            except AuthError:
                raise
            except MattermostError as exc:
                delay = backoff.next()
                self._log.warning("gateway.start_retry {}", exc, retry_s=round(delay, 2))
                await asyncio.sleep(delay)
        self.started_ms = self.client.server_ms
        self._log.info("gateway.started", bot_id=self.bot.id, bot=self.bot.username)
        await self.access.refresh()
        self._log.info(
            "allow.ready",
            everyone=self.access.allow.everyone,
            users=len(self.access.allow.user_ids),
            names=len(self.access.names),
            unresolved=sorted(self.access.names - set(self.access.resolved)),
        )

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
            self._pump()
            await asyncio.sleep(tick)

    def _pump(self) -> None:
        """Send the oldest unaccepted prompt if it is due (never sent, or unanswered for a
        resend interval). Stop-and-wait: see gateway.prompts."""
        if self._catchup_done < self._catchup_asked:
            return  # an older post may still turn up: the catch-up pumps when it is done
        due = self.prompts.due(time.monotonic(), self.config.resend_interval)
        if due is not None:
            prompt, sends = due
            self.bus.send(prompt)
            self._log.debug("prompt.sent", post_id=prompt.post_id, sends=sends)

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
                case ApprovalShow():
                    self.approvals.push(message)
                case Activity():
                    if self.config.live and message.post_id not in self.delivered:
                        self.activities.view(message)
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
                unacked=len(self.prompts),
            )
            self.prompts.resend_now()  # a new worker: re-send what it may lack, right away
            self._want_catchup()
            self._pump()
        self.floor = welcome.floor if welcome.thread_id else 0
        if welcome.thread_id and welcome.thread_id != self.thread_id:
            self.thread_id, self.channel_id = welcome.thread_id, welcome.channel_id
            self.catchup_high = 0  # it was about the other thread
            self._log.info("thread.bound", thread_id=self.thread_id, channel_id=self.channel_id)
            self.thread_ready.set()
            self._want_catchup()

    def _want_catchup(self) -> None:
        self._catchup_asked += 1
        self.catchup_wanted.set()

    def _on_accepted(self, accepted: Accepted) -> None:
        self.prompts.accepted(accepted.post_id)
        self._pump()
        self._log.debug("prompt.accepted", post_id=accepted.post_id, first=accepted.first)
        if accepted.first:
            self.chores.add("react", accepted.post_id)

    def _on_answer(self, answer: Answer) -> None:
        done = self.delivered.get(answer.post_id)
        if done is not None:
            self._send_delivered(answer.post_id, done)
            self._log.info("answer.redelivered", post_id=answer.post_id, parts=len(done))
        elif not self.outbox.push(answer):
            self._log.debug("answer.duplicate", post_id=answer.post_id, attempt=answer.attempt)
        else:
            self._log.debug(
                "answer.received",
                post_id=answer.post_id,
                chars=len(answer.text),
                attempt=answer.attempt,
                is_error=answer.is_error,
                queued=len(self.outbox),
            )

    def _on_progress(self, progress: Progress) -> None:
        now = time.monotonic()
        if self.thread_id and now - self._last_typing >= TYPING_INTERVAL_S:
            self._last_typing = now
            self.chores.add("typing")

    def _send_delivered(self, post_id: str, reply_ids: tuple[str, ...]) -> None:
        self.bus.send(
            Delivered(gateway_id=self.config.gateway_id, post_id=post_id, reply_ids=reply_ids)
        )

    async def _activity_loop(self) -> None:
        await self.thread_ready.wait()
        await self.activities.run()

    # --- Mattermost → prompts ----------------------------------------------------------------

    async def _ws_loop(self) -> None:
        await self.thread_ready.wait()  # the filter needs the thread
        await follow(self.client, self, self.config.gateway_id)

    # FeedListener: what the WebSocket feed reports.

    def connected_changed(self, connected: bool) -> None:
        self.connected = connected

    def events_lost(self) -> None:
        self._want_catchup()
        if self.approvals.pending:
            task = asyncio.create_task(self._reread_reactions())
            self._lookups.add(task)
            task.add_done_callback(self._lookups.discard)

    # --- approvals --------------------------------------------------------------------------

    def _shown(self, show: ApprovalShow, post_id: str, post_create_at: int) -> None:
        self.bus.send(
            ApprovalShown(
                gateway_id=self.config.gateway_id,
                request_id=show.request_id,
                state=show.state,
                post_id=post_id,
                post_create_at=post_create_at,
            )
        )

    def _reactions(self, post_id: str, reactions: list[tuple[str, str]]) -> None:
        for user_id, emoji in reactions:
            self.reaction_added(user_id, post_id, emoji)

    async def _reread_reactions(self) -> None:
        """After a fresh WebSocket: reactions made while it was down."""
        for request_id in list(self.approvals.pending):
            post_id = self.approvals.post_of.get(request_id)
            if post_id is None:
                continue
            try:
                self._reactions(post_id, await self.client.reactions(post_id))
            except MattermostError as exc:
                self._log.warning("approval.reactions_failed {}", exc, post_id=post_id)

    def reaction_added(self, user_id: str, post_id: str, emoji_name: str) -> None:
        """A reaction on an approval post decides it when its author is allowed now (by id,
        as resolved from the server; a name resolved later counts from the next refresh)."""
        request_id = self.approvals.request_for(post_id)
        behavior = behavior_of(emoji_name)
        if request_id is None or behavior is None or user_id == self.bot.id:
            return
        if not self.access.allow.allows(user_id):
            self._log.debug("reaction.ignored", post_id=post_id, user_id=user_id)
            return
        self._log.info("approval.reaction", request_id=request_id, behavior=behavior)
        self.bus.send(
            Decision(
                gateway_id=self.config.gateway_id,
                request_id=request_id,
                behavior=behavior,
                user_id=user_id,
                username=self.access.name_of(user_id),
            )
        )

    def post_seen(self, post: Post, sender: str) -> None:
        self.access.saw(post)
        if post.root_id == self.thread_id and self.access.should_check(post.user_id):
            # An author not allowed while some names are unresolved: ask the server who
            # they are (a user created after start), then judge.
            task = asyncio.create_task(self._check_then_consider(post, sender))
            self._lookups.add(task)
            task.add_done_callback(self._lookups.discard)
            return
        self._consider(post, via="ws", sender=sender)

    async def _check_then_consider(self, post: Post, sender: str) -> None:
        try:
            decided = await self.access.check_author(post.user_id, post.create_at)
        except AuthError as exc:  # the other loops meet the 401 too and stop the gateway
            self._log.error("allow.lookup_failed {}", exc)
            decided = False
        self._consider(post, via="ws", final=decided, sender=sender)

    def _consider(self, post: Post, *, via: str, final: bool = True, sender: str = "") -> None:
        """Judge one post; whatever goes wrong judging it skips it alone (logged).

        A refusal is remembered (``final``: unless the author could not be looked up) and a
        post refused once is never judged again: a catch-up cannot turn it into a prompt.
        """
        try:
            self._judge(post, via=via, final=final, sender=sender)
        except Exception as exc:
            self._log.error(
                "post.skipped {}: {}", type(exc).__name__, str(exc)[:200], post_id=post.id, via=via
            )

    def _judge(self, post: Post, *, via: str, final: bool, sender: str) -> None:
        if self.access.rejected(post.id):
            self._log.debug("post.ignored", post_id=post.id, reason="refused before", via=via)
            return
        reason = reject_reason(
            post, thread_id=self.thread_id, bot_id=self.bot.id, allow=self.access.allow
        )
        by_event_name = self.access.allows_by_event_name(sender)
        if reason == NOT_ALLOWED and by_event_name:
            reason = None
        if reason is None and self.floor and post.create_at <= self.floor:
            reason = "the thread's history (made before the binding)"
        if reason is None and post.id in self.answered:
            reason = "already answered in the thread"
        if (
            reason is None
            and not self.access.allows(post.user_id, post.create_at)
            and not by_event_name
        ):
            reason = "author not allowed when the post was made"
        if reason is not None:
            if final and post.root_id == self.thread_id:
                self.access.reject(post.id)
            self._log.debug("post.ignored", post_id=post.id, reason=reason, via=via)
            return
        username = self.access.name_of(post.user_id)
        path = parse_file_command(post.message)
        if path is not None:
            request = FileRequest(
                gateway_id=self.config.gateway_id,
                post_id=post.id,
                create_at=post.create_at,
                user_id=post.user_id,
                path=path,
                username=username,
            )
            if self.prompts.add(request):
                self._log.debug("file_request.queued", post_id=post.id, via=via)
                self._pump()
            return
        command = parse_command(post.message)
        if command is not None:
            self._enqueue(
                Command(
                    gateway_id=self.config.gateway_id,
                    post_id=post.id,
                    create_at=post.create_at,
                    user_id=post.user_id,
                    name=command.name,
                    args=command.args,
                    username=username,
                ),
                via,
            )
            return
        if post.file_ids:
            if post.id in self._fetching or not self.prompts.reserve(post.id, post.create_at):
                return
            task = asyncio.create_task(self._fetch_then_queue(post, username, via))
            self._fetching[post.id] = task
            task.add_done_callback(self._fetched)
            return
        self._queue(post, username, via)

    def _fetched(self, task: asyncio.Task[None]) -> None:
        for post_id, known in list(self._fetching.items()):
            if known is task:
                del self._fetching[post_id]

    async def _fetch_then_queue(self, post: Post, username: str, via: str) -> None:
        """Download the post's attachments (part of accepting it), then queue the prompt."""
        backoff = Backoff(initial=0.5, cap=30.0)
        while True:
            try:
                files = await fetch_attachments(
                    self.client,
                    post.file_ids,
                    max_bytes=self.config.max_upload_bytes,
                    known=post.files,
                )
                break
            except AuthError as exc:
                self._log.error("attachments.auth_failed {}", exc, post_id=post.id)
                self.prompts.release(post.id)
                return
            except MattermostError as exc:
                delay = backoff.next()
                self._log.warning("attachments.retry {}", exc, post_id=post.id, retry_s=delay)
                await asyncio.sleep(delay)
        self._log.info(
            "attachments.fetched",
            post_id=post.id,
            files=len(files),
            skipped=sum(1 for f in files if f.skipped),
            bytes=sum(len(f.data) for f in files),
        )
        self._queue(post, username, via, files)

    def _queue(
        self, post: Post, username: str, via: str, files: tuple[Attachment, ...] = ()
    ) -> None:
        prompt = Prompt(
            gateway_id=self.config.gateway_id,
            post_id=post.id,
            create_at=post.create_at,
            user_id=post.user_id,
            text=post.message,
            username=username,
            attachments=files,
        )
        self._enqueue(prompt, via)

    def _enqueue(self, prompt: Prompt | Command, via: str) -> None:
        if self.prompts.add(prompt):
            self._log.debug(
                "prompt.queued",
                post_id=prompt.post_id,
                kind=type(prompt).__name__,
                via=via,
                queued=len(self.prompts),
            )
            self._pump()

    async def _catchup_loop(self) -> None:
        """Catch up whenever asked; a failed catch-up is retried after a backoff delay."""
        backoff = Backoff(initial=1.0, cap=60.0)
        while True:
            await self.catchup_wanted.wait()
            self.catchup_wanted.clear()
            if not self.thread_id or self.welcome is None:
                continue  # binding the thread asks again
            asked = self._catchup_asked
            try:
                await self._catch_up()
            except AuthError:
                raise
            except MattermostError as exc:
                delay = backoff.next()
                self._log.error("catchup.failed {}", exc, retry_s=round(delay, 2))
                await asyncio.sleep(delay)
                self.catchup_wanted.set()
            else:
                backoff.reset()
                self._catchup_done = max(self._catchup_done, asked)
            self._pump()

    async def _catch_up(self) -> None:
        """Page the thread from a generous floor (never below the binding's), then offer
        every reply to the filter. All pages are read first: a post the bot already answered
        (a reply of ours with ``mmclaude_reply_to``, later in the thread) is never run again,
        whatever the worker's journal says (it may have been lost)."""
        assert self.welcome is not None
        started = time.monotonic()
        thread = self.thread_id
        start = max(catchup_start(max(self.welcome.catch_up_from, self.catchup_high)), self.floor)
        self._log.info("catchup.started", thread_id=thread, from_create_at=start)
        pages = 0
        seen: list[Post] = []
        async for posts in self.client.thread_after(
            thread, start, forbidden=not_member(self.channel_id)
        ):
            pages += 1
            seen.extend(posts)
        for post in seen:
            reply_to = post.prop("mmclaude_reply_to")
            if post.user_id == self.bot.id and isinstance(reply_to, str):
                self.answered.add(reply_to)
        for post in seen:
            self.access.saw(post)
            decided = True
            if post.root_id == thread and self.access.should_check(post.user_id):
                decided = await self.access.check_author(post.user_id, post.create_at)
            self._consider(post, via="catchup", final=decided)
        newest = max((p.create_at for p in seen), default=0)
        self.catchup_high = max(self.catchup_high, newest)
        self._log.info(
            "catchup.complete",
            pages=pages,
            posts=len(seen),
            answered=len(self.answered),
            ms=round((time.monotonic() - started) * 1000),
        )

    # --- answers → Mattermost ----------------------------------------------------------------

    async def _delivery_loop(self) -> None:
        """Post answers one at a time, in the order they came (contract: answers in order).

        A failed head is retried with backoff while later answers wait (gateway.outbox)."""
        await self.thread_ready.wait()
        while True:
            answer = await self.outbox.next()
            try:
                await self._deliver(answer, self.outbox.fallback())
            except AuthError:
                raise
            except MattermostError as exc:
                # Not Delivered: the worker re-sends it; the next try posts what is missing.
                delay = self.outbox.failed(exc)
                self._log.error(
                    "answer.failed {}",
                    exc,
                    post_id=answer.post_id,
                    failures=self.outbox.failures,
                    waiting=len(self.outbox) - 1,
                    retry_s=round(delay, 2),
                )
                await asyncio.sleep(delay)
            else:
                self.outbox.posted()

    async def _deliver(self, answer: Answer, fallback: str | None) -> None:
        started = time.monotonic()
        where = {"thread_id": self.thread_id, "channel_id": self.channel_id, "bot_id": self.bot.id}
        if fallback is None:
            ids, reused = await deliver(self.client, answer, **where)
        else:
            ids, reused = (await deliver_fallback(self.client, answer, fallback, **where),), 0
            self._log.warning("answer.fallback", post_id=answer.post_id, text=fallback)
        self.delivered.remember(answer.post_id, ids)
        if answer.activity and self.config.live:
            self.activities.finish(answer.post_id, answer.create_at, answer.activity)
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
