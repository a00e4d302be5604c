"""Runs the journal's queued prompts through the one claude child, one turn at a time.

It owns the child: spawns it eagerly (so a pid is always reported), respawns it with
``--resume`` and backoff when it dies, falls back to a fresh session when the CLI does not
know the stored one, and runs the watchdog of each turn (no stdout event for
``idle_limit`` → interrupt → no result within ``interrupt_grace`` → kill). A turn whose
claude died is run again, ``max_tries`` runs in all, then answered with the failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from loguru import logger

from protocol.proctree import sweep_orphans
from session_worker import answers, files, policy
from session_worker.activity import ACTIVITY_AFTER, ActivityView, activity_key, summary_line
from session_worker.child import ChildLike, ClaudeChild
from session_worker.errors import ChildExitedError, ChildStartError
from session_worker.ndjson import TurnInterpreter, TurnOutcome, encode_control_response
from session_worker.outcomes import (
    Answered,
    Died,
    Ending,
    Rules,
    StartFailed,
    Stopped,
    TurnEnd,
    Verdict,
    WorkerDied,
    decide,
)
from session_worker.states import Finish, GiveUp, PromptRow, Requeue, Start, State
from session_worker.turn import Turn

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Collection

    from session_worker.child import SpawnChild
    from session_worker.config import WorkerConfig
    from session_worker.journal import Journal

__all__ = ["Runner"]

START_TIMEOUT = 30.0  # spawn → initialize answered (the real CLI needs ~0.5 s)
STDERR_LOGGED = 1500  # characters of claude's stderr tail put in the log line of a death
CONTROL_TIMEOUT = 10.0  # set_model / set_permission_mode answered


_logged_unknown: set[str] = set()
MAX_LOGGED_UNKNOWN = 256


class TurnHooks(Protocol):
    """What the runner tells the worker's controls (tool approvals) during a turn."""

    def tool_requested(self, row: PromptRow, event: dict[str, Any]) -> None: ...
    def tool_cancelled(self, request_id: str) -> None: ...
    def turn_ended(self, row: PromptRow, completed: bool) -> None: ...
    def waiting(self) -> bool: ...


class _NoHooks:
    def tool_requested(self, row: PromptRow, event: dict[str, Any]) -> None:
        return None

    def tool_cancelled(self, request_id: str) -> None:
        return None

    def turn_ended(self, row: PromptRow, completed: bool) -> None:
        return None

    def waiting(self) -> bool:
        return False


