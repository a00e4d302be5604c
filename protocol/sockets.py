"""Thin asyncio helpers over pyzmq PUSH/PULL: receivers bind, senders connect, linger 0.

Reliability does not live here: ZeroMQ may drop what it accepted when a peer dies, so every
message that matters is re-sent by the application until it is acknowledged (design.md).
A send therefore never blocks: when the peer's pipe is full the frame is dropped and the
caller's re-send timer covers it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

import zmq
import zmq.asyncio

from protocol.curve import make_client, make_server
from protocol.endpoints import check_endpoint

if TYPE_CHECKING:
    from types import TracebackType

    from protocol.curve import KeyPair

__all__ = ["Receiver", "Sender", "context"]

_context: zmq.asyncio.Context | None = None

# Frames bigger than this are refused by libzmq on receive (an answer can be megabytes;
# 64 MiB leaves room and still bounds memory for a garbage peer).
MAX_FRAME = 64 * 1024 * 1024


def context() -> zmq.asyncio.Context:
    """This process's one ZeroMQ context, created on first use (after any fork/spawn)."""
    global _context
    if _context is None:
        _context = zmq.asyncio.Context()
        _context.linger = 0
    return _context


class _Socket:
    """What both kinds share: one zmq socket, closed with linger 0, usable in ``with``."""

    _socket: zmq.asyncio.Socket

    def close(self) -> None:
        self._socket.close(linger=0)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Receiver(_Socket):
    """A bound PULL socket; with ``curve`` a CURVE server (start the context's
    authenticator first: protocol.curve.start_authenticator)."""

    def __init__(self, endpoint: str, *, curve: KeyPair | None = None) -> None:
        self.endpoint = check_endpoint(endpoint)
        self._socket = context().socket(zmq.PULL)
        self._socket.linger = 0
        self._socket.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME)
        self._socket.rcvhwm = 100_000
        if curve is not None:
            make_server(self._socket, curve)
        self._socket.bind(self.endpoint)

    async def recv(self) -> bytes:
        """The next frame (a multipart message is joined: nobody of ours sends one)."""
        parts = await self._socket.recv_multipart(copy=True)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def recv_from(self) -> tuple[bytes, str]:
        """The next frame and its sender's CURVE public key (z85 text; "" when the frame did
        not come over CURVE)."""
        parts = await self._socket.recv_multipart(copy=False)
        try:
            peer = str(parts[0].get("User-Id"))
        except (zmq.ZMQError, UnicodeDecodeError):
            peer = ""
        data = parts[0].bytes if len(parts) == 1 else b"".join(p.bytes for p in parts)
        return data, peer

    def __repr__(self) -> str:
        return f"<Receiver PULL bound {self.endpoint}>"


class Sender(_Socket):
    """A connected PUSH socket whose sends never block; with ``curve`` (our pair, the
    server's public key) a CURVE client."""

    def __init__(
        self, endpoint: str, *, hwm: int = 10_000, curve: tuple[KeyPair, bytes] | None = None
    ) -> None:
        self.endpoint = check_endpoint(endpoint)
        self._socket = context().socket(zmq.PUSH)
        self._socket.linger = 0
        self._socket.sndhwm = hwm
        if curve is not None:
            make_client(self._socket, *curve)
        self._socket.connect(self.endpoint)
        self.dropped = 0

    def send(self, frame: bytes) -> bool:
        """Queue ``frame``; False (and counted) when the pipe is full or the socket closed."""
        try:
            self._socket.send(frame, zmq.NOBLOCK, copy=len(frame) < 65536)
        except (zmq.Again, zmq.ZMQError):
            self.dropped += 1
            return False
        return True

    def __repr__(self) -> str:
        return f"<Sender PUSH connected {self.endpoint} dropped={self.dropped}>"
