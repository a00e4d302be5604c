"""The supervisor's error tree."""

from __future__ import annotations

__all__ = ["ConfigError", "SupervisorError"]


class SupervisorError(Exception):
    """Root of the supervisor's errors."""


class ConfigError(SupervisorError):
    """A missing or malformed setting. The text names the setting; the CLI exits 2."""
