"""The one backoff of every process: exponential, capped, with jitter.

``initial``, ``initial*factor``, … up to ``cap``, each multiplied by a random factor in
``[1 - jitter, 1 + jitter]`` so that processes which failed together do not retry together.
:func:`backoff_delay` is the rule as a pure function (the supervisor's restart policy, the
worker's claude respawns); :class:`Backoff` counts the attempts for a retry loop (the
gateway's REST, WebSocket and binding retries).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Backoff", "backoff_delay"]


def backoff_delay(
    attempt: int,
    *,
    initial: float,
    cap: float,
    factor: float = 2.0,
    jitter: float = 0.0,
    rand: float = 0.5,
) -> float:
    """The delay before retry number ``attempt`` (0 first); ``rand`` in [0, 1) picks the
    jitter (0.5: none)."""
    base = min(cap, initial * factor ** min(attempt, 64))  # no overflow, however many
    return base * (1 + jitter * (2 * rand - 1))


@dataclass
class Backoff:
    """Exponential backoff with jitter: 0.5 s, 1 s, 2 s … capped at 30 s, each ±20 %."""

    initial: float = 0.5
    cap: float = 30.0
    jitter: float = 0.2
    factor: float = 2.0
    rng: Callable[[], float] = field(default=random.random, repr=False)
    attempt: int = 0

    def next(self) -> float:
        """The next delay; each call counts one more attempt."""
        delay = backoff_delay(
            self.attempt,
            initial=self.initial,
            cap=self.cap,
            factor=self.factor,
            jitter=self.jitter,
            rand=self.rng(),
        )
        self.attempt += 1
        return delay

    def reset(self) -> None:
        """It worked: the next failure is a first one again."""
        self.attempt = 0
