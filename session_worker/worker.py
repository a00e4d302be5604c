"""The session worker service: the inbox, the gateways, delivery, progress and heartbeats.

Gateways push to the worker's one inbox (PULL); the worker answers each on its own endpoint
through one PUSH per live gateway. Every prompt is committed to the journal before it is
acknowledged; every answer is re-sent until a gateway reports it delivered. The claude side
is :class:`session_worker.runner.Runner`.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING

from loguru import logger

import protocol
from protocol import (
    Accepted,
    ApprovalShow,
    ApprovalShown,
    BindThread,
    Command,
    Decision,
    Delivered,
    FileRequest,
    GatewayBye,
    GatewayHello,
    Prompt,
    Receiver,
    Sender,
    Welcome,
    WorkerHeartbeat,
    curve,
)
from protocol.proctree import become_subreaper
from session_worker import files, outfiles, policy
from session_worker.activity import activity_key
from session_worker.answer_delivery import AnswerDelivery
from session_worker.answer_outbox import AnswerOutbox
from session_worker.controls import Controls
from session_worker.errors import JournalError
from session_worker.journal import Journal
from session_worker.links import GatewayLink, GatewayLinks, SenderLike
from session_worker.runner import Runner
from session_worker.states import Deliver, PromptRow, State

if TYPE_CHECKING:
    from collections.abc import Callable

    from session_worker.approvals import Approval
    from session_worker.config import WorkerConfig
    from session_worker.turn import Turn

__all__ = ["Worker"]

TICK = 0.1  # seconds between checks of the timers below
HEARTBEAT_EVERY = 1.0
APPROVAL_RESEND_EVERY = 2.0  # an approval post not confirmed by a gateway is shown again


class Worker:
    """One worker incarnation; :meth:`run` until ``stop`` is set."""

    def __init__(
        self, config: WorkerConfig, connect: Callable[[str], SenderLike] | None = None
    ) -> None:
        """``connect`` opens the sender to a gateway's endpoint (ZeroMQ unless a test
        records the frames instead). The timers run on ``time.monotonic``, the runner's
        timeline too; :meth:`_handle` and :meth:`_tick` take ``now``, so tests pass it."""
        self.config = config
        self._next_heartbeat = 0.0
        self.incarnation = secrets.token_hex(8)
        self.journal = Journal(config.state_dir)
        self.links = GatewayLinks(connect or self._connect)
        # The CURVE public key of the frame being handled ("" when it came over ipc).
        self._peer = ""
        self._keys = curve.keys_dir(config.state_dir)
        self._pair: curve.KeyPair | None = None
        self.outbox = AnswerOutbox(
            load_files=lambda post_id: outfiles.load(Path(config.state_dir), post_id),
            load_activity=lambda post_id: self.journal.meta(activity_key(post_id)) or "",
        )
        self.delivery = AnswerDelivery(self.links, self.outbox, config.redeliver_interval)
        self.runner = Runner(config, self.journal, on_answered=self._answered)
        self.controls = Controls(config, self.journal, self.runner, self._show_approval)
        self._approvals_sent: dict[str, float] = {}  # request id → last ApprovalShow sent

    async def run(self, stop: asyncio.Event) -> None:
        if not become_subreaper():
            logger.warning("worker.no_subreaper")
        self.controls.expire_all()  # asked by a claude that died with the last worker
        for row in self.journal.recover():
            logger.bind(post_id=row.post_id, tries=row.tries).info("prompt.requeued")
        for row in self.journal.rows(State.ANSWERED):
            # Sent before the restart, maybe posted in part: attempt >= 2 makes the gateway
            # look in the thread first.
            self.outbox.add(row, attempt=2)
        receiver = self._open_inbox()
        heartbeat = (
            Sender(self.config.heartbeat_endpoint) if self.config.heartbeat_endpoint else None
        )
        logger.bind(
            incarnation=self.incarnation,
            queued=self.journal.count(State.QUEUED),
            undelivered=len(self.outbox),
            session_id=self.journal.session_id,
        ).info("worker.started")
        try:
            async with asyncio.TaskGroup() as tg:
                tasks = [
                    tg.create_task(self._inbox(receiver), name="inbox"),
                    tg.create_task(self.runner.run(), name="runner"),
                    tg.create_task(self._timers(heartbeat), name="timers"),
                ]
                await stop.wait()
                logger.info("worker.stopping")
                for task in tasks:
                    task.cancel()
        finally:
            receiver.close()
            if heartbeat is not None:
                heartbeat.close()
            self.links.close()
            self.journal.close()
        logger.info("worker.stopped")

    # --- sockets ------------------------------------------------------------------------

    def _open_inbox(self) -> Receiver:
        """The inbox: over tcp, a CURVE server that lets in only the listed gateway keys."""
        if not curve.is_tcp(self.config.endpoint):
            return Receiver(self.config.endpoint)
        self._pair = curve.load_pair(self._keys, curve.WORKER_KEY)
        allowed = self._keys / curve.ALLOWED_GATEWAYS
        curve.start_authenticator(protocol.context(), lambda: curve.allowed_keys(allowed))
        logger.bind(allowed=len(curve.allowed_keys(allowed))).info("inbox.curve")
        return Receiver(self.config.endpoint, curve=self._pair)

    def _connect(self, endpoint: str) -> SenderLike:
        """A sender to a gateway's endpoint; a tcp one only for a hello that came over CURVE
        (the gateway's key, proven by the handshake, is the server key we expect there)."""
        if not curve.is_tcp(endpoint):
            return Sender(endpoint)
        if not self._peer or self._pair is None:
            raise curve.CurveError(f"a tcp gateway endpoint {endpoint!r} needs a CURVE hello")
        return Sender(endpoint, curve=(self._pair, self._peer.encode()))

    # --- inbox --------------------------------------------------------------------------

    async def _inbox(self, receiver: Receiver) -> None:
        while True:
            frame, self._peer = await receiver.recv_from()
            received_ns = time.monotonic_ns()
            try:
                message = protocol.worker_codec.decode(frame)
            except protocol.DecodeError as exc:
                logger.bind(size=exc.size, error=str(exc)).warning("inbox.undecodable")
                continue
            if isinstance(message, Prompt):
                # Hop timing for benchmarks/latency.py (DEBUG only; CLOCK_MONOTONIC is shared
                # by every process on the host, so it lines up with the emulator's marks).
                logger.bind(post_id=message.post_id, t_ns=received_ns).debug("hop.worker_recv")
            try:
                self._handle(message, time.monotonic())
            except (JournalError, protocol.ProtocolError) as exc:
                # A bad endpoint in a hello, a Delivered for an unknown post: that message
                # is refused, the worker goes on.
                logger.bind(error=str(exc), kind=type(message).__name__).warning("inbox.rejected")
            except (ValueError, OverflowError, TypeError) as exc:
                # Whatever a peer's values still break (the decoder bounds them): never fatal.
                logger.bind(error=repr(exc), kind=type(message).__name__).error("inbox.failed")

    def _handle(self, message: protocol.ToWorker, now: float) -> None:
        match message:
            case GatewayHello():
                gateway = self.links.hello(message, now)
                if gateway is not None:
                    logger.bind(gateway_id=gateway.gateway_id, gateway_pid=gateway.pid).info(
                        "gateway.joined"
                    )
                    self._welcome(gateway)
                    self.delivery.joined(gateway, now)
                    self._show_approvals(gateway, everything=True)
            case GatewayBye(gateway_id=gateway_id):
                if self.links.forget(gateway_id):
                    logger.bind(gateway_id=gateway_id).info("gateway.left")
                    self.delivery.gone(gateway_id, now)
                    self._show_approvals(None, everything=True)
            case BindThread():
                self._bind(message)
            case Prompt():
                self._prompt(message)
            case Command():
                self._command(message)
            case Decision(request_id=request_id, behavior=behavior):
                who = f"@{message.username}" if message.username else message.user_id
                self.controls.decide(request_id, behavior, who)
            case ApprovalShown(request_id=request_id, state=state):
                self.controls.shown(request_id, state, message.post_create_at)
            case FileRequest():
                self._file_request(message)
            case Delivered(gateway_id=gateway_id, post_id=post_id, reply_ids=reply_ids):
                self.journal.apply(post_id, Deliver(tuple(reply_ids)))
                outfiles.forget(Path(self.config.state_dir), post_id)
                if self.journal.meta(activity_key(post_id)) is not None:
                    self.journal.set_meta(activity_key(post_id), None)
                if self.delivery.delivered(gateway_id, post_id):
                    logger.bind(post_id=post_id, parts=len(reply_ids)).debug("answer.delivered")

    def _welcome(self, gateway: GatewayLink) -> None:
        binding = self.journal.binding()
        gateway.send(
            protocol.encode(
                Welcome(
                    worker_pid=os.getpid(),
                    incarnation=self.incarnation,
                    thread_id=binding.thread_id,
                    channel_id=binding.channel_id,
                    bind_token=binding.bind_token,
                    catch_up_from=self.journal.high_water(),
                    floor=binding.floor,
                )
            )
        )

    def _bind(self, message: BindThread) -> None:
        """First binding wins, except that a configured thread replaces the bound one;
        every gateway is told the binding in force."""
        before = self.journal.binding()
        binding = self.journal.bind(
            message.thread_id, message.channel_id, replace=message.configured, floor=message.floor
        )
        log = logger.bind(gateway_id=message.gateway_id, thread_id=binding.thread_id)
        if not before.thread_id:
            log.bind(floor=binding.floor).info("thread.bound")
        elif binding.thread_id != before.thread_id:
            log.bind(
                old_thread_id=before.thread_id,
                old_channel_id=before.channel_id,
                new_thread_id=binding.thread_id,
                new_channel_id=binding.channel_id,
            ).warning("thread.rebound")
        for gateway in self.links.live():
            self._welcome(gateway)

    def _prompt(self, message: Prompt) -> None:
        gateway = self.links.get(message.gateway_id)
        if gateway is None:
            # No hello yet, so nowhere to acknowledge: the gateway re-sends until Accepted.
            logger.bind(post_id=message.post_id, gateway_id=message.gateway_id).debug(
                "prompt.unknown_gateway"
            )
            return
        text = message.text
        if message.attachments and self.journal.get(message.post_id) is None:
            # Written before the journal row and the acknowledgement: a crash in between
            # makes the gateway re-send, and the rewrite gives the same names and bytes.
            attachments = message.attachments[: files.MAX_ATTACHMENTS]
            try:
                manifest = files.save_attachments(
                    Path(self.config.claude_workdir),
                    message.post_id,
                    attachments,
                    self.config.max_upload_bytes,
                )
            except ValueError as exc:  # a malformed post id: refuse the files, keep the prompt
                logger.bind(post_id=message.post_id, error=str(exc)).warning("attachments.refused")
                manifest = files.Manifest(skipped=tuple(f"{a.name}: refused" for a in attachments))
            except OSError as exc:
                logger.bind(post_id=message.post_id, error=str(exc)).error("attachments.unsaved")
                return  # not acknowledged: the gateway re-sends (the disk may have room then)
            text = files.prompt_with_files(message.text, manifest, Path(self.config.claude_workdir))
            logger.bind(
                post_id=message.post_id, saved=len(manifest.saved), skipped=len(manifest.skipped)
            ).info("attachments.saved")
        row = PromptRow(
            post_id=message.post_id,
            create_at=message.create_at,
            user_id=message.user_id,
            username=message.username,
            text=text,
            gateway_id=message.gateway_id,
        )
        refusal = None
        limit = self.config.max_queued_per_user
        if not self.journal.known(row.post_id) and self.journal.queued_of(row.user_id) >= limit:
            # One user cannot bury the others: the post is answered at once with
            # a refusal, journaled like an answer so that it is posted exactly once.
            refusal = policy.queue_full_answer(limit)
        first = self.journal.insert(row, refusal=refusal)  # committed before the ack below
        gateway.send(protocol.encode(Accepted(post_id=message.post_id, first=first)))
        if first and refusal is not None:
            logger.bind(post_id=row.post_id, user_id=row.user_id, limit=limit).warning(
                "prompt.refused"
            )
            stored = self.journal.get(row.post_id)
            if stored is not None:
                self._answered(stored)
        elif first:
            logger.bind(post_id=message.post_id, t_ns=time.monotonic_ns()).debug(
                "hop.worker_accepted"
            )
            logger.bind(
                post_id=message.post_id, user_id=message.user_id, chars=len(message.text)
            ).debug("prompt.accepted")
            self.runner.wake()

    def _command(self, message: Command) -> None:
        """A command: journaled and answered at once, beside the turn queue."""
        gateway = self.links.get(message.gateway_id)
        if gateway is None:
            return  # no hello yet: the gateway re-sends until Accepted
        row = PromptRow(
            post_id=message.post_id,
            create_at=message.create_at,
            user_id=message.user_id,
            username=message.username,
            text=f"!{message.name} {message.args}".rstrip(),
            gateway_id=message.gateway_id,
        )
        answered = self.controls.command(row, message.name, message.args)
        gateway.send(protocol.encode(Accepted(post_id=message.post_id, first=answered is not None)))
        if answered is not None:
            self.delivery.answered(answered, time.monotonic())

    # --- approvals ----------------------------------------------------------------------

    def _show_approval(self, approval: Approval) -> None:
        gateway = self.delivery.progress_gateway_for(approval.post_id)
        if gateway is not None:
            self._send_approval(gateway, approval)

    def _send_approval(self, gateway: GatewayLink, approval: Approval) -> None:
        self._approvals_sent[approval.request_id] = time.monotonic()
        gateway.send(
            protocol.encode(
                ApprovalShow(
                    request_id=approval.request_id,
                    prompt_post_id=approval.post_id,
                    create_at=approval.create_at,
                    kind=approval.kind,
                    state=approval.state,
                    text=self.controls.render(approval),
                )
            )
        )

    def _show_approvals(self, gateway: GatewayLink | None, *, everything: bool = False) -> None:
        """Re-send what no gateway confirmed; to a new gateway also every pending request
        (it learns their posts and reads the reactions it missed)."""
        now = time.monotonic()
        shown = {a.request_id: a for a in self.journal.approvals(unshown_only=True)}
        if everything:
            shown.update((a.request_id, a) for a in self.journal.approvals(pending_only=True))
        for approval in shown.values():
            last = self._approvals_sent.get(approval.request_id, 0.0)
            target = gateway or self.delivery.progress_gateway_for(approval.post_id)
            if target is not None and (everything or now - last >= APPROVAL_RESEND_EVERY):
                self._send_approval(target, approval)

    def _file_request(self, message: FileRequest) -> None:
        """``!file PATH``: answered at once, beside the turn queue, exactly once. The bytes are
        copied to the state dir before the journal row (answered) is committed, so every
        re-send after a crash carries the same file."""
        gateway = self.links.get(message.gateway_id)
        if gateway is None:
            return
        log = logger.bind(post_id=message.post_id, path=message.path)
        if self.journal.get(message.post_id) is None:
            try:
                target = files.confine(
                    Path(self.config.claude_workdir), message.path, self.config.max_upload_bytes
                )
                data = target.read_bytes()
                outfiles.store(Path(self.config.state_dir), message.post_id, target.name, data)
            except files.FileRefused as exc:
                answer, is_error = exc.reason, True
                log.bind(reason=exc.reason).info("file.refused")
            except OSError as exc:
                reason = exc.strerror or str(exc)
                answer, is_error = f"`{message.path}` cannot be sent: {reason}.", True
                log.bind(error=str(exc)).warning("file.unreadable")
            else:
                answer, is_error = f"📎 `{message.path}` ({len(data)} bytes)", False
                log.bind(size=len(data)).info("file.sent")
            row = PromptRow(
                post_id=message.post_id,
                create_at=message.create_at,
                user_id=message.user_id,
                username=message.username,
                text=f"!file {message.path}",
                gateway_id=message.gateway_id,
            )
            if self.journal.insert_answered(row, answer, is_error=is_error):
                stored = self.journal.get(message.post_id)
                assert stored is not None
                self._answered(stored)
        gateway.send(protocol.encode(Accepted(post_id=message.post_id, first=False)))

    # --- answers ------------------------------------------------------------------------

    def _answered(self, row: PromptRow) -> None:
        self.delivery.answered(row, time.monotonic())

    def _turn_messages(self, turn: Turn, now: float) -> None:
        """What the running turn has due for the thread: its live view, then typing."""
        activity = turn.activity_due(now)
        if activity is not None:
            gateway = self.delivery.progress_gateway(turn.row)
            if gateway is not None:
                turn.mark_activity_sent(now, activity)
                gateway.send(protocol.encode(activity))
        progress = turn.progress_due(now)
        if progress is not None:
            gateway = self.delivery.progress_gateway(turn.row)
            if gateway is not None:
                gateway.send(protocol.encode(progress))

    # --- timers -------------------------------------------------------------------------

    async def _timers(self, heartbeat: Sender | None) -> None:
        while True:
            self._tick(time.monotonic(), heartbeat)
            await asyncio.sleep(TICK)

    def _tick(self, now: float, heartbeat: SenderLike | None = None) -> None:
        """One round of the timers: expired gateways, answers due again, approvals to show,
        the running turn's messages, the heartbeat."""
        for gateway_id in self.links.expire(now):
            logger.bind(gateway_id=gateway_id).info("gateway.expired")
            self.delivery.gone(gateway_id, now)
            self._show_approvals(None, everything=True)
        self.delivery.send_due(now)
        self.controls.tick()
        self._show_approvals(None)
        turn = self.runner.turn
        if turn is not None:
            self._turn_messages(turn, now)
        if heartbeat is not None and now >= self._next_heartbeat:
            self._next_heartbeat = now + HEARTBEAT_EVERY
            heartbeat.send(protocol.encode(self._heartbeat()))

    def _heartbeat(self) -> WorkerHeartbeat:
        return WorkerHeartbeat(
            pid=os.getpid(),
            claude_pid=self.runner.claude_pid,
            session_id=self.journal.session_id,
            queue=self.journal.count(State.QUEUED, State.RUNNING),
            thread_id=self.journal.binding().thread_id,
            claude_restarts=self.runner.restarts,
            model=self.runner.model,
            permission_mode=self.runner.permission_mode,
            pending_approvals=len(self.journal.approvals(pending_only=True)),
            turns=int(self.journal.meta("turns") or 0),
            cost_usd=float(self.journal.meta("cost_usd") or 0.0),
        )
