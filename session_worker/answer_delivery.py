"""Which live gateway gets each undelivered answer, and when it is sent again.

Undelivered answers stay on one gateway (the *target*) so that they are posted in order;
the first one goes to the gateway that asked. An answer re-sent :data:`REROUTE_AFTER` times
to one gateway without a ``Delivered`` is moved, with every other undelivered answer and in
order, to another live gateway: that gateway may be up but unable to post (its Mattermost
REST keeps failing). The moved answers carry ``attempt >= 2``, so the new gateway looks in
the thread for parts already posted before posting. A gateway we moved away from is
avoided for new answers until it delivers something again.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from loguru import logger

import protocol

if TYPE_CHECKING:
    from session_worker.answer_outbox import AnswerOutbox, PendingAnswer
    from session_worker.links import GatewayLink, GatewayLinks
    from session_worker.states import PromptRow

__all__ = ["REROUTE_AFTER", "AnswerDelivery"]

REROUTE_AFTER = 3  # re-sends to one gateway without Delivered before the answer moves


class AnswerDelivery:
    """Sends the outbox's answers through the live gateways (no clock of its own)."""

    def __init__(
        self, gateways: GatewayLinks, outbox: AnswerOutbox, redeliver_interval: float
    ) -> None:
        self.links = gateways
        self.outbox = outbox
        self.interval = redeliver_interval
        self.target: str | None = None  # the gateway the pending answers were sent to

    # --- events -------------------------------------------------------------------------

    def answered(self, row: PromptRow, now: float) -> None:
        """A new answer: send it (and whatever else is due) now."""
        self.outbox.add(row)
        self.send_due(now)

    def joined(self, gateway: GatewayLink, now: float) -> None:
        """A new (or restarted) gateway gets every undelivered answer at once."""
        self._send(self.outbox.ordered(), now, to=gateway)

    def gone(self, gateway_id: str, now: float) -> None:
        """The gateway left or expired: its answers move to another one now."""
        if gateway_id == self.target:
            self.target = None
            self._send(self.outbox.ordered(), now)

    def delivered(self, gateway_id: str, post_id: str) -> bool:
        """``gateway_id`` posted ``post_id``; True if it was still undelivered."""
        gateway = self.links.get(gateway_id)
        if gateway is not None:
            gateway.stuck = False  # it can post again
        return self.outbox.remove(post_id)

    def send_due(self, now: float) -> None:
        """Send what is due (timer ticks, new answers); move answers stuck on a gateway."""
        items = self.outbox.due(now, self.interval)
        for item in items:
            if self._stuck(item):
                self._move(item, now)
                return
        self._send(items, now)

    def progress_gateway(self, row: PromptRow) -> GatewayLink | None:
        """Where a turn's Progress goes: the asker, else the target, else any live one."""
        gateway = self.links.get(row.gateway_id) or self.links.get(self.target)
        if gateway is None:
            live = self.links.live()
            gateway = live[0] if live else None
        return gateway

    def progress_gateway_for(self, post_id: str) -> GatewayLink | None:
        """Where an approval of the turn of ``post_id`` goes: the target, else any live one."""
        gateway = self.links.get(self.target)
        if gateway is None:
            live = self.links.live()
            gateway = live[0] if live else None
        return gateway

    # --- routing ------------------------------------------------------------------------

    def _stuck(self, item: PendingAnswer) -> bool:
        return (
            item.sends_there > REROUTE_AFTER
            and self.links.get(item.sent_to) is not None
            and len(self.links) > 1
        )

    def _move(self, item: PendingAnswer, now: float) -> None:
        old = self.links.get(item.sent_to)
        assert old is not None, "checked by _stuck"
        old.stuck = True
        others = [g for g in self.links.live() if g is not old]
        new = next((g for g in others if not g.stuck), others[0])
        self.target = new.gateway_id
        logger.bind(
            post_id=item.post_id,
            sends=item.sends_there,
            from_gateway=old.gateway_id,
            to_gateway=new.gateway_id,
            undelivered=len(self.outbox),
        ).warning("answer.rerouted")
        self._send(self.outbox.ordered(), now, to=new)

    def _pick(self, preferred: str) -> GatewayLink | None:
        """Keep earlier answers and this one on one gateway (order); else the asker's,
        avoiding gateways that could not deliver while another one can."""
        sticky = self.links.get(self.target)
        if sticky is not None and len(self.outbox) > 1:
            return sticky
        live = self.links.live()
        usable = [g for g in live if not g.stuck] or live
        asker = self.links.get(preferred)
        if asker in usable:
            gateway: GatewayLink | None = asker
        elif sticky in usable:
            gateway = sticky
        else:
            gateway = usable[0] if usable else None
        self.target = gateway.gateway_id if gateway is not None else None
        return gateway

    def _send(self, items: list[PendingAnswer], now: float, to: GatewayLink | None = None) -> None:
        for item in items:
            gateway = to or self._pick(item.gateway_id)
            if gateway is None:
                return  # no gateway at all: the next hello re-sends everything
            message = self.outbox.sent(item, now, gateway.gateway_id)
            gateway.send(protocol.encode(message))
            logger.bind(post_id=item.post_id, t_ns=time.monotonic_ns()).debug("hop.answer_sent")
            logger.bind(
                post_id=item.post_id, attempt=message.attempt, gateway_id=gateway.gateway_id
            ).debug("answer.sent")
