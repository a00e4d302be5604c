"""How a turn ended → what the journal records and what the thread reads, as one pure function.

The runner drives claude and reports how each run of a prompt ended (:data:`Ending`);
:func:`decide` turns that, the prompt's tries so far and the rules (``max_tries``, the
idle limit) into a :class:`Verdict`: the journal event (:class:`Finish`, :class:`Requeue`
or :class:`GiveUp`) with the answer text, and what the runner must do besides (forget a
session the CLI does not know, reset the respawn backoff). No I/O, no clock: every retry,
resume, watchdog, give-up and ``!stop`` rule is a millisecond unit test.

What stays with the runner because it is I/O: cutting an answer too long for the thread
(its whole text is written to a file) and the note about attachments that were skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

from session_worker import policy
from session_worker.ndjson import MAX_LINE, OVERLONG, TurnOutcome
from session_worker.states import Finish, GiveUp, Requeue

__all__ = [
    "Answered",
    "Died",
    "Ending",
    "Rules",
    "StartFailed",
    "Stopped",
    "TurnEnd",
    "Verdict",
    "WorkerDied",
    "decide",
]


@dataclass(frozen=True)
class Answered:
    """Claude wrote the turn's ``result`` (an error result too, or an unreadable one)."""

    outcome: TurnOutcome


@dataclass(frozen=True)
class Stopped:
    """The turn was interrupted (``killed``: claude ignored the interrupt and was killed),
    by the idle watchdog or by ``!stop``; ``partial`` is what claude had written."""

    killed: bool
    partial: str


@dataclass(frozen=True)
class Died:
    """Claude exited during the turn. ``no_conversation``: it refused to resume the session
    it was started with (the CLI does not know it)."""

    returncode: int | None
    stderr_tail: str
    no_conversation: bool = False


@dataclass(frozen=True)
class StartFailed:
    """Claude could not be started; the waiting prompt was charged a try for it."""

    returncode: int | None


@dataclass(frozen=True)
class WorkerDied:
    """At start, a queued prompt had used every try: the worker died running it."""


TurnEnd = Answered | Stopped | Died  # how a run of a prompt through claude ended
Ending = TurnEnd | StartFailed | WorkerDied


@dataclass(frozen=True)
class Rules:
    """The configured limits the verdicts depend on."""

    max_tries: int
    idle_limit: float


@dataclass(frozen=True)
class Verdict:
    """What the journal records (``event``) and what the runner does besides.

    ``subtype`` names the ending in the log (``turn.complete``); ``errors`` are the CLI's
    errors of an error result, for the log only; ``session_lost``: the CLI does not know the
    stored session, start a fresh one; ``reset_backoff``: claude works, so its next death is
    a first one again.
    """

    event: Finish | Requeue | GiveUp
    subtype: str = ""
    errors: tuple[str, ...] = ()
    session_lost: bool = False
    reset_backoff: bool = False

    @property
    def text(self) -> str:
        """The answer ("" when the prompt is queued again)."""
        return "" if isinstance(self.event, Requeue) else self.event.answer

    @property
    def is_error(self) -> bool:
        return isinstance(self.event, GiveUp) or (
            isinstance(self.event, Finish) and self.event.is_error
        )


def decide(
    ending: Ending,
    *,
    tries: int,
    rules: Rules,
    stopped_by: str | None = None,
    context_lost: bool = False,
) -> Verdict:
    """The verdict on a prompt run ``tries`` times that ended so.

    ``stopped_by``: who asked ``!stop`` for this turn (None: nobody); ``context_lost``: the
    session was replaced by a fresh one since the last answer, and this answer says so.
    """
    match ending:
        case WorkerDied():
            return Verdict(GiveUp(policy.worker_died_answer(tries)), subtype="worker_died")
        case StartFailed(returncode=code):
            if tries >= rules.max_tries:
                text = policy.not_started_answer(tries, code)
                return _finish(text, context_lost, subtype="")
            return Verdict(Requeue())
        case Answered(outcome=outcome) if stopped_by is not None and outcome.interrupted:
            text = policy.user_stopped_answer(stopped_by, outcome.text)
            return _finish(text, context_lost, "stopped_by_user", reset_backoff=True)
        case Stopped(killed=killed, partial=partial) if stopped_by is not None:
            text = policy.user_stopped_answer(stopped_by, partial, killed=killed)
            return _finish(text, context_lost, "stopped_by_user")
        case Answered(outcome=outcome):
            return _answered(outcome, context_lost)
        case Stopped(killed=killed, partial=partial):
            text = policy.stopped_answer(rules.idle_limit, killed, partial)
            return _finish(text, context_lost, "stopped")
        case Died(no_conversation=True):
            # Not the prompt's fault: it runs again, in a fresh session, with its try back.
            return Verdict(Requeue(refund=True), session_lost=True)
        case Died(returncode=code) if tries >= rules.max_tries:
            return _finish(policy.failed_answer(tries, code), context_lost, "died")
        case Died():
            return Verdict(Requeue())
    raise AssertionError(f"unhandled ending {ending!r}")  # pragma: no cover


def _answered(outcome: TurnOutcome, context_lost: bool) -> Verdict:
    text = outcome.text
    errors: tuple[str, ...] = ()
    if outcome.subtype == OVERLONG:
        size = outcome.skipped[-1] if outcome.skipped else 0
        text = policy.overlong_result_answer(size, MAX_LINE, text)
    elif outcome.is_error:
        errors = outcome.errors
        text = policy.turn_error_answer(outcome.subtype, text, outcome.errors)
    if outcome.skipped and outcome.subtype != OVERLONG:
        text += "\n\n" + policy.skipped_lines_note(outcome.skipped, MAX_LINE)
    return _finish(
        text,
        context_lost,
        outcome.subtype,
        is_error=outcome.is_error,
        errors=errors,
        reset_backoff=True,
    )


def _finish(
    text: str,
    context_lost: bool,
    subtype: str,
    *,
    is_error: bool = True,
    errors: tuple[str, ...] = (),
    reset_backoff: bool = False,
) -> Verdict:
    # The notice of a lost session goes with the next answer that comes from claude.
    if context_lost:
        text = policy.context_lost(text)
    return Verdict(
        Finish(policy.non_empty(text), is_error),
        subtype=subtype,
        errors=errors,
        reset_backoff=reset_backoff,
    )
