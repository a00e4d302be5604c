"""The error tree of the wire layer."""

from __future__ import annotations

__all__ = ["DecodeError", "EndpointError", "ProtocolError", "StateDirError"]


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


class StateDirError(EndpointError):
    """The state dir (or its ``run/`` dir) is not safe to use: another user's, writable by
    others, not a directory. The text names the setting; the process exits 2."""
