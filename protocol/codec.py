"""One msgpack encoder and one decoder per direction, reused for every frame.

msgspec's module-level ``decode(type=Union)`` rebuilds the union's type info on every call
(10x slower, measured); a reused :class:`msgspec.msgpack.Decoder` does not.
"""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec

from protocol.errors import DecodeError
from protocol.messages import ToGateway, ToSupervisor, ToWorker

__all__ = ["Codec", "encode", "gateway_codec", "supervisor_codec", "worker_codec"]

T = TypeVar("T")

_encoder = msgspec.msgpack.Encoder()


def encode(message: msgspec.Struct) -> bytes:
    """Encode any wire message into one frame."""
    return _encoder.encode(message)


class Codec(Generic[T]):
    """Decoder of one direction's union; raises our :class:`DecodeError`, never msgspec's."""

    def __init__(self, union: type[T], name: str) -> None:
        self._decoder: msgspec.msgpack.Decoder[T] = msgspec.msgpack.Decoder(union)
        self.name = name

    def decode(self, frame: bytes | bytearray | memoryview) -> T:
        try:
            return self._decoder.decode(frame)
        except (msgspec.DecodeError, RecursionError) as exc:  # ValidationError included;
            # msgspec raises RecursionError for nesting past ~1000 levels (even in a field
            # it skips), which would take the process down with one frame.
            raise DecodeError(
                f"undecodable {self.name} frame ({len(frame)} bytes): {exc}", size=len(frame)
            ) from exc

    def encode(self, message: msgspec.Struct) -> bytes:
        return _encoder.encode(message)

    def __repr__(self) -> str:
        return f"<Codec {self.name}>"


worker_codec: Codec[ToWorker] = Codec(ToWorker, "gateway→worker")  # type: ignore[arg-type]
gateway_codec: Codec[ToGateway] = Codec(ToGateway, "worker→gateway")  # type: ignore[arg-type]
supervisor_codec: Codec[ToSupervisor] = Codec(ToSupervisor, "child→supervisor")  # type: ignore[arg-type]
