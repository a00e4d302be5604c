"""Keeping the worker bound to the right thread: propose one while it has none, and the
configured one (``MATTERMOST_THREAD_ID``) while it serves another: the operator's
configuration wins over a remembered binding."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from gateway.binding import propose_thread
from protocol import BindThread
from protocol.backoff import Backoff

if TYPE_CHECKING:
    from loguru import Logger

    from gateway.bus import Bus
    from gateway.config import GatewayConfig
    from gateway.mattermost import MattermostClient
    from gateway.models import User
    from protocol import Welcome

__all__ = ["BIND_RESEND_CAP_S", "Binder"]

BIND_RESEND_CAP_S = 30.0


class Binder:
    """The binding half of :class:`gateway.service.Gateway` (a mixin over its state)."""

    config: GatewayConfig
    client: MattermostClient
    bus: Bus
    bot: User
    started_ms: int  # the server's time when this gateway started (Date header), 0: unknown
    welcome: Welcome | None
    welcomed: asyncio.Event
    _log: Logger

    def _bound_as_wanted(self, wanted: str) -> bool:
        """True once the worker serves a thread (the configured one, ``wanted``, if any)."""
        bound = self.welcome.thread_id if self.welcome is not None else ""
        return bound == wanted if wanted else bool(bound)

    async def _bind_loop(self) -> None:
        """Propose a thread while the worker has none, or while it serves another than the
        configured one (the operator's configuration wins over a remembered binding)."""
        configured = bool(self.config.thread_id)
        wanted: tuple[str, str, int] | None = None
        while True:
            await self.welcomed.wait()
            self.welcomed.clear()
            welcome = self.welcome
            if welcome is None or (welcome.thread_id and not configured):
                continue
            if configured and wanted is None and welcome.thread_id == self.config.thread_id:
                continue  # already bound to it: no need to page the thread for its floor
            if wanted is None or not configured:
                wanted = await propose_thread(
                    self.client,
                    self.config,
                    self.bot.id,
                    welcome.bind_token,
                    started=self.started_ms,
                )
            thread_id, channel_id, floor = wanted
            if self._bound_as_wanted(thread_id if configured else ""):
                continue
            if welcome.thread_id:
                self._log.warning(
                    "bind.replacing: the worker serves another thread than the configured one",
                    bound=welcome.thread_id,
                    configured=thread_id,
                )
            backoff = Backoff(initial=self.config.resend_interval, cap=BIND_RESEND_CAP_S)
            while not self._bound_as_wanted(thread_id if configured else ""):
                self._log.info("bind.proposed", thread_id=thread_id, configured=configured)
                self.bus.send(
                    BindThread(
                        gateway_id=self.config.gateway_id,
                        thread_id=thread_id,
                        channel_id=channel_id,
                        bind_token=welcome.bind_token,
                        configured=configured,
                        floor=floor,
                    )
                )
                # Every BindThread makes the worker send a Welcome: wait the whole delay
                # (not just for the next Welcome) unless the binding is now as wanted.
                deadline = time.monotonic() + backoff.next()
                while not self._bound_as_wanted(thread_id if configured else ""):
                    self.welcomed.clear()
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    try:
                        async with asyncio.timeout(left):
                            await self.welcomed.wait()
                    except TimeoutError:
                        break
