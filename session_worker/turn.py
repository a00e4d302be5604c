"""The running turn's life in one object: when it started, its live view, what it told the thread.

The :class:`~session_worker.runner.Runner` creates a :class:`Turn` when it writes a prompt to
claude and feeds it claude's events; the worker's timers ask it, every tick, for the
``Progress`` (typing) and ``Activity`` (the live view, MMCLAUDE_LIVE) messages now due.
No I/O and no clock of its own (``now`` is passed in): its timing rules are unit tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from protocol import Activity, Progress
from session_worker.activity import ACTIVITY_AFTER, ACTIVITY_EVERY, ActivityView

if TYPE_CHECKING:
    from collections.abc import Mapping

    from session_worker.states import PromptRow

__all__ = ["FIRST_PROGRESS_AFTER", "PROGRESS_EVERY", "Turn"]

# Typing matters only for turns a user waits on: a fast turn sends no Progress at all (each
# one costs the gateway a REST call while claude works).
FIRST_PROGRESS_AFTER = 1.0
PROGRESS_EVERY = 3.0
# An unchanged view is sent again this often (only its elapsed seconds move).
ACTIVITY_REFRESH = 5 * ACTIVITY_EVERY


@dataclass
class Turn:
    """One run of ``row`` through claude, from the prompt written to its end.

    ``activity`` is its live view when MMCLAUDE_LIVE is on (None otherwise); ``changes``
    counts the view's changes, ``seen`` the count at the last Activity sent.
    """

    row: PromptRow
    started: float
    activity: ActivityView | None = None
    changes: int = 0
    next_progress: float = field(init=False)
    last_activity_sent: float = 0.0
    seen: int = -1
    seq: int = 0

    def __post_init__(self) -> None:
        self.next_progress = self.started + FIRST_PROGRESS_AFTER

    @classmethod
    def begin(cls, row: PromptRow, now: float, *, live: bool) -> Turn:
        return cls(row, now, ActivityView() if live else None)

    def elapsed(self, now: float) -> float:
        return now - self.started

    def feed(self, event: Mapping[str, object]) -> None:
        """One stdout event of claude's during this turn (the live view folds it)."""
        if self.activity is not None and self.activity.feed(event):
            self.changes += 1

    def progress_due(self, now: float) -> Progress | None:
        """The typing indicator, when due (after FIRST_PROGRESS_AFTER s, then every
        PROGRESS_EVERY s); the next one is scheduled whether or not a gateway takes it."""
        if now < self.next_progress:
            return None
        self.next_progress = now + PROGRESS_EVERY
        return Progress(post_id=self.row.post_id, elapsed_s=round(now - self.started, 1))

    def activity_due(self, now: float) -> Activity | None:
        """The live view, when due: after ACTIVITY_AFTER s of turn, at most once every
        ACTIVITY_EVERY s, only when it changed (or its clock needs a tick). Nothing is
        recorded until :meth:`mark_activity_sent` says a gateway took it."""
        view = self.activity
        elapsed = now - self.started
        if (
            view is None
            or elapsed < ACTIVITY_AFTER
            or now - self.last_activity_sent < ACTIVITY_EVERY
        ):
            return None
        if self.changes == self.seen and now - self.last_activity_sent < ACTIVITY_REFRESH:
            return None  # unchanged: only the elapsed seconds move; refresh them now and then
        return Activity(
            post_id=self.row.post_id,
            create_at=self.row.create_at,
            text=view.render(elapsed),
            elapsed_s=round(elapsed, 1),
            seq=self.seq + 1,
        )

    def mark_activity_sent(self, now: float, message: Activity) -> None:
        self.last_activity_sent, self.seen, self.seq = now, self.changes, message.seq
