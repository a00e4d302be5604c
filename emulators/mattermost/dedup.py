"""The `pending_post_id` cache of CreatePost: in progress / created, each kept for a TTL."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

PENDING: Literal["pending"] = "pending"


@dataclass
class PendingPostCache:
    """Maps the raw pending_post_id to PENDING or the created post id (real TTL: 30 s)."""

    ttl_s: float = 30.0
    _entries: dict[str, tuple[str, float]] = field(default_factory=dict)

    def lookup(self, key: str) -> str | None:
        """PENDING, a post id, or None when the key is unknown or expired."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires = entry
        if time.monotonic() >= expires:
            del self._entries[key]
            return None
        return value

    def mark_pending(self, key: str) -> None:
        self._entries[key] = (PENDING, time.monotonic() + self.ttl_s)

    def mark_created(self, key: str, post_id: str) -> None:
        self._entries[key] = (post_id, time.monotonic() + self.ttl_s)

    def expire_all(self) -> None:
        """As if the TTL had passed for every key (tests: no waiting out the window)."""
        self._entries.clear()

    def forget(self, key: str) -> None:
        """A failed creation removes its key, so the client's retry creates the post."""
        self._entries.pop(key, None)
