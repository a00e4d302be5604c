"""Fault injection state and the optional GCRA rate limiter (throttled's algorithm)."""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PostFailure:
    """One injected failure of POST /posts: 500 AppError JSON or 429 plain text."""

    status: int
    retry_after: float = 1.0
    # True: the post is really created and broadcast, only the response is a 500 (lost reply).
    after_create: bool = False


@dataclass(frozen=True)
class RateDecision:
    limited: bool
    limit: int
    remaining: int
    reset_after_s: float
    retry_after_s: float


@dataclass
class RateLimiter:
    """GCRA per key, as throttled's GCRARateLimiter: burst+1 requests at once, then per_sec."""

    per_sec: float = 10.0
    burst: int = 100
    _tat: dict[str, float] = field(default_factory=dict)  # theoretical arrival times

    def check(self, key: str, now: float | None = None) -> RateDecision:
        now = time.monotonic() if now is None else now
        emission = 1.0 / self.per_sec
        tolerance = emission * (self.burst + 1)  # throttled: period * (MaxBurst + 1)
        limit = self.burst + 1
        tat = max(self._tat.get(key, now), now)
        new_tat = tat + emission
        allow_at = new_tat - tolerance
        if now < allow_at:
            return RateDecision(True, limit, 0, tat - now, allow_at - now)
        self._tat[key] = new_tat
        ttl = new_tat - now
        nxt = tolerance - ttl
        remaining = int(nxt / emission) if nxt > -emission else 0
        return RateDecision(False, limit, max(remaining, 0), ttl, 0.0)


def ceil_seconds(value: float) -> int:
    return max(0, math.ceil(value))


@dataclass
class Faults:
    """Everything a test can switch on; read by the REST and WebSocket handlers."""

    latency_s: float = 0.0
    refuse_until: float = 0.0  # time.monotonic() deadline for refusing socket upgrades
    post_failures: deque[PostFailure] = field(default_factory=deque)
    rate_limiter: RateLimiter | None = None
    # (method, route pattern) -> [status, remaining count or None for "until cleared"]
    route_failures: dict[tuple[str, str], list[int | None]] = field(default_factory=dict)

    def refusing(self) -> bool:
        return time.monotonic() < self.refuse_until

    def take_route_failure(self, method: str, route: str) -> int | None:
        """The status to fail this request with, if a test asked for one (fail_route)."""
        entry = self.route_failures.get((method, route))
        if entry is None:
            return None
        status, left = entry
        if left is not None:
            if left <= 1:
                del self.route_failures[(method, route)]
            else:
                entry[1] = left - 1
        return status

    def take_post_failure(self) -> PostFailure | None:
        return self.post_failures.popleft() if self.post_failures else None
