"""Best-effort side effects: the 👀 reaction on an accepted post and the typing indicator.

They are nice to have and never worth blocking or piling up: the queue is bounded (extra
chores are dropped), at most one typing chore waits at a time, and a kind the server does
not have (404/405 on its endpoint) is switched off for the life of the process.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Literal, Protocol

from loguru import logger

from gateway.errors import AuthError, MattermostError, endpoint_missing

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "CHORE_TIMEOUT_S",
    "MAX_CHORES",
    "ChoreClient",
    "ChoreKind",
    "Chores",
    "run_chores",
]

ChoreKind = Literal["react", "typing"]
MAX_CHORES = 64
CHORE_TIMEOUT_S = 10.0

# A 404 with one of these ids is about the object (a deleted post), not a missing endpoint.
OBJECT_NOT_FOUND = ("app.post.", "store.sql_post.", "app.reaction.")


class Chores:
    """A small bounded queue of ``(kind, post_id)`` chores; pure apart from one Event."""

    def __init__(self, maxsize: int = MAX_CHORES) -> None:
        self._queue: deque[tuple[ChoreKind, str]] = deque()
        self._maxsize = maxsize
        self._typing_queued = False
        self._ready = asyncio.Event()
        self.disabled: set[ChoreKind] = set()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._queue)

    def __repr__(self) -> str:
        return f"<Chores queued={len(self._queue)} disabled={sorted(self.disabled)}>"

    def add(self, kind: ChoreKind, post_id: str = "") -> bool:
        """Queue a chore; False when it was dropped (disabled, a typing already waiting, or
        the queue full)."""
        if kind in self.disabled or (kind == "typing" and self._typing_queued):
            return False
        if len(self._queue) >= self._maxsize:
            self.dropped += 1
            return False
        self._queue.append((kind, post_id))
        self._typing_queued = self._typing_queued or kind == "typing"
        self._ready.set()
        return True

    def take(self) -> tuple[ChoreKind, str] | None:
        """The oldest chore not since disabled, or None when there is none."""
        while self._queue:
            kind, post_id = self._queue.popleft()
            if kind == "typing":
                self._typing_queued = False
            if kind not in self.disabled:
                return kind, post_id
        self._ready.clear()
        return None

    async def next(self) -> tuple[ChoreKind, str]:
        while True:
            chore = self.take()
            if chore is not None:
                return chore
            await self._ready.wait()

    def disable(self, kind: ChoreKind, exc: MattermostError) -> None:
        """Switch ``kind`` off for the process (logged once)."""
        if kind not in self.disabled:
            self.disabled.add(kind)
            logger.warning(
                "chore.disabled",
                kind=kind,
                reason="the server has no such endpoint",
                error=str(exc),
            )


class ChoreClient(Protocol):
    """What the chores need of the MattermostClient (a fake in tests)."""

    async def add_reaction(self, *, user_id: str, post_id: str, emoji_name: str) -> None: ...
    async def typing(self, *, user_id: str, channel_id: str, parent_id: str) -> None: ...


async def run_chores(
    chores: Chores, client: ChoreClient, where: Callable[[], tuple[str, str, str]]
) -> None:
    """Do the chores one at a time, forever; ``where`` gives (bot id, channel, thread).

    A failure is a warning (a 401 is fatal as everywhere); each chore has a deadline.
    """
    while True:
        kind, post_id = await chores.next()
        bot_id, channel_id, thread_id = where()
        try:
            async with asyncio.timeout(CHORE_TIMEOUT_S):
                if kind == "react":
                    await client.add_reaction(user_id=bot_id, post_id=post_id, emoji_name="eyes")
                elif thread_id:
                    await client.typing(user_id=bot_id, channel_id=channel_id, parent_id=thread_id)
                    logger.debug("typing.sent", thread_id=thread_id)
        except AuthError:
            raise
        except MattermostError as exc:
            if endpoint_missing(exc, objects=OBJECT_NOT_FOUND):
                chores.disable(kind, exc)
            else:
                logger.warning("chore.failed", error=str(exc), kind=kind)
        except TimeoutError:
            logger.warning("chore.failed", error="timed out", kind=kind)
