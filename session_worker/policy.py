"""Pure decisions of the worker: restart backoff and the texts the user sees when Claude fails.

No I/O and no clock of its own (``now`` is passed in), so every rule is a unit test.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

__all__ = [
    "CONTEXT_LOST_NOTE",
    "EMPTY_ANSWER",
    "Backoff",
    "context_lost",
    "describe_exit",
    "failed_answer",
    "non_empty",
    "not_started_answer",
    "stopped_answer",
    "turn_error_answer",
    "worker_died_answer",
]

# Seconds before the n-th consecutive respawn of claude: quick at first (a one-off crash),
# then slower so a claude that cannot start does not spin the CPU.
BACKOFF_STEPS = (0.2, 0.5, 1.0, 2.0, 5.0)
# A claude that ran this long (seconds) without dying counts as stable: the backoff resets.
STABLE_AFTER = 10.0

EMPTY_ANSWER = "(Claude finished this turn without writing any text.)"
CONTEXT_LOST_NOTE = (
    "ℹ️ The earlier Claude session could not be resumed, so this answer comes from a new "
    "session: the earlier context of this thread was lost."
)


@dataclass
class Backoff:
    """Delay before the next respawn: 0 for the first start, then :data:`BACKOFF_STEPS`."""

    failures: int = 0
    started_at: float | None = None

    def started(self, now: float) -> None:
        self.started_at = now

    def delay(self, now: float) -> float:
        """Called when claude died: how long to wait before spawning it again."""
        if self.started_at is not None and now - self.started_at >= STABLE_AFTER:
            self.failures = 0
        step = BACKOFF_STEPS[min(self.failures, len(BACKOFF_STEPS) - 1)]
        self.failures += 1
        return step

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


def _tail_block(stderr_tail: str) -> str:
    tail = stderr_tail.strip()
    if not tail:
        return ""
    return f"\n\nThe end of its error output:\n```\n{tail[-1500:]}\n```"


def failed_answer(tries: int, returncode: int | None, stderr_tail: str) -> str:
    """The answer when claude died on every one of ``tries`` runs of the prompt."""
    return (
        f"⚠️ Claude could not answer this message: the claude process died {tries} times "
        f"while working on it (last: {describe_exit(returncode)}). It was not retried again; "
        f"send it again to retry.{_tail_block(stderr_tail)}"
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


def not_started_answer(tries: int, reason: str, stderr_tail: str) -> str:
    """The answer when claude could not even be started ``tries`` times."""
    return (
        f"⚠️ Claude could not answer this message: the claude process could not be started "
        f"({tries} tries; last: {reason}).{_tail_block(stderr_tail)}"
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


def turn_error_answer(subtype: str, text: str, errors: tuple[str, ...]) -> str:
    """The answer to a turn that ended with an error result: the CLI's own words."""
    if text.strip():
        return text
    detail = "; ".join(errors) if errors else "no details"
    return f"⚠️ Claude ended this turn with an error ({subtype}): {detail}"


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
