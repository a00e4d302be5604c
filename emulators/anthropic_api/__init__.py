"""A fake Anthropic Messages API for the real Claude Code CLI and for tests (see server.py).

Also re-exports the helpers for running the pinned real CLI against it offline
(`find_pinned_claude`, `real_claude_env`, `REAL_CLAUDE_ARGS`, from `emulators.claude_cli`, which
can be imported without pulling in aiohttp).
"""

from emulators.anthropic_api.server import FakeAnthropicApi, open_anthropic_api
from emulators.claude_cli import REAL_CLAUDE_ARGS, find_pinned_claude, real_claude_env

__all__ = [
    "REAL_CLAUDE_ARGS",
    "FakeAnthropicApi",
    "find_pinned_claude",
    "open_anthropic_api",
    "real_claude_env",
]
