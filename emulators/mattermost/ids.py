"""Mattermost-shaped identifiers and clocks: 26-char base32 ids and Unix milliseconds."""

from __future__ import annotations

import random
import re
import secrets
import time

# Mattermost's NewId() alphabet (base32 with a custom, URL-safe ordering).
ID_ALPHABET = "ybndrfg8ejkmcpqxot1uwisza345h769"
ID_LENGTH = 26
_ID_RE = re.compile(r"[a-z0-9]{26}")


def is_valid_id(value: object) -> bool:
    """Return whether `value` looks like a Mattermost id (model.IsValidId: 26 lowercase alnum)."""
    return isinstance(value, str) and _ID_RE.fullmatch(value) is not None


class IdGenerator:
    """Makes ids; seeded runs are reproducible, unseeded runs use the secrets module."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng: random.Random | None = None if seed is None else random.Random(seed)

    def new_id(self) -> str:
        if self._rng is None:
            return "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))
        return "".join(self._rng.choice(ID_ALPHABET) for _ in range(ID_LENGTH))


class MillisClock:
    """Wall clock in Unix ms that never runs backwards, so create order equals time order."""

    def __init__(self) -> None:
        self._last = 0
        self.offset_ms = 0  # tests move the server's clock forward (advance_clock)

    def now(self) -> int:
        # Equal values are allowed (as on a real server within one ms); only regressions
        # from NTP-style wall clock steps are hidden.
        self._last = max(self._last, int(time.time() * 1000) + self.offset_ms)
        return self._last
