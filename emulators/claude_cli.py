"""Helpers to run the pinned real Claude Code CLI offline against the fake Anthropic API.

Stdlib only, so the demo, tests and benchmarks can import it without aiohttp:

* `find_pinned_claude()`: the repo's `node_modules/.bin/claude` (installed by `npm ci` from the
  pinned package-lock.json), else `claude` on PATH, else None.
* `real_claude_env(base_url, home)`: the environment for that CLI: no inherited Anthropic,
  Mattermost or Claude Code settings, a scratch HOME, the fake API's URL and a dummy key.
* `REAL_CLAUDE_ARGS`: extra flags for offline runs (`--bare`: no hooks, plugins, MCP discovery,
  CLAUDE.md or keychain lookups, so only the fake API is contacted).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REAL_CLAUDE_ARGS: tuple[str, ...] = ("--bare",)

# Inherited variables that would point the CLI at real accounts, real config or a parent
# Claude Code session (CLAUDECODE=1 makes the CLI refuse to start as a nested session).
_DROPPED_PREFIXES = ("ANTHROPIC_", "MATTERMOST_", "CLAUDE_", "CLAUDECODE")


def find_pinned_claude() -> str | None:
    """Path of the pinned CLI: `<repo>/node_modules/.bin/claude`, else `claude` on PATH."""
    repo = Path(__file__).resolve().parent.parent
    pinned = repo / "node_modules" / ".bin" / "claude"
    if pinned.is_file() and os.access(pinned, os.X_OK):
        return str(pinned)
    return shutil.which("claude")


def real_claude_env(base_url: str, home: str) -> dict[str, str]:
    """The environment for running the real CLI offline against the fake API at `base_url`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED_PREFIXES)}
    env.update(
        HOME=home,
        ANTHROPIC_BASE_URL=base_url,
        ANTHROPIC_API_KEY="sk-test",
        DISABLE_AUTOUPDATER="1",
        DISABLE_TELEMETRY="1",
        DISABLE_ERROR_REPORTING="1",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        # The CLI retries 5xx/429/401 ten times with backoff by default: minutes per error.
        CLAUDE_CODE_MAX_RETRIES="2",
        # The fake API is plain http on loopback: never route it through a proxy.
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    return env
