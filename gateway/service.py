"""The gateway service: binds the thread, turns thread posts into prompts for the worker and
the worker's answers into thread posts. Holds no durable state, so any number may run.

Every message that matters is re-sent until acknowledged (prompts until ``Accepted``; the
worker re-sends answers until ``Delivered``), and every effect on Mattermost is idempotent
(``pending_post_id``, a look in the thread before re-posting), so a SIGKILL at any point
neither loses a post nor answers one twice.

The service owns the intake (which post becomes which request) and routes the bus; each
other concern is an object owning its own state: the prompt pump (gateway.prompts), the
catch-ups (gateway.catchup), the answer poster (gateway.posting), the binding
(gateway.thread_binding), approval and activity posts, chores, and the background jobs.

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
from gateway.approvals import Approvals
from gateway.background import Background
from gateway.catchup import CatchUps, catchup_start
from gateway.chores import Chores, run_chores
from gateway.commands import parse_command
from gateway.errors import AuthError, MattermostError
from gateway.feed import follow
from gateway.files import fetch_attachments, parse_file_command
from gateway.filtering import NOT_ALLOWED, reject_reason
from gateway.models import Post, User
from gateway.posting import AnswerPoster
from gateway.prompts import PromptPump, PromptQueue
from gateway.thread_binding import ThreadBinder, not_member
from protocol import (
    Accepted,
    Activity,
    Answer,
    ApprovalShow,
    Attachment,
    Command,
    Delivered,
    FileRequest,
    GatewayHeartbeat,
    GatewayHello,
    Progress,
    Prompt,
    ToGateway,
    Welcome,
)
from protocol.backoff import Backoff

if TYPE_CHECKING:
    from collections.abc import Callable

    from gateway.bus import WorkerBus
    from gateway.config import GatewayConfig
    from gateway.mattermost import MattermostApi

__all__ = ["GatewayService"]

HELLO_INTERVAL_S = 1.0  # the worker forgets a gateway silent for ~5 s
TYPING_INTERVAL_S = 3.0


class GatewayService:
    """One gateway process's logic over a Mattermost client and the ZeroMQ bus.

    ``clock`` (monotonic seconds) paces the pump, the hellos and typing; ``answer_backoff``
    the retries of a refused answer; ``access`` replaces the allowlist built from the config.
    """

    def __init__(
        self,
        config: GatewayConfig,
        client: MattermostApi,
        bus: WorkerBus,
        *,
        clock: Callable[[], float] = time.monotonic,
        answer_backoff: Backoff | None = None,
        access: Access | None = None,
    ) -> None:
        gid = config.gateway_id
        self.config = config
        self.client = client
        self.bus = bus
        self.clock = clock
        self.bot = User(id="")
        self.started_ms = 0
        self.access = access or Access(
            client, config.allowed_users, refresh_s=config.allow_refresh_s
        )
        self.welcome: Welcome | None = None
        self.thread_id = ""
        self.channel_id = ""
        self.connected = False
        self.floor = 0  # the binding's: posts made up to it are the thread's history
        self.answered: set[str] = set()  # posts the bot's replies in the thread answer
        self.catchups = CatchUps(gid)
        self.pump = PromptPump(
            bus.send,
            resend_interval=config.resend_interval,
            held=lambda: self.catchups.owed,
            gateway_id=gid,
            clock=clock,
        )
        self.poster = AnswerPoster(
            client, gid, posted=self._answer_posted, backoff=answer_backoff, clock=clock
        )
        self.chores = Chores()
        self.thread_ready = asyncio.Event()
        self.binder = ThreadBinder(config, client, bus)
        self.background = Background(gid)
        self._last_typing = -TYPING_INTERVAL_S
        self._fetching: set[str] = set()  # posts whose attachments are being downloaded
        self.activities = ActivityPosts(client, self._where, clock=clock)
        self.approvals = Approvals(client, bus, self.access, gid, self._where)
        self._log = logger.bind(gateway=gid)

    @property
    def prompts(self) -> PromptQueue:
        """The prompts not yet accepted by the worker."""
        return self.pump.queue

    def __repr__(self) -> str:
        return (
            f"<GatewayService {self.config.gateway_id} thread={self.thread_id or '-'} "
            f"connected={self.connected} prompts={len(self.prompts)} "
            f"answers={len(self.poster.queue)}>"
        )

    # --- start ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until cancelled; raises AuthError or FatalError for what only an operator fixes."""
        async with asyncio.TaskGroup() as tasks:
            self.background.attach(tasks)
            tasks.create_task(self._hello_loop())  # first: heartbeats never wait for Mattermost
            tasks.create_task(self._bus_loop())
            await self._start()
            tasks.create_task(self.binder.run(self.bot.id, self.started_ms))
            tasks.create_task(self._ws_loop())
            tasks.create_task(self.catchups.run(self._catch_up, self._bound, self.pump.pump))
            tasks.create_task(self._delivery_loop())
            tasks.create_task(run_chores(self.chores, self.client, self._where))
            tasks.create_task(self.approvals.run())
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
                self._log.warning("gateway.start_retry", error=str(exc), retry_s=round(delay, 2))
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
            now = self.clock()
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
            self.pump.pump()
            await asyncio.sleep(tick)

    async def _bus_loop(self) -> None:
        while True:
            message = await self.bus.receive(timeout=1.0)
            if message is not None:
                self.handle(message)

    def handle(self, message: ToGateway) -> None:
        """Act on one message from the worker."""
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
                if self.config.live and message.post_id not in self.poster.delivered:
                    self.activities.view(message)

    def _on_welcome(self, welcome: Welcome) -> None:
        restarted = self.welcome is None or welcome.incarnation != self.welcome.incarnation
        self.welcome = welcome
        self.binder.welcomed(welcome)
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
            self.catchups.want()
            self.pump.pump()
        self.floor = welcome.floor if welcome.thread_id else 0
        if welcome.thread_id and welcome.thread_id != self.thread_id:
            self.thread_id, self.channel_id = welcome.thread_id, welcome.channel_id
            self.catchups.high = 0  # it was about the other thread
            self._log.info("thread.bound", thread_id=self.thread_id, channel_id=self.channel_id)
            self.thread_ready.set()
            self.catchups.want()

    def _bound(self) -> bool:
        return bool(self.thread_id) and self.welcome is not None

    def _on_accepted(self, accepted: Accepted) -> None:
        self.pump.accepted(accepted.post_id)
        self._log.debug("prompt.accepted", post_id=accepted.post_id, first=accepted.first)
        if accepted.first:
            self.chores.add("react", accepted.post_id)

    def _on_answer(self, answer: Answer) -> None:
        done = self.poster.delivered.get(answer.post_id)
        if done is None:
            self.poster.push(answer)
            return
        self._send_delivered(answer.post_id, done)
        self._log.info("answer.redelivered", post_id=answer.post_id, parts=len(done))

    def _answer_posted(self, answer: Answer, reply_ids: tuple[str, ...]) -> None:
        if answer.activity and self.config.live:
            self.activities.finish(answer.post_id, answer.create_at, answer.activity)
        self._send_delivered(answer.post_id, reply_ids)

    def _on_progress(self, progress: Progress) -> None:
        now = self.clock()
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
        self.catchups.want()
        if self.approvals.pending:
            self.background.spawn("reread reactions", self.approvals.reread_reactions())

    def reaction_added(self, user_id: str, post_id: str, emoji_name: str) -> None:
        self.approvals.reaction_added(user_id, post_id, emoji_name)

    def post_seen(self, post: Post, sender: str) -> None:
        self.access.saw(post)
        if post.root_id == self.thread_id and self.access.should_check(post.user_id):
            # An author not allowed while some names are unresolved: ask the server who
            # they are (a user created after start), then judge.
            self.background.spawn("look up an author", self._check_then_consider(post, sender))
            return
        self._consider(post, via="ws", sender=sender)

    async def _check_then_consider(self, post: Post, sender: str) -> None:
        try:
            decided = await self.access.check_author(post.user_id, post.create_at)
        except AuthError as exc:  # the other loops meet the 401 too and stop the gateway
            self._log.error("allow.lookup_failed", error=str(exc))
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
                "post.skipped",
                error=f"{type(exc).__name__}: {str(exc)[:200]}",
                post_id=post.id,
                via=via,
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
            self.pump.add(request, via)
            return
        command = parse_command(post.message)
        if command is not None:
            self.pump.add(
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
            self._fetching.add(post.id)
            self.background.spawn("fetch attachments", self._fetch_then_queue(post, username, via))
            return
        self._queue(post, username, via)

    async def _fetch_then_queue(self, post: Post, username: str, via: str) -> None:
        """Download the post's attachments (part of accepting it), then queue the prompt."""
        try:
            files = await self._fetch(post)
        finally:
            self._fetching.discard(post.id)
        if files is None:
            self.prompts.release(post.id)
            return
        self._log.info(
            "attachments.fetched",
            post_id=post.id,
            files=len(files),
            skipped=sum(1 for f in files if f.skipped),
            bytes=sum(len(f.data) for f in files),
        )
        self._queue(post, username, via, files)

    async def _fetch(self, post: Post) -> tuple[Attachment, ...] | None:
        """The post's attachments, retried with backoff; None when the token is refused."""
        backoff = Backoff(initial=0.5, cap=30.0)
        while True:
            try:
                return await fetch_attachments(
                    self.client,
                    post.file_ids,
                    max_bytes=self.config.max_upload_bytes,
                    known=post.files,
                )
            except AuthError as exc:
                self._log.error("attachments.auth_failed", error=str(exc), post_id=post.id)
                return None
            except MattermostError as exc:
                delay = backoff.next()
                self._log.warning(
                    "attachments.retry", error=str(exc), post_id=post.id, retry_s=delay
                )
                await asyncio.sleep(delay)

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
        self.pump.add(prompt, via)

    async def _catch_up(self) -> None:
        """Page the thread from a generous floor (never below the binding's), then offer
        every reply to the filter. All pages are read first: a post the bot already answered
        (a reply of ours with ``mmclaude_reply_to``, later in the thread) is never run again,
        whatever the worker's journal says (it may have been lost)."""
        assert self.welcome is not None
        started = self.clock()
        thread = self.thread_id
        high = self.catchups.high
        start = max(catchup_start(max(self.welcome.catch_up_from, high)), self.floor)
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
        self.catchups.high = max(self.catchups.high, newest)
        self._log.info(
            "catchup.complete",
            pages=pages,
            posts=len(seen),
            answered=len(self.answered),
            ms=round((self.clock() - started) * 1000),
        )

    # --- answers → Mattermost ----------------------------------------------------------------

    async def _delivery_loop(self) -> None:
        await self.thread_ready.wait()
        await self.poster.run(self._where)
