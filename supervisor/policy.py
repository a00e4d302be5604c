"""When to restart a child that died: a pure, clock-injected decision (OTP one_for_one).

Exponential backoff with jitter between restarts, reset once a child has run stably; a restart
intensity per child (at most ``max_restarts`` quick deaths in ``period`` seconds), past which
the supervisor stops everything and exits non-zero so that systemd (``Restart=on-failure``)
takes over. A quick death is one less than ``stable_after`` seconds after its start (the
supervisord ``startsecs`` idea): a child that is killed now and then after running fine is
restarted every time, while one that cannot start gives up after a few tries.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from protocol.backoff import backoff_delay

if TYPE_CHECKING:
    import random


__all__ = ["ChildHistory", "GiveUp", "Restart", "RestartPolicy"]


@dataclass(frozen=True)
class Restart:
    """Respawn after ``delay`` seconds; ``attempt`` counts restarts since the last stable run."""

    delay: float
    attempt: int


@dataclass(frozen=True)
class GiveUp:
    """Too many restarts in the window: stop everything and exit 1."""

    restarts: int
    period: float


@dataclass(frozen=True)
class RestartPolicy:
    """The knobs. Defaults: 0.1 s doubling to 30 s, ±20 % jitter, stable after 3 s, 5 in 60 s.

    ``stable_after`` separates a crash loop from a process killed while it worked: a child
    that cannot start dies within a second or two (imports, a bad token), while one killed
    after 3 s had started fine and is restarted at the base delay again. (With 10 s, a worker
    SIGKILLed every 5-9 s in a chaos run climbed to a 27 s backoff.)
    """

    base: float = 0.1
    factor: float = 2.0
    cap: float = 30.0
    jitter: float = 0.2
    stable_after: float = 3.0
    max_restarts: int = 5
    period: float = 60.0


@dataclass
class ChildHistory:
    """What the policy remembers about one role: recent restart times and the current streak."""

    restarts: deque[float] = field(default_factory=deque)
    streak: int = 0
    total: int = 0
    last_exit: int | None = None

    def decide(
        self,
        policy: RestartPolicy,
        *,
        now: float,
        started_at: float,
        exit_code: int | None,
        rng: random.Random,
    ) -> Restart | GiveUp:
        """The decision for a child that started at ``started_at`` and has just exited."""
        self.last_exit = exit_code
        quick = now - started_at < policy.stable_after
        if not quick:
            self.streak = 0  # it ran long enough: this death is not part of a crash loop
        while self.restarts and now - self.restarts[0] > policy.period:
            self.restarts.popleft()
        if quick and len(self.restarts) >= policy.max_restarts:
            return GiveUp(restarts=len(self.restarts) + 1, period=policy.period)
        delay = backoff_delay(
            self.streak,
            initial=policy.base,
            cap=policy.cap,
            factor=policy.factor,
            jitter=policy.jitter,
            rand=rng.random(),
        )
        self.streak += 1
        self.total += 1
        if quick:  # only deaths soon after a start count toward the intensity
            self.restarts.append(now)
        return Restart(delay=max(0.0, delay), attempt=self.streak)
