"""The REST catch-up: where in the thread it starts paging, how one thread page becomes
replies in order, and ``CatchUps``, which runs one whenever asked and says while one is owed.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, NoReturn

from loguru import logger

from gateway.errors import AuthError, MattermostError
from protocol.backoff import Backoff

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from gateway.models import Post, PostList

__all__ = ["CATCHUP_MARGIN_MS", "CatchUps", "catchup_start", "thread_page"]

# Events may have been lost, and a missed post can be older than one accepted after it:
# re-reading a minute costs a few repeats (the worker de-duplicates), missing one costs an
# answer.
CATCHUP_MARGIN_MS = 60_000


def catchup_start(catch_up_from: int, margin_ms: int = CATCHUP_MARGIN_MS) -> int:
    """The ``create_at`` (ms) from which to page the thread: the worker's newest post minus
    a generous margin (not this gateway's newest accepted post: an older post may have been
    missed while a newer one got through); 0 means from the start."""
    return max(0, catch_up_from - margin_ms) if catch_up_from > 0 else 0


def thread_page(page: PostList, thread_id: str) -> tuple[list[Post], tuple[int, str] | None]:
    """The replies of one thread page in ``(create_at, id)`` order, and the cursor after them.

    The thread endpoint puts the requested (root) post first on every page; it is dropped.
    """
    listed = set(page.order)
    posts = sorted(
        (p for pid, p in page.posts.items() if pid != thread_id and pid in listed),
        key=lambda p: (p.create_at, p.id),
    )
    cursor = (posts[-1].create_at, posts[-1].id) if posts else None
    return posts, cursor


class CatchUps:
    """When a catch-up is owed, and the loop that runs one whenever asked.

    Counts catch-ups asked for and the last one completed: prompts wait while one is owed
    (:attr:`owed`), so a post seen live is never sent before an older one the catch-up is
    about to find. ``high`` is the newest ``create_at`` a complete catch-up saw.
    """

    def __init__(self, gateway_id: str, backoff: Backoff | None = None) -> None:
        self.asked = 0
        self.done = 0
        self.high = 0
        self.wanted = asyncio.Event()
        self._backoff = backoff or Backoff(initial=1.0, cap=60.0)
        self._log = logger.bind(gateway=gateway_id)

    @property
    def owed(self) -> bool:
        return self.done < self.asked

    def want(self) -> None:
        self.asked += 1
        self.wanted.set()

    async def run(
        self,
        catch_up: Callable[[], Awaitable[None]],
        ready: Callable[[], bool],
        after: Callable[[], None],
    ) -> NoReturn:
        """Run ``catch_up`` whenever asked while ``ready()`` (binding the thread asks again);
        a failed one is retried after a backoff delay. ``after`` runs after every attempt."""
        while True:
            await self.wanted.wait()
            self.wanted.clear()
            if not ready():
                continue
            asked = self.asked
            try:
                await catch_up()
            except AuthError:
                raise
            except MattermostError as exc:
                delay = self._backoff.next()
                self._log.error("catchup.failed", error=str(exc), retry_s=round(delay, 2))
                await asyncio.sleep(delay)
                self.wanted.set()
            else:
                self._backoff.reset()
                self.done = max(self.done, asked)
            after()
