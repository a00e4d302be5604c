"""The supervisor's error tree."""

from __future__ import annotations

__all__ = ["ConfigError", "SupervisorError"]


class SupervisorError(Exception):
    """Root of the supervisor's errors."""


class ConfigError(SupervisorError):
    """A missing or malformed setting. The text names the setting; the CLI exits 2.

    Always one line: line breaks that came from the input (a TOML key, a value) are shown
    escaped, so one log line (and one line on stderr) still says it all.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message.replace("\r", "\\r").replace("\n", "\\n"))
