"""The ZeroMQ side of the gateway: its own PULL socket (the worker answers there), a PUSH to
the worker's inbox, and an optional PUSH of heartbeats to the supervisor. ``WorkerBus`` is
what the service uses of it (gateway.testing has an in-memory one).

zmq and codec exceptions stop here. Sends never block (protocol.sockets): what matters is
re-sent by the service until acknowledged, so a dropped frame only costs a resend interval.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import zmq
from loguru import logger

from gateway.errors import BusError
from protocol import (
    DecodeError,
    GatewayHeartbeat,
    ProtocolError,
    Receiver,
    Sender,
    ToGateway,
    ToWorker,
    context,
    curve,
    encode,
    gateway_codec,
)

__all__ = ["Bus", "WorkerBus"]


class WorkerBus(Protocol):
    """What the service uses of the bus: send to the worker, beat, receive its messages."""

    def send(self, message: ToWorker) -> bool: ...
    def heartbeat(self, message: GatewayHeartbeat) -> None: ...
    async def receive(self, timeout: float) -> ToGateway | None: ...


class Bus:
    """The gateway's three sockets."""

    def __init__(
        self,
        *,
        endpoint: str,
        worker_endpoint: str,
        heartbeat_endpoint: str | None = None,
        state_dir: str = "",
    ) -> None:
        """Over tcp (either way) the sockets use CURVE with the keys of
        ``<state_dir>/keys`` (protocol.curve); construct inside the running loop."""
        self._receiver: Receiver | None = None
        self._sender: Sender | None = None
        self._heartbeat: Sender | None = None
        keys = curve.keys_dir(state_dir)
        try:
            pair = None
            if curve.is_tcp(endpoint) or curve.is_tcp(worker_endpoint):
                pair = curve.load_pair(keys, curve.GATEWAY_KEY)
                worker_key = curve.load_public(keys / f"{curve.WORKER_KEY}.key")
            if pair is not None and curve.is_tcp(endpoint):
                # Only the worker may push to us.
                curve.start_authenticator(context(), lambda: {worker_key})
                self._receiver = Receiver(endpoint, curve=pair)
            else:
                self._receiver = Receiver(endpoint)
            if pair is not None and curve.is_tcp(worker_endpoint):
                self._sender = Sender(worker_endpoint, curve=(pair, worker_key))
            else:
                self._sender = Sender(worker_endpoint)
            if heartbeat_endpoint:
                self._heartbeat = Sender(heartbeat_endpoint, hwm=10)
        except (zmq.ZMQError, ProtocolError) as exc:
            self.close()
            raise BusError(f"cannot open the gateway's sockets: {exc}") from exc
        self.endpoint = endpoint

    def __repr__(self) -> str:
        return f"<Bus {self.endpoint} sender={self._sender!r}>"

    def send(self, message: ToWorker) -> bool:
        """Queue a message for the worker; False when it was dropped (the caller re-sends)."""
        assert self._sender is not None
        return self._sender.send(encode(message))

    def heartbeat(self, message: GatewayHeartbeat) -> None:
        if self._heartbeat is not None:
            self._heartbeat.send(encode(message))

    async def receive(self, timeout: float) -> ToGateway | None:
        """The next message from the worker, or None after ``timeout`` s or for a frame that
        does not decode (logged once and dropped: a garbage peer is never fatal)."""
        assert self._receiver is not None
        try:
            async with asyncio.timeout(timeout):
                frame = await self._receiver.recv()
        except TimeoutError:
            return None
        except zmq.ZMQError as exc:
            raise BusError(f"receive failed: {exc}") from exc
        try:
            return gateway_codec.decode(frame)
        except DecodeError as exc:
            logger.warning("bus.bad_frame", error=str(exc), size=exc.size)
            return None

    def close(self) -> None:
        for sock in (self._receiver, self._sender, self._heartbeat):
            if sock is not None:
                sock.close()
        self._receiver = self._sender = self._heartbeat = None
