"""A local Mattermost server (REST v4 subset + WebSocket) for tests and benchmarks.

Built only from docs/mattermost-protocol.md, independently of the gateway it exercises.
"""

from __future__ import annotations

from .server import (
    EmulatorOptions,
    MattermostEmulator,
    SeedChannel,
    SeedTeam,
    SeedUser,
    open_emulator,
)
from .stats import EmulatorStats, PostTiming

__all__ = [
    "EmulatorOptions",
    "EmulatorStats",
    "MattermostEmulator",
    "PostTiming",
    "SeedChannel",
    "SeedTeam",
    "SeedUser",
    "open_emulator",
]