class Runner:
    """The queue runner; :meth:`run` lives as long as the worker.

    ``on_answered`` is called with each row right after its answer is committed. The
    running turn, if any, is :attr:`turn` (the worker's timers ask it what to send).
    """

    def __init__(
        self,
        config: WorkerConfig,
        journal: Journal,
        *,
        on_answered: Callable[[PromptRow], None],
        spawn: SpawnChild = ClaudeChild,
        sweep: Callable[[Collection[int]], Awaitable[object]] = sweep_orphans,
    ) -> None:
        self.config = config
        self.journal = journal
        self.on_answered = on_answered
        self._spawn = spawn  # makes the claude child (a scripted one in unit tests)
        self._sweep = sweep  # kills what claude's tools left behind
        self.child: ChildLike | None = None
        self.restarts = 0
        self.turn: Turn | None = None  # the running turn
        # result.total_cost_usd is cumulative per claude process: the last one seen, so a
        # turn's own cost is the difference.
        self._process_cost = 0.0
        self._wake = asyncio.Event()
        self._backoff = policy.Backoff()
        self.hooks: TurnHooks = _NoHooks()
        self.model: str | None = None  # as claude reported it (system/init, set_model)
        self._stop_by: str | None = None  # who asked !stop for the running turn
        self._stop_at = 0.0
        self._side_tasks: set[asyncio.Task[None]] = set()

    @property
    def epoch(self) -> str:
        """Changed by ``!new``: a child of another epoch holds the old session."""
        return self.journal.meta("session_epoch") or ""

    @property
    def permission_mode(self) -> str:
        return self.journal.meta("permission_mode") or self.config.permission_mode

    @property
    def current(self) -> PromptRow | None:
        """The prompt of the running turn."""
        return self.turn.row if self.turn is not None else None

    @property
    def turn_started(self) -> float:
        return self.turn.started if self.turn is not None else 0.0

    @property
    def rules(self) -> Rules:
        return Rules(max_tries=self.config.max_tries, idle_limit=self.config.idle_limit)

    def _decide(self, ending: Ending, row: PromptRow, stopped_by: str | None = None) -> Verdict:
        context_lost = self.journal.meta("context_lost") is not None
        return decide(
            ending, tries=row.tries, rules=self.rules, stopped_by=stopped_by,
            context_lost=context_lost,
        )  # fmt: skip

    # --- controls from the thread (called beside the turn, never behind it) ----------------

    def stop(self, who: str) -> PromptRow | None:
        """``!stop``: interrupt the running turn (same process, same session); its row."""
        row, child = self.current, self.child
        if row is None or child is None or not child.alive or self._stop_by is not None:
            return row if self._stop_by is not None else None
        self._stop_by, self._stop_at = who, time.monotonic()
        self._soon(child.interrupt(), "interrupt")
        logger.bind(post_id=row.post_id, by=who).info("turn.stop_requested")
        return row

    def apply_model(self) -> None:
        """``!model``: the journaled model goes to the running claude (set_model)."""
        child = self.child
        if child is not None and child.alive:
            self._soon(self._set_model(child), "set_model")

    def apply_mode(self) -> None:
        """``!mode``: the journaled permission mode goes to the running claude."""
        child = self.child
        if child is not None and child.alive:
            self._soon(self._set_mode(child, self.permission_mode), "set_permission_mode")

    def answer_tool(self, request_id: str, body: dict[str, Any], post_id: str = "") -> None:
        """Send claude our decision on its can_use_tool ``request_id``."""
        child = self.child
        if child is not None and child.alive:
            line = encode_control_response(request_id, body)

            async def write() -> None:
                await child.write_line(line)
                logger.bind(post_id=post_id, t_ns=time.monotonic_ns()).debug("hop.decision_written")

            self._soon(write(), "decision")

    def _soon(self, work: Any, what: str) -> None:
        async def guarded() -> None:
            try:
                await work
            except (ChildExitedError, TimeoutError) as exc:
                logger.bind(error=str(exc), what=what).warning("claude.control_failed")

        task = asyncio.create_task(guarded(), name=f"claude-{what}")
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    async def _set_model(self, child: ChildLike) -> None:
        model = self.journal.meta("model")
        reply = await child.request("set_model", CONTROL_TIMEOUT, model or "")
        got = reply.body.get("model")
        if reply.ok and isinstance(got, str) and got:
            self.model = got
        log = logger.bind(model=model, reported=got, ok=reply.ok, error=reply.error)
        (log.info if reply.ok else log.warning)("claude.model_set")

    async def _set_mode(self, child: ChildLike, mode: str) -> None:
        reply = await child.request("set_permission_mode", CONTROL_TIMEOUT, mode)
        log = logger.bind(mode=mode, ok=reply.ok, error=reply.error)
        (log.info if reply.ok else log.warning)("claude.mode_set")

    def _take_stop(self) -> str | None:
        """Who stopped the turn that just ended (None: nobody), forgotten from here on."""
        who, self._stop_by = self._stop_by, None
        return who

    async def _renew(self) -> None:
        """Retire the child of the old session; the next spawn starts a fresh one."""
        old, self.child = self.child, None
        if old is not None:
            await self._retire(old)
        logger.info("session.renewed")

    @property
    def claude_pid(self) -> int | None:
        return self.child.pid if self.child is not None and self.child.alive else None

    def wake(self) -> None:
        """A prompt was queued."""
        self._wake.set()

    async def run(self) -> None:
        try:
            self._give_up_exhausted()
            while True:
                if self.child is None or not self.child.alive:
                    await self._respawn()
                    continue
                row = self.journal.next_queued()
                if row is None:
                    await self._idle(self.child)
                    continue
                if self.child.epoch != self.epoch:
                    await self._renew()  # !new: a fresh session before this prompt
                    continue
                await self._turn(self.child, row)
        finally:
            await asyncio.shield(self._shutdown())

    def _give_up_exhausted(self) -> None:
        """At start: a queued prompt that already used ``max_tries`` was running when the
        worker died (a turn whose claude died is answered at once, never left queued like
        that). Running it again might kill the worker again, forever: answer it instead."""
        for row in self.journal.rows(State.QUEUED):
            if row.tries >= self.config.max_tries:
                logger.bind(post_id=row.post_id, tries=row.tries).warning("prompt.given_up")
                self._finish(row, self._decide(WorkerDied(), row))

    async def _idle(self, child: ChildLike) -> None:
        """Wait for a prompt or for claude's death (a bounded wait, re-checked)."""
        self._wake.clear()
        waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(child.wait_eof())]
        try:
            await asyncio.wait(waits, timeout=5.0, return_when="FIRST_COMPLETED")
        finally:
            for w in waits:
                w.cancel()

    # --- the child ----------------------------------------------------------------------

    async def _retire(self, child: ChildLike) -> int | None:
        returncode = await child.stop()
        # Exclude claude itself in case it is still unreaped: asyncio must collect its status.
        await self._sweep({child.pid} if child.pid else set())
        logger.bind(claude_pid=child.pid, code=returncode).info("claude.exited")
        return returncode

    async def _respawn(self) -> None:
        self._process_cost = 0.0  # a new process counts from zero
        old = self.child
        if old is not None:
            self.child = None
            await self._retire(old)
            delay = self._backoff.delay(time.monotonic())
            logger.bind(delay_s=delay).info("claude.restarting")
            await asyncio.sleep(delay)
        while True:
            session_id = self.journal.session_id
            child = self._spawn(self.config, session_id, self.permission_mode, self.epoch)
            began = time.monotonic()
            try:
                await child.start(timeout=START_TIMEOUT)
            except ChildStartError as exc:
                await self._retire(child)
                if exc.no_conversation and session_id:
                    self._session_lost(session_id)
                    continue
                logger.bind(error=str(exc), stderr=exc.stderr_tail[-STDERR_LOGGED:]).error(
                    "claude.start_failed"
                )
                self._charge_head(exc)
                await asyncio.sleep(self._backoff.delay(time.monotonic()))
                continue
            self.child = child
            self._backoff.started(time.monotonic())
            if self.journal.meta("model"):  # a !model survives every restart
                with contextlib.suppress(ChildExitedError, TimeoutError):
                    await self._set_model(child)
            ms = round((time.monotonic() - began) * 1000)
            logger.bind(claude_pid=child.pid, ms=ms, session_id=session_id).info("claude.spawned")
            if session_id:
                logger.bind(session_id=session_id).info("session.resumed")
            if old is not None:
                self.restarts += 1
                logger.bind(claude_pid=child.pid, restarts=self.restarts).info("claude.restarted")
            return

    def _session_lost(self, session_id: str) -> None:
        """The CLI does not know our session: start a fresh one and tell the next answer.

        A session that never finished a turn had no context to lose: no notice then.
        """
        had_history = self.journal.meta("session_has_turns") is not None
        logger.bind(session_id=session_id, had_history=had_history).warning("session.lost")
        self.journal.session_id = None
        self.journal.set_meta("session_has_turns", None)
        if had_history:
            self.journal.set_meta("context_lost", "1")

    def _charge_head(self, exc: ChildStartError) -> None:
        """A failed start costs the waiting prompt a try, so the user hears of it eventually."""
        row = self.journal.next_queued()
        if row is None:
            return
        row = self.journal.apply(row.post_id, Start())
        verdict = self._decide(StartFailed(exc.returncode), row)
        if isinstance(verdict.event, Requeue):
            self.journal.apply(row.post_id, verdict.event)
        else:
            self._finish(row, verdict)

    # --- one turn -----------------------------------------------------------------------

    async def _turn(self, child: ChildLike, row: PromptRow) -> None:
        row = self.journal.apply(row.post_id, Start())
        turn = self.turn = Turn.begin(row, time.monotonic(), live=self.config.live)
        log = logger.bind(post_id=row.post_id, attempt=row.tries, chars=len(row.text))
        log.debug("turn.started")
        self._stop_by = None
        result: TurnEnd | None = None
        try:
            with logger.contextualize(post_id=row.post_id):  # on the watchdog's lines too
                result = await self._drive(child, turn)
        finally:
            self.turn = None
            stopped_by = self._take_stop()
            # Requests of a turn that did not finish expire: the retry asks again.
            self.hooks.turn_ended(row, completed=isinstance(result, Answered | Stopped))
        if isinstance(result, Died):
            # The thread only hears the exit status: the stderr tail is for the operator.
            tail = result.stderr_tail[-STDERR_LOGGED:]
            log.bind(code=result.returncode, tries=row.tries, stderr=tail).warning(
                "turn.claude_died"
            )
        assert result is not None  # _drive returns or raises
        verdict = self._decide(result, row, stopped_by)
        if verdict.reset_backoff:
            self._backoff.reset()
        if verdict.errors:
            log.bind(subtype=verdict.subtype, errors=list(verdict.errors)).warning("turn.error")
        if verdict.session_lost and child.session_id:
            self._session_lost(child.session_id)
        if isinstance(verdict.event, Requeue):
            self.journal.apply(row.post_id, verdict.event)
            if not verdict.event.refund and isinstance(result, Died):
                log.bind(code=result.returncode).warning("turn.retry")
        else:
            self._finish(row, verdict, turn)

    async def _drive(self, child: ChildLike, turn: Turn) -> TurnEnd:
        row = turn.row
        stale = child.drain()
        if stale:
            logger.bind(events=stale).debug("claude.stale_events_dropped")
        if child.dropped_idle:
            logger.bind(events=child.dropped_idle).debug("claude.idle_events_dropped")
            child.dropped_idle = 0
        interp = TurnInterpreter()
        child.listening = True
        try:
            logger.bind(post_id=row.post_id, t_ns=time.monotonic_ns()).debug("hop.claude_write")
            workdir = Path(self.config.claude_workdir)
            manifest = files.load_manifest(workdir, row.post_id)
            images = files.image_blocks(workdir, manifest) if manifest else []
            await child.send_user(row.text, images)
            while True:
                now = time.monotonic()
                if self.hooks.waiting():  # a person decides: the approval timeout rules
                    child.last_activity = now
                idle_left = child.last_activity + self.config.idle_limit - now
                if self._stop_by is not None:
                    stop_left = self._stop_at + self.config.interrupt_grace - now
                    if stop_left <= 0:  # !stop, and no result: end it the hard way
                        logger.bind(claude_pid=child.pid).warning("turn.killed")
                        await child.stop()
                        return Stopped(killed=True, partial=interp.partial_text)
                    idle_left = min(idle_left, stop_left)
                if idle_left <= 0:
                    return await self._stop_hung(child, turn, interp)
                event = await child.next_event(timeout=min(idle_left, 1.0))
                if event is not None and event.get("type") == "control_request":
                    self.hooks.tool_requested(row, event)
                    continue
                if event is not None and event.get("type") == "control_cancel_request":
                    self.hooks.tool_cancelled(str(event.get("request_id", "")))
                    continue
                if event is not None and (outcome := self._feed(turn, interp, event)) is not None:
                    logger.bind(post_id=row.post_id, t_ns=time.monotonic_ns()).debug(
                        "hop.claude_result"
                    )
                    return Answered(outcome)
        except ChildExitedError:
            code = await child.stop()
            no_conversation = child.no_conversation and bool(child.session_id)
            return Died(code, child.stderr_tail(), no_conversation)
        finally:
            child.listening = False

    async def _stop_hung(self, child: ChildLike, turn: Turn, interp: TurnInterpreter) -> Stopped:
        logger.bind(idle_s=self.config.idle_limit, claude_pid=child.pid).warning("turn.stalled")
        try:
            await child.interrupt()
            deadline = time.monotonic() + self.config.interrupt_grace
            while (left := deadline - time.monotonic()) > 0:
                event = await child.next_event(timeout=left)
                if event is not None and (outcome := self._feed(turn, interp, event)) is not None:
                    logger.info("turn.interrupted")
                    return Stopped(killed=False, partial=interp.partial_text or outcome.text)
        except ChildExitedError:
            pass
        logger.bind(claude_pid=child.pid).warning("turn.killed")
        await child.stop()
        return Stopped(killed=True, partial=interp.partial_text)

    def _feed(
        self, turn: Turn, interp: TurnInterpreter, event: dict[str, object]
    ) -> TurnOutcome | None:
        turn.feed(event)
        outcome = interp.feed(event)
        sid = interp.session_id
        if event.get("type") == "system" and event.get("subtype") == "init":
            model = event.get("model")
            self.model = model if isinstance(model, str) and model else self.model
        if outcome is not None:
            self._account(event)
        if self.child is not None and self.child.epoch != self.epoch:
            sid = None  # a turn of the session !new left: never make it current again
        if sid and sid != self.journal.session_id:
            # Stored at once: a crash right after must still resume this session.
            self.journal.session_id = sid
            self.journal.set_meta("session_has_turns", None)
            logger.bind(session_id=sid).info("session.started")
        if outcome is not None and self.journal.meta("session_has_turns") is None:
            self.journal.set_meta("session_has_turns", "1")
        for kind in interp.unknown_types - _logged_unknown:
            if len(_logged_unknown) >= MAX_LOGGED_UNKNOWN:
                break  # a claude inventing types without end gets no more lines, nor memory
            _logged_unknown.add(kind)
            logger.bind(event_type=kind).info("claude.unknown_event")
        return outcome

    def _account(self, result: dict[str, object]) -> None:
        """Turns, cost and tokens of the session so far (for !status and status --json)."""
        child = self.child
        total = result.get("total_cost_usd")
        delta = 0.0
        if child is not None and isinstance(total, int | float) and not isinstance(total, bool):
            delta, child.cost_seen = max(0.0, float(total) - child.cost_seen), float(total)
        usage = result.get("usage")
        tokens_in = tokens_out = 0
        if isinstance(usage, dict):
            for key in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
                value = usage.get(key)
                tokens_in += value if isinstance(value, int) else 0
            value = usage.get("output_tokens")
            tokens_out = value if isinstance(value, int) else 0
        j = self.journal
        with j.transaction():  # one commit, not four
            j.set_meta("turns", str(int(j.meta("turns") or 0) + 1))
            j.set_meta("cost_usd", repr(float(j.meta("cost_usd") or 0) + delta))
            j.set_meta("tokens_in", str(int(j.meta("tokens_in") or 0) + tokens_in))
            j.set_meta("tokens_out", str(int(j.meta("tokens_out") or 0) + tokens_out))

    def _finish(self, row: PromptRow, verdict: Verdict, turn: Turn | None = None) -> None:
        """Journal the verdict's answer (cut to the thread's size, with the note on skipped
        attachments), then hand the row over for delivery. ``turn``: the run that ended
        (None: the prompt was not run this time, it is answered without one)."""
        started = turn.started if turn is not None else time.monotonic()
        activity = turn.activity if turn is not None else None
        give_up = not isinstance(verdict.event, Finish)
        is_error = verdict.is_error
        text = answers.cap(self.config.claude_workdir, row.post_id, verdict.text)
        manifest = files.load_manifest(Path(self.config.claude_workdir), row.post_id)
        note = files.skipped_note(manifest)
        if note:
            text = f"{note}\n\n{text}"
        event = GiveUp(text) if give_up else Finish(text, is_error)
        elapsed = time.monotonic() - started
        cost = None if give_up else self._turn_cost(activity)
        if not give_up and activity is not None and (elapsed >= ACTIVITY_AFTER or row.tries > 1):
            # The line the turn's activity post is reduced to, delivered with the answer (a
            # retried turn may have left a post from its earlier try, however short it is now).
            line = summary_line(elapsed, activity.tool_calls, cost, ok=not is_error)
            self.journal.set_meta(activity_key(row.post_id), line)
        row = self.journal.apply(row.post_id, event)
        if not give_up:
            self.journal.set_meta("context_lost", None)
        ms = round((time.monotonic() - started) * 1000)
        logger.bind(
            post_id=row.post_id, ms=ms, is_error=is_error, subtype=verdict.subtype, chars=len(text)
        ).info("turn.complete")
        self.on_answered(row)

    def _turn_cost(self, activity: ActivityView | None) -> float | None:
        total = activity.cost_usd if activity is not None else None
        if total is None:
            return None
        cost = total - self._process_cost if total >= self._process_cost else total
        self._process_cost = total
        return cost

    async def _shutdown(self) -> None:
        """Stop claude and its tools; a prompt still running is queued for the next start."""
        for task in list(self._side_tasks):  # control requests still in flight
            task.cancel()
        for row in self.journal.rows(State.RUNNING):
            with contextlib.suppress(Exception):
                self.journal.apply(row.post_id, Requeue(refund=True))
        child, self.child = self.child, None
        if child is not None:
            await self._retire(child)
        else:
            await self._sweep(())
