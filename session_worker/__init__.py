"""The session worker: owns the one claude child, the journal and the bound thread.

``run_worker(config)`` runs it in the foreground until SIGTERM or SIGINT and returns the
exit status; ``mmclaude worker`` calls it.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Literal

from loguru import logger

import protocol
from session_worker.config import WorkerConfig
from session_worker.errors import (
    ChildError,
    ChildExitedError,
    ChildProtocolError,
    ChildStartError,
    JournalError,
    TransitionError,
    WorkerError,
)

__all__ = [
    "ChildError",
    "ChildExitedError",
    "ChildProtocolError",
    "ChildStartError",
    "JournalError",
    "TransitionError",
    "WorkerConfig",
    "WorkerError",
    "run_worker",
]


def run_worker(config: WorkerConfig) -> int:
    """Run one worker until SIGTERM/SIGINT; 0 after a clean stop, 1 if it failed."""
    fmt: Literal["text", "json"] | None = (
        "json" if config.log_format == "json" else "text" if config.log_format == "text" else None
    )
    protocol.setup_logging("worker", level=config.log_level, fmt=fmt, secrets=config.redact)
    try:
        asyncio.run(_main(config))
    except Exception:
        logger.exception("worker.failed")
        return 1
    return 0


async def _main(config: WorkerConfig) -> None:
    # Imported here so that importing the package (the CLI does) stays cheap.
    from session_worker.worker import Worker

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        # The handler only sets the event: the worker stops from its own task.
        loop.add_signal_handler(sig, stop.set)
    await Worker(config).run(stop)
