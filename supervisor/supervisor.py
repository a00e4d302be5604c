"""``mmclaude run``: the process tree. Spawns the worker then the gateways, notices a death
within milliseconds (sentinels on the event loop, no polling), restarts one child at a time
with backoff (policy.py), kills a child whose heartbeats stop, and stops everything in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from loguru import logger

from protocol import (
    DecodeError,
    GatewayHeartbeat,
    Receiver,
    StateDirError,
    WorkerHeartbeat,
    prepare_state_dir,
    setup_logging,
    supervisor_codec,
    supervisor_endpoint,
)
from protocol.procfs import start_ticks
from protocol.proctree import become_subreaper, drop_mattermost, kill_orphans
from supervisor.claude_restarts import ClaudeRestarts
from supervisor.policy import ChildHistory, GiveUp, RestartPolicy
from supervisor.process import ChildProcess, stop_resource_tracker
from supervisor.status import (
    ChildStatus,
    ClaudeStatus,
    Status,
    SupervisorStatus,
    status_path,
    write_status,
)
from supervisor.users import UMASK, layout_state_dir, resolve

if TYPE_CHECKING:
    from collections.abc import Callable

    from gateway.config import GatewayConfig
    from session_worker.config import WorkerConfig
    from supervisor.config import Settings
    from supervisor.users import RunAs

__all__ = ["Supervisor", "run_supervisor"]

# How long each role gets between SIGTERM and SIGKILL on shutdown (seconds).
GATEWAY_GRACE = 3.0
WORKER_GRACE = 5.0


class Slot:
    """One supervised role (the worker, or gateway number i) across its incarnations."""

    def __init__(self, role: str, name: str, make_config: Callable[[], Any]) -> None:
        self.role = role
        self.name = name
        self.make_config = make_config
        self.child: ChildProcess | None = None
        self.exited = asyncio.Event()
        self.state = "starting"
        self.history = ChildHistory()
        self.restarts = 0
        self.last_beat: float | None = None
        self.beat: WorkerHeartbeat | GatewayHeartbeat | None = None
        self.respawn: asyncio.TimerHandle | None = None

    @property
    def pid(self) -> int | None:
        return self.child.pid if self.child else None

    def __repr__(self) -> str:
        return f"<Slot {self.name} pid={self.pid} state={self.state} restarts={self.restarts}>"


class Supervisor:
    """The supervisor's state and event handlers; :meth:`run` is the whole life."""

    def __init__(
        self,
        worker_config: WorkerConfig,
        make_gateway_config: Callable[[], GatewayConfig],
        *,
        gateways: int,
        state_dir: str,
        heartbeat_limit: float,
        policy: RestartPolicy,
        rng: random.Random | None = None,
        run_as: dict[str, RunAs] | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.run_as = run_as or {}
        self.heartbeat_limit = heartbeat_limit
        self.policy = policy
        self.rng = rng or random.Random()
        if gateways < 1:
            raise ValueError(f"a tree has at least one gateway, not {gateways}")
        self.worker = Slot("worker", "worker", lambda: worker_config)
        self.gateways = [
            Slot("gateway", f"gateway-{i}", make_gateway_config) for i in range(gateways)
        ]
        self.started_at = time.time()
        self.state = "running"
        self.exit_code = 0
        self.claude_pid: int | None = None
        self.claude_restarts = ClaudeRestarts()
        self.thread_id = ""
        self._stop = asyncio.Event()
        self._last_status: Status | None = None
        self._status_path = status_path(state_dir)

    # --- lifecycle ----------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop, f"signal {sig.name}")
        become_subreaper()
        logger.info("supervisor.started", gateways=len(self.gateways), state_dir=self.state_dir)
        for slot in [self.worker, *self.gateways]:
            self._spawn(slot)
        # Only now: no zmq context may exist before the children are spawned.
        receiver = Receiver(supervisor_endpoint(Path(self.state_dir)))
        try:
            async with asyncio.TaskGroup() as tasks:
                beats = tasks.create_task(self._heartbeats(receiver))
                watch = tasks.create_task(self._watch())
                await self._stop.wait()
                beats.cancel()
                watch.cancel()
            await self._shutdown()
        finally:
            receiver.close()
        return self.exit_code

    def request_stop(self, why: str) -> None:
        if not self._stop.is_set():
            logger.info("supervisor.stopping", reason=why)
            self.state = "stopping"
            self._stop.set()

    async def _shutdown(self) -> None:
        for slot in [*self.gateways, self.worker]:
            if slot.respawn is not None:
                slot.respawn.cancel()
        await self._stop_slots(self.gateways, GATEWAY_GRACE)
        await self._stop_slots([self.worker], WORKER_GRACE)
        kill_orphans(self._known_pids())
        self.state = "stopped"
        self._write_status()
        logger.info("supervisor.stopped", exit_code=self.exit_code)

    async def _stop_slots(self, slots: list[Slot], grace: float) -> None:
        live = [s for s in slots if s.child is not None]
        for slot in live:
            slot.state = "stopping"
            assert slot.child is not None
            slot.child.signal(signal.SIGTERM)
        self._write_status()
        waits = [asyncio.wait_for(s.exited.wait(), grace) for s in live]
        results = await asyncio.gather(*waits, return_exceptions=True)
        for slot, result in zip(live, results, strict=True):
            if isinstance(result, TimeoutError) and slot.child is not None:
                logger.warning("child.kill", child=slot.name, pid=slot.pid, after_s=grace)
                slot.child.signal(signal.SIGKILL)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(slot.exited.wait(), 2.0)

    # --- children -----------------------------------------------------------------------------

    def _spawn(self, slot: Slot) -> None:
        slot.respawn = None
        if self._stop.is_set():
            return
        child = ChildProcess(
            slot.role, slot.name, slot.make_config(), run_as=self.run_as.get(slot.role)
        )
        slot.child = child
        slot.exited = asyncio.Event()
        slot.state = "starting"
        slot.last_beat = None
        slot.beat = None
        asyncio.get_running_loop().add_reader(child.sentinel, self._on_exit, slot, child)
        logger.info("child.spawned", child=slot.name, pid=child.pid)
        self._write_status()

    def _on_exit(self, slot: Slot, child: ChildProcess) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(child.sentinel)
        code = child.reap()
        child.kill_group()
        child.close()
        slot.child = None
        slot.beat = None
        slot.exited.set()
        if slot.role == "worker":
            self.claude_pid = None  # it dies with the worker (parent-death signal)
        else:
            _unlink_ipc(child.config.endpoint)  # the next incarnation binds a fresh id
        kill_orphans(self._known_pids())
        now = time.monotonic()
        uptime = now - child.started_at
        if self._stop.is_set():
            slot.state = "stopped"
            logger.info("child.exited", child=slot.name, pid=child.pid, code=code)
            self._write_status()
            return
        logger.warning(
            "child.exited", child=slot.name, pid=child.pid, code=code, uptime_s=round(uptime, 2)
        )
        decision = slot.history.decide(
            self.policy, now=now, started_at=child.started_at, exit_code=code, rng=self.rng
        )
        if isinstance(decision, GiveUp):
            slot.state = "failed"
            logger.error(
                "child.gave_up",
                child=slot.name,
                restarts=decision.restarts,
                within_s=decision.period,
                code=code,
            )
            self.exit_code = 1
            self.request_stop(f"{slot.name} kept dying")
            self._write_status()
            return
        slot.state = "backoff"
        slot.restarts += 1
        logger.info(
            "child.restarting",
            child=slot.name,
            delay_s=round(decision.delay, 3),
            attempt=decision.attempt,
            restarts=slot.restarts,
        )
        slot.respawn = loop.call_later(decision.delay, self._spawn, slot)
        self._write_status()

    def _known_pids(self) -> set[int]:
        known = {s.pid for s in [self.worker, *self.gateways] if s.pid is not None}
        tracker = _resource_tracker_pid()
        if tracker is not None:
            known.add(tracker)
        return known

    # --- heartbeats ---------------------------------------------------------------------------

    async def _heartbeats(self, receiver: Receiver) -> None:
        while True:
            frame = await receiver.recv()
            try:
                beat = supervisor_codec.decode(frame)
            except DecodeError as exc:
                logger.warning("heartbeat.dropped", error=str(exc))
                continue
            self._on_beat(beat)

    def _on_beat(self, beat: WorkerHeartbeat | GatewayHeartbeat) -> None:
        slots = [self.worker] if isinstance(beat, WorkerHeartbeat) else self.gateways
        slot = next((s for s in slots if s.pid == beat.pid), None)
        if slot is None:
            return  # a stale incarnation, or a gateway run by hand against our worker
        slot.last_beat = time.monotonic()
        slot.beat = beat
        if slot.state == "starting":
            slot.state = "running"
            logger.info("child.ready", child=slot.name, pid=slot.pid)
        if isinstance(beat, WorkerHeartbeat):
            self.claude_restarts.seen(beat.pid, beat.claude_pid, beat.claude_restarts)
            self.claude_pid = beat.claude_pid
            self.thread_id = beat.thread_id or self.thread_id
        elif beat.thread_id:
            self.thread_id = self.thread_id or beat.thread_id
        self._write_status()

    async def _watch(self) -> None:
        """Kill a child whose heartbeats stopped (a hung event loop); reap stray orphans."""
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            for slot in [self.worker, *self.gateways]:
                child = slot.child
                if child is None:
                    continue
                since = slot.last_beat if slot.last_beat is not None else child.started_at
                if now - since > self.heartbeat_limit:
                    logger.error(
                        "child.hung", child=slot.name, pid=child.pid, silent_s=round(now - since, 1)
                    )
                    slot.last_beat = now  # one kill per silence; the sentinel does the rest
                    child.signal(signal.SIGKILL)
            kill_orphans(self._known_pids())

    # --- status -------------------------------------------------------------------------------

    def status(self) -> Status:
        def entry(slot: Slot) -> ChildStatus:
            gateway = slot.beat if isinstance(slot.beat, GatewayHeartbeat) else None
            return ChildStatus(
                name=slot.name,
                pid=slot.pid,
                state=slot.state,
                restarts=slot.restarts,
                last_exit=slot.history.last_exit,
                connected=gateway.connected if gateway else None,
                gateway_id=gateway.gateway_id if gateway else None,
            )

        beat = self.worker.beat if isinstance(self.worker.beat, WorkerHeartbeat) else None
        gateways = [entry(s) for s in self.gateways]
        return Status(
            supervisor=SupervisorStatus(
                pid=os.getpid(),
                state=self.state,
                started_at=self.started_at,
                start_ticks=start_ticks(os.getpid()),
                uptime_s=round(time.time() - self.started_at, 1),
            ),
            gateway=gateways[0],
            gateways=gateways,
            worker=entry(self.worker),
            claude=ClaudeStatus(
                pid=self.claude_pid if self.worker.child is not None else None,
                session_id=beat.session_id if beat else None,
                restarts=self.claude_restarts.count,
                queue=beat.queue if beat else 0,
                model=beat.model if beat else None,
                permission_mode=beat.permission_mode if beat else None,
                pending_approvals=beat.pending_approvals if beat else 0,
                turns=beat.turns if beat else 0,
                cost_usd=beat.cost_usd if beat else 0.0,
            ),
            thread_id=self.thread_id or None,
            state_dir=self.state_dir,
        )

    def _write_status(self) -> None:
        status = self.status()
        # Written when something changed, not for the uptime alone (readers compute it).
        comparable = msgspec.structs.replace(
            status, supervisor=msgspec.structs.replace(status.supervisor, uptime_s=0)
        )
        if comparable == self._last_status:
            return
        self._last_status = comparable
        try:
            write_status(self._status_path, status)
        except OSError as exc:
            logger.warning("status.write_failed", error=str(exc))


def _unlink_ipc(endpoint: str) -> None:
    """Remove the socket file a dead gateway bound, so run/ does not fill with them."""
    if endpoint.startswith("ipc://"):
        with contextlib.suppress(OSError):
            os.unlink(endpoint[len("ipc://") :])


def _resource_tracker_pid() -> int | None:
    """multiprocess's spawn start method runs a resource tracker as our child: not an orphan."""
    try:
        from multiprocess import resource_tracker

        pid = resource_tracker._resource_tracker._pid
    except (ImportError, AttributeError):
        return None
    return int(pid) if pid else None


def run_supervisor(settings: Settings, *, gateways: int | None = None) -> int:
    """Run the tree in the foreground until SIGTERM/SIGINT (0) or a crash loop (1)."""
    setup_logging(
        "supervisor",
        level=settings.log_level,
        fmt=settings.log_format,
        secrets=(settings.token,),
    )
    # The children get what they need through their configs; none inherits a Mattermost
    # variable (the worker's claude must never see the token, and /proc/<pid>/environ of a
    # child would show it). Prefer MATTERMOST_TOKEN_FILE: the supervisor's own initial
    # environment cannot be scrubbed.
    drop_mattermost(os.environ)
    run_as = None
    try:
        if settings.worker_user:
            # Root: each role under its own user (supervisor.users); every socket 0660.
            run_as = resolve(settings.worker_user, settings.gateway_user)
            layout_state_dir(settings.state_dir, run_as["worker"], run_as["gateway"])
            os.umask(UMASK)
            logger.info(
                "supervisor.users", worker=settings.worker_user, gateway=settings.gateway_user
            )
        prepare_state_dir(settings.state_dir)  # before anything binds (the CLI checked too)
    except StateDirError as exc:
        logger.error("state_dir.refused", error=str(exc))
        return 2
    heartbeat = settings.supervisor_endpoint()
    worker_config = msgspec.structs.replace(settings.worker_config(), heartbeat_endpoint=heartbeat)

    def make_gateway_config() -> GatewayConfig:
        return msgspec.structs.replace(settings.gateway_config(), heartbeat_endpoint=heartbeat)

    supervisor = Supervisor(
        worker_config,
        make_gateway_config,
        gateways=gateways or settings.gateways,
        state_dir=settings.state_dir,
        heartbeat_limit=settings.heartbeat_limit,
        policy=RestartPolicy(max_restarts=settings.max_restarts, period=settings.restart_period),
        run_as=run_as,
    )
    try:
        return asyncio.run(supervisor.run())
    finally:
        stop_resource_tracker()  # no process of ours may outlive us, not even for a moment
