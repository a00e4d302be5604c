"""The life of one accepted prompt as pure transitions: queued → running → answered → delivered.

:func:`transition` takes a row and an event and returns the new row or raises
:class:`TransitionError`; the journal only stores what it returns. Keeping the rules here
makes every crash path (a turn that died, a worker restart, a prompt that used every try,
a duplicate ``Delivered``)
testable without SQLite or processes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from session_worker.errors import TransitionError

__all__ = [
    "Deliver",
    "Finish",
    "GiveUp",
    "PromptEvent",
    "PromptRow",
    "Recover",
    "Requeue",
    "Start",
    "State",
    "transition",
]


class State(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    ANSWERED = "answered"
    DELIVERED = "delivered"


@dataclass(frozen=True)
class PromptRow:
    """One journal row. ``tries`` counts sends to claude; the order key is (create_at, post_id)."""

    post_id: str
    create_at: int
    user_id: str
    username: str
    text: str
    gateway_id: str
    state: State = State.QUEUED
    tries: int = 0
    answer: str | None = None
    is_error: bool = False
    reply_ids: tuple[str, ...] = ()

    @property
    def order_key(self) -> tuple[int, str]:
        return (self.create_at, self.post_id)


@dataclass(frozen=True)
class Start:
    """The prompt is written to claude's stdin (one more try)."""


@dataclass(frozen=True)
class Finish:
    """The turn ended (or we gave up on it): this is the answer to deliver."""

    answer: str
    is_error: bool


@dataclass(frozen=True)
class Requeue:
    """The turn did not finish (claude died, or we shut down): run it again later.

    ``refund`` gives the try back: a clean shutdown is not the prompt's fault.
    """

    refund: bool = False


@dataclass(frozen=True)
class Recover:
    """The worker starts: a row left running by a dead worker is queued again, tries kept."""


@dataclass(frozen=True)
class GiveUp:
    """A queued prompt will not be run again (it used every try): this error is its answer."""

    answer: str


@dataclass(frozen=True)
class Deliver:
    """A gateway posted the whole answer (``reply_ids`` in order)."""

    reply_ids: tuple[str, ...]


PromptEvent = Start | Finish | Requeue | Recover | GiveUp | Deliver


def transition(row: PromptRow, event: PromptEvent) -> PromptRow:
    """The row after ``event``; :class:`TransitionError` when ``row.state`` forbids it.

    A repeated ``Deliver`` or ``Recover`` returns the row unchanged: both arrive again after
    crashes and must be harmless.
    """
    state = row.state
    match event:
        case Start() if state is State.QUEUED:
            return replace(row, state=State.RUNNING, tries=row.tries + 1)
        case Finish(answer=answer, is_error=is_error) if state is State.RUNNING:
            return replace(row, state=State.ANSWERED, answer=answer, is_error=is_error)
        case Requeue(refund=refund) if state is State.RUNNING:
            tries = max(row.tries - 1, 0) if refund else row.tries
            return replace(row, state=State.QUEUED, tries=tries)
        case GiveUp(answer=answer) if state is State.QUEUED:
            return replace(row, state=State.ANSWERED, answer=answer, is_error=True)
        case Recover():
            return replace(row, state=State.QUEUED) if state is State.RUNNING else row
        case Deliver(reply_ids=reply_ids) if state is State.ANSWERED:
            return replace(row, state=State.DELIVERED, reply_ids=reply_ids)
        case Deliver() if state is State.DELIVERED:
            return row
    raise TransitionError(
        f"prompt {row.post_id} is {state.value}: {type(event).__name__} is not allowed"
    )
