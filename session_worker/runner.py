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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from loguru import logger

from session_worker import files, policy
from session_worker.activity import ACTIVITY_AFTER, ActivityView, activity_key, summary_line
from session_worker.child import ClaudeChild
from session_worker.errors import ChildExitedError, ChildStartError
from session_worker.ndjson import TurnInterpreter, TurnOutcome
from session_worker.proctree import sweep_orphans
from session_worker.states import Finish, GiveUp, PromptRow, Requeue, Start, State

if TYPE_CHECKING:
    from collections.abc import Callable

    from session_worker.config import WorkerConfig
    from session_worker.journal import Journal

__all__ = ["Runner"]

START_TIMEOUT = 30.0  # spawn → initialize answered (the real CLI needs ~0.5 s)


@dataclass(frozen=True)
class _Answered:
    outcome: TurnOutcome


@dataclass(frozen=True)
class _Stopped:
    killed: bool
    partial: str


@dataclass(frozen=True)
class _Died:
    returncode: int | None
    stderr_tail: str


_logged_unknown: set[str] = set()


class Runner:
    """The queue runner; :meth:`run` lives as long as the worker.

    ``on_answered`` is called with each row right after its answer is committed;
    ``on_turn_start`` when a prompt is written to claude.
    """

    def __init__(
        self,
        config: WorkerConfig,
        journal: Journal,
        *,
        on_answered: Callable[[PromptRow], None],
        on_turn_start: Callable[[PromptRow], None],
    ) -> None:
        self.config = config
        self.journal = journal
        self.on_answered = on_answered
        self.on_turn_start = on_turn_start
        self.child: ClaudeChild | None = None
        self.restarts = 0
        self.current: PromptRow | None = None
        self.turn_started = 0.0
        # MMCLAUDE_LIVE: the running turn's view; `activity_changes` counts its changes.
        self.activity: ActivityView | None = None
        self.activity_changes = 0
        # result.total_cost_usd is cumulative per claude process: the last one seen, so a
        # turn's own cost is the difference.
        self._process_cost = 0.0
        self._wake = asyncio.Event()
        self._backoff = policy.Backoff()

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
                self.turn_started = time.monotonic()
                self._finish(row, policy.worker_died_answer(row.tries), is_error=True,
                             subtype="worker_died", give_up=True)  # fmt: skip

    async def _idle(self, child: ClaudeChild) -> None:
        """Wait for a prompt or for claude's death (a bounded wait, re-checked)."""
        self._wake.clear()
        waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(child.wait_eof())]
        try:
            await asyncio.wait(waits, timeout=5.0, return_when="FIRST_COMPLETED")
        finally:
            for w in waits:
                w.cancel()

    # --- the child ----------------------------------------------------------------------

    async def _retire(self, child: ClaudeChild) -> int | None:
        returncode = await child.stop()
        # Exclude claude itself in case it is still unreaped: asyncio must collect its status.
        await sweep_orphans(exclude={child.pid} if child.pid else set())
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
            child = ClaudeChild(self.config, session_id)
            began = time.monotonic()
            try:
                await child.start(timeout=START_TIMEOUT)
            except ChildStartError as exc:
                await self._retire(child)
                if exc.no_conversation and session_id:
                    self._session_lost(session_id)
                    continue
                logger.bind(error=str(exc), stderr=exc.stderr_tail[-500:]).error(
                    "claude.start_failed"
                )
                self._charge_head(exc)
                await asyncio.sleep(self._backoff.delay(time.monotonic()))
                continue
            self.child = child
            self._backoff.started(time.monotonic())
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
        if row.tries >= self.config.max_tries:
            text = policy.not_started_answer(row.tries, str(exc), exc.stderr_tail)
            self._finish(row, text, is_error=True)
        else:
            self.journal.apply(row.post_id, Requeue())

    # --- one turn -----------------------------------------------------------------------

    async def _turn(self, child: ClaudeChild, row: PromptRow) -> None:
        row = self.journal.apply(row.post_id, Start())
        self.current, self.turn_started = row, time.monotonic()
        log = logger.bind(post_id=row.post_id, attempt=row.tries, chars=len(row.text))
        log.debug("turn.started")
        self.on_turn_start(row)
        try:
            with logger.contextualize(post_id=row.post_id):  # on the watchdog's lines too
                result = await self._drive(child, row)
        finally:
            self.current = None
        match result:
            case _Answered(outcome=outcome):
                self._backoff.reset()
                text = outcome.text
                if outcome.is_error:
                    text = policy.turn_error_answer(outcome.subtype, text, outcome.errors)
                self._finish(row, text, is_error=outcome.is_error, subtype=outcome.subtype)
            case _Stopped(killed=killed, partial=partial):
                text = policy.stopped_answer(self.config.idle_limit, killed, partial)
                self._finish(row, text, is_error=True, subtype="stopped")
            case _Died(returncode=code, stderr_tail=tail):
                if child.no_conversation and child.session_id:
                    self._session_lost(child.session_id)
                    self.journal.apply(row.post_id, Requeue(refund=True))
                elif row.tries >= self.config.max_tries:
                    text = policy.failed_answer(row.tries, code, tail)
                    self._finish(row, text, is_error=True, subtype="died")
                else:
                    self.journal.apply(row.post_id, Requeue())
                    log.bind(code=code).warning("turn.retry")

    async def _drive(self, child: ClaudeChild, row: PromptRow) -> _Answered | _Stopped | _Died:
        stale = child.drain()
        if stale:
            logger.bind(events=stale).debug("claude.stale_events_dropped")
        interp = TurnInterpreter()
        self.activity = ActivityView() if self.config.live else None
        self.activity_changes = 0
        try:
            logger.debug("hop.claude_write", post_id=row.post_id, t_ns=time.monotonic_ns())
            workdir = Path(self.config.claude_workdir)
            manifest = files.load_manifest(workdir, row.post_id)
            images = files.image_blocks(workdir, manifest) if manifest else []
            await child.send_user(row.text, images)
            while True:
                idle_left = child.last_activity + self.config.idle_limit - time.monotonic()
                if idle_left <= 0:
                    return await self._stop_hung(child, interp)
                event = await child.next_event(timeout=idle_left)
                if event is not None and (outcome := self._feed(interp, event)) is not None:
                    logger.debug("hop.claude_result", post_id=row.post_id, t_ns=time.monotonic_ns())
                    return _Answered(outcome)
        except ChildExitedError:
            code = await child.stop()
            return _Died(code, child.stderr_tail())

    async def _stop_hung(self, child: ClaudeChild, interp: TurnInterpreter) -> _Stopped:
        logger.bind(idle_s=self.config.idle_limit, claude_pid=child.pid).warning("turn.stalled")
        try:
            await child.interrupt()
            deadline = time.monotonic() + self.config.interrupt_grace
            while (left := deadline - time.monotonic()) > 0:
                event = await child.next_event(timeout=left)
                if event is not None and (outcome := self._feed(interp, event)) is not None:
                    logger.info("turn.interrupted")
                    return _Stopped(killed=False, partial=interp.partial_text or outcome.text)
        except ChildExitedError:
            pass
        logger.bind(claude_pid=child.pid).warning("turn.killed")
        await child.stop()
        return _Stopped(killed=True, partial=interp.partial_text)

    def _feed(self, interp: TurnInterpreter, event: dict[str, object]) -> TurnOutcome | None:
        if self.activity is not None and self.activity.feed(event):
            self.activity_changes += 1
        outcome = interp.feed(event)
        sid = interp.session_id
        if sid and sid != self.journal.session_id:
            # Stored at once: a crash right after must still resume this session.
            self.journal.session_id = sid
            self.journal.set_meta("session_has_turns", None)
            logger.bind(session_id=sid).info("session.started")
        if outcome is not None and self.journal.meta("session_has_turns") is None:
            self.journal.set_meta("session_has_turns", "1")
        for kind in interp.unknown_types - _logged_unknown:
            _logged_unknown.add(kind)
            logger.bind(event_type=kind).info("claude.unknown_event")
        return outcome

    def _finish(
        self, row: PromptRow, text: str, *, is_error: bool, subtype: str = "", give_up: bool = False
    ) -> None:
        # The notice of a lost session goes with the next answer that comes from claude.
        if not give_up and self.journal.meta("context_lost"):
            text = policy.context_lost(text)
        text = policy.non_empty(text)
        manifest = files.load_manifest(Path(self.config.claude_workdir), row.post_id)
        note = files.skipped_note(manifest)
        if note:
            text = f"{note}\n\n{text}"
        event = GiveUp(text) if give_up else Finish(text, is_error)
        elapsed = time.monotonic() - self.turn_started
        cost = None if give_up else self._turn_cost()
        if (
            not give_up
            and self.activity is not None
            and (elapsed >= ACTIVITY_AFTER or row.tries > 1)
        ):
            # The line the turn's activity post is reduced to, delivered with the answer (a
            # retried turn may have left a post from its earlier try, however short it is now).
            line = summary_line(elapsed, self.activity.tool_calls, cost, ok=not is_error)
            self.journal.set_meta(activity_key(row.post_id), line)
        row = self.journal.apply(row.post_id, event)
        if not give_up:
            self.journal.set_meta("context_lost", None)
        ms = round((time.monotonic() - self.turn_started) * 1000)
        logger.bind(
            post_id=row.post_id, ms=ms, is_error=is_error, subtype=subtype, chars=len(text)
        ).info("turn.complete")
        self.on_answered(row)

    def _turn_cost(self) -> float | None:
        total = self.activity.cost_usd if self.activity is not None else None
        if total is None:
            return None
        cost = total - self._process_cost if total >= self._process_cost else total
        self._process_cost = total
        return cost

    async def _shutdown(self) -> None:
        """Stop claude and its tools; a prompt still running is queued for the next start."""
        for row in self.journal.rows(State.RUNNING):
            with contextlib.suppress(Exception):
                self.journal.apply(row.post_id, Requeue(refund=True))
        child, self.child = self.child, None
        if child is not None:
            await self._retire(child)
        else:
            await sweep_orphans(exclude=())
