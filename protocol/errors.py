"""The error tree of the wire layer."""

from __future__ import annotations

__all__ = ["DecodeError", "EndpointError", "NotPrivateError", "ProtocolError"]


class ProtocolError(Exception):
    """Root of every error raised by :mod:`protocol`."""


class DecodeError(ProtocolError):
    """A frame that is not a message of the expected union.

    The text keeps msgspec's ``$.path`` so a log line says which field was wrong.
    Callers log it and drop the frame; it is never fatal.
    """

    def __init__(self, message: str, *, size: int) -> None:
        super().__init__(message)
        self.size = size


class EndpointError(ProtocolError):
    """An endpoint that cannot be used (bad scheme, ipc path too long, unsafe directory)."""


class NotPrivateError(ProtocolError):
    """A directory that must be ours alone belongs to another user."""
