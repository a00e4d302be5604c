"""The session worker: owns the one claude child, the journal and the bound thread.

``run_worker(config)`` runs it in the foreground until SIGTERM or SIGINT and returns the
exit status; ``mmclaude worker`` calls it.
"""

from __future__ import annotations

import asyncio
import signal

from loguru import logger

import protocol
from session_worker.config import WorkerConfig
from session_worker.errors import (
    AlreadyRunningError,
    ChildError,
    ChildExitedError,
    ChildProtocolError,
    ChildStartError,
    JournalError,
    TransitionError,
    WorkerError,
)

__all__ = [
    "AlreadyRunningError",
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
    """Run one worker until SIGTERM/SIGINT; 0 after a clean stop, 1 if it failed.

    Exit 1 at once, with one line saying so, when another worker runs on the state dir;
    exit 2 when the state dir is unsafe (another user's, or writable by others).
    """
    from session_worker import statedir

    protocol.setup_logging(
        "worker", level=config.log_level, fmt=config.log_format, secrets=config.redact
    )
    try:
        # Before the journal is opened and the inbox bound: a second worker must not even
        # recover the first one's running prompts.
        lock = statedir.acquire(statedir.prepare(config.state_dir))
    except protocol.StateDirError as exc:
        # One line naming MMCLAUDE_STATE_DIR (in its error field): a configuration error.
        logger.bind(error=str(exc)).error("worker.state_dir_refused")
        return 2
    except (WorkerError, OSError) as exc:
        logger.bind(error=str(exc)).error("worker.not_started")
        return 1
    try:
        asyncio.run(_main(config))
    except Exception:
        logger.exception("worker.failed")
        return 1
    finally:
        lock.release()
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
