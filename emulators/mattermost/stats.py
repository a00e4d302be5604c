"""Counters and per-post timings that tests and benchmarks read back."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class EmulatorStats:
    """A frozen snapshot of the counters (`sockets_open` is a gauge, the rest only grow)."""

    rest_requests: int
    posts_created: int
    posts_deduplicated: int
    post_failures_injected: int
    rate_limited: int
    ws_connects: int
    ws_refused: int
    ws_auth_failures: int
    sockets_open: int
    fresh_connections: int
    resumes: int
    resumes_replayed: int
    resumes_lossless: int
    resumes_lost: int
    connections_overflowed: int
    events_sent: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Counters:
    rest_requests: int = 0
    posts_created: int = 0
    posts_deduplicated: int = 0
    post_failures_injected: int = 0
    rate_limited: int = 0
    ws_connects: int = 0
    ws_refused: int = 0
    ws_auth_failures: int = 0
    fresh_connections: int = 0
    resumes: int = 0
    resumes_replayed: int = 0
    resumes_lossless: int = 0
    resumes_lost: int = 0
    connections_overflowed: int = 0
    events_sent: int = 0

    def snapshot(self, sockets_open: int) -> EmulatorStats:
        return EmulatorStats(sockets_open=sockets_open, **asdict(self))


@dataclass
class PostTiming:
    """time.monotonic() marks of one post: created, broadcast, first written per user."""

    post_id: str
    user_id: str
    channel_id: str
    root_id: str
    created_at: float
    broadcast_at: float = 0.0
    delivered_at: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
