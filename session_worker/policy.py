"""Pure decisions of the worker: restart backoff and the texts the user sees when Claude fails.

No I/O and no clock of its own (``now`` is passed in), so every rule is a unit test.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from protocol import EMPTY_ANSWER
from protocol.backoff import backoff_delay

__all__ = [
    "CONTEXT_LOST_NOTE",
    "SEE_LOG",
    "Backoff",
    "context_lost",
    "cut_note",
    "describe_exit",
    "failed_answer",
    "non_empty",
    "not_started_answer",
    "overlong_result_answer",
    "queue_full_answer",
    "skipped_lines_note",
    "stopped_answer",
    "turn_error_answer",
    "worker_died_answer",
]

# Seconds before the n-th consecutive respawn of claude (protocol.backoff's rule, no jitter:
# one claude): quick at first (a one-off crash), 0.2, 0.4, 0.8 … then at most 5 s, so that
# a claude that cannot start does not spin the CPU.
RESPAWN_INITIAL = 0.2
RESPAWN_CAP = 5.0
# A claude that ran this long (seconds) without dying counts as stable: the backoff resets.
STABLE_AFTER = 10.0

CONTEXT_LOST_NOTE = (
    "ℹ️ The earlier Claude session could not be resumed, so this answer comes from a new "
    "session: the earlier context of this thread was lost."
)


@dataclass
class Backoff:
    """Delay before the next respawn of claude; resets once it ran stably or answered."""

    failures: int = 0
    started_at: float | None = None

    def started(self, now: float) -> None:
        self.started_at = now

    def delay(self, now: float) -> float:
        """Called when claude died: how long to wait before spawning it again."""
        if self.started_at is not None and now - self.started_at >= STABLE_AFTER:
            self.failures = 0
        delay = backoff_delay(self.failures, initial=RESPAWN_INITIAL, cap=RESPAWN_CAP)
        self.failures += 1
        return delay

    def reset(self) -> None:
        """A turn completed: claude works, so the next death is a first one again."""
        self.failures = 0


def describe_exit(returncode: int | None) -> str:
    """An exit status in words: "exit code 3", "killed by signal SIGKILL"."""
    if returncode is None:
        return "an unknown exit status"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = str(-returncode)
        return f"killed by signal {name}"
    return f"exit code {returncode}"


# Where the details of a failure are: claude's error output (paths, environment names,
# stack traces) stays in the bot's log and never reaches the thread.
SEE_LOG = "see the bot's log for claude's error output"


def failed_answer(tries: int, returncode: int | None) -> str:
    """The answer when claude died on every one of ``tries`` runs of the prompt: the exit
    status only (its stderr is logged, see :data:`SEE_LOG`)."""
    return (
        f"⚠️ Claude could not answer this message: the claude process died {tries} times "
        f"while working on it (last: {describe_exit(returncode)}; {SEE_LOG}). It was not "
        "retried again; send it again to retry."
    )


def worker_died_answer(tries: int) -> str:
    """The answer to a prompt found running at start with every try used: the worker itself
    died while running it (on the last try at least; claude may have died on others)."""
    return (
        f"⚠️ Claude could not answer this message: its run was cut short by a crash {tries} "
        "times, the last time because the bot's session worker itself died while working on "
        "it. It was not retried again, in case it is what crashes the worker; send it again "
        "to retry."
    )


def not_started_answer(tries: int, returncode: int | None) -> str:
    """The answer when claude could not even be started ``tries`` times: how the last try
    ended, in words of ours (the exception text names paths: it is logged instead)."""
    how = "it did not become ready" if returncode is None else describe_exit(returncode)
    return (
        f"⚠️ Claude could not answer this message: the claude process could not be started "
        f"({tries} tries; last: {how}; {SEE_LOG})."
    )


def stopped_answer(idle_s: float, killed: bool, partial: str) -> str:
    """The answer to a turn the watchdog stopped (claude silent for ``idle_s``)."""
    how = (
        "it did not react to the interrupt, so the claude process was restarted"
        if killed
        else "it was interrupted"
    )
    text = (
        f"⚠️ Claude stopped responding for {idle_s:g} s, so this turn was stopped ({how}). "
        "Send the message again to retry."
    )
    if partial.strip():
        text += f"\n\nWhat Claude had written before it stopped:\n\n{partial}"
    return text


ERROR_DETAIL = 300  # characters of the CLI's error list shown in the thread (all are logged)


def turn_error_answer(subtype: str, text: str, errors: tuple[str, ...]) -> str:
    """The answer to a turn that ended with an error result: the CLI's own words, its
    result text, or else the first line of each error, short (a stack trace is for the
    log, where the runner puts the whole list)."""
    if text.strip():
        return text
    firsts = [e.strip().splitlines()[0] for e in errors if e.strip()]
    detail = "; ".join(firsts) if firsts else "no details"
    if len(detail) > ERROR_DETAIL:
        detail = detail[: ERROR_DETAIL - 1] + "…"
    return f"⚠️ Claude ended this turn with an error ({subtype}): {detail}"


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):,.1f} MB"


def overlong_result_answer(size: int, limit: int, partial: str) -> str:
    """The answer to a turn whose final result line was over the line limit (unreadable)."""
    text = (
        f"⚠️ Claude's answer to this message could not be read: its output line was "
        f"{_mb(size)}, over the bot's limit of {_mb(limit)}. The session goes on; ask for a "
        "shorter answer, or for the text to be written to a file."
    )
    if partial.strip():
        text += f"\n\nWhat Claude had written before it:\n\n{partial}"
    return text


def skipped_lines_note(sizes: tuple[int, ...], limit: int) -> str:
    """The note under an answer when output lines of claude's were skipped for their size."""
    what = "an output line" if len(sizes) == 1 else f"{len(sizes)} output lines"
    return (
        f"⚠️ Claude wrote {what} of up to {_mb(max(sizes))} during this turn, over the bot's "
        f"limit of {_mb(limit)}; skipped, so this answer may miss part of what happened."
    )


def queue_full_answer(limit: int) -> str:
    """The refusal of a prompt whose author already has ``limit`` prompts waiting."""
    return (
        f"⚠️ Not queued: you already have {limit} messages waiting for Claude (the limit "
        "per user). Send this one again once some of them are answered."
    )


def cut_note(chars: int, saved_as: str | None) -> str:
    """The note under an answer cut for its size: where the whole text is."""
    if saved_as is None:
        where = "the whole text could not be saved (see the bot's log)"
    else:
        where = (
            f"the whole answer is in `{saved_as}` in Claude's working directory "
            f"(`!file {saved_as}` posts it)"
        )
    return f"✂️ This answer was cut: it is {chars:,} characters long; {where}."


def context_lost(text: str) -> str:
    """Prefix an answer with the notice that the earlier session could not be resumed."""
    return f"{CONTEXT_LOST_NOTE}\n\n{text}"


def non_empty(text: str) -> str:
    """Mattermost refuses empty posts: an empty answer becomes a short placeholder."""
    return text if text.strip() else EMPTY_ANSWER


def user_stopped_answer(who: str, partial: str, killed: bool = False) -> str:
    """The answer to a turn an allowed user stopped with ``!stop``."""
    text = f"⏹️ Stopped by {who or 'a user'} (`!stop`)."
    if killed:
        text += " Claude did not react to the interrupt, so its process was restarted."
    if partial.strip():
        text += f"\n\nWhat Claude had written before it stopped:\n\n{partial}"
    else:
        text += " Claude had not written anything yet."
    return text
