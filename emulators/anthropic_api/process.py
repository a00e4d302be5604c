"""The fake Anthropic API in a process of its own, for runs where its event loop must not be
shared with anything else (the demo, chaos runs and benchmarks: in production the model's API
is not served by the same loop as the Mattermost server)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

__all__ = ["ApiProcess", "open_anthropic_api_process"]


@dataclass
class ApiProcess:
    url: str
    pid: int


@contextlib.asynccontextmanager
async def open_anthropic_api_process(
    *, timeout: float = 20.0, preexec_fn: Callable[[], None] | None = None
) -> AsyncIterator[ApiProcess]:
    """Start ``python -m emulators.anthropic_api --port 0``; yield its URL; stop it after.

    ``preexec_fn`` runs in the child before exec (e.g. to make it die with its parent)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "emulators.anthropic_api",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=preexec_fn,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError("the fake Anthropic API exited before it was ready")
        yield ApiProcess(url=str(json.loads(line)["url"]), pid=proc.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
