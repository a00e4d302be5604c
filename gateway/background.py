"""Short jobs that callbacks start (an author lookup, an attachment download, a re-read of
reactions), run inside the service's TaskGroup: nothing is fire-and-forget, and cancelling
the service cancels them. A job's unexpected error is logged and skips that job alone."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loguru import logger

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Coroutine

__all__ = ["Background"]


class Background:
    """Starts jobs in the TaskGroup given by :meth:`attach` (the service's, while it runs)."""

    def __init__(self, gateway_id: str) -> None:
        self._group: asyncio.TaskGroup | None = None
        self._log = logger.bind(gateway=gateway_id)

    def attach(self, group: asyncio.TaskGroup) -> None:
        self._group = group

    def spawn(self, what: str, job: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``job`` in the group; ``what`` names it in the log if it fails."""
        if self._group is None:
            job.close()
            raise RuntimeError(f"{what}: the service is not running")
        return self._group.create_task(self._guarded(what, job))

    async def _guarded(self, what: str, job: Coroutine[Any, Any, None]) -> None:
        try:
            await job
        except Exception as exc:  # one job's failure must not stop the service
            self._log.opt(exception=exc).error(
                "job.failed", job=what, error=f"{type(exc).__name__}: {str(exc)[:200]}"
            )
