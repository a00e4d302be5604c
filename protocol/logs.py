"""Logging setup that every process calls once at start (loguru, one stderr sink).

JSON lines when stderr is not a terminal (or when asked), readable text otherwise; every line
carries the process role and pid; ``diagnose=False`` so tracebacks never dump variables; and
every secret handed in is replaced by ``[REDACTED]`` in the final text of every line, whatever
field it hides in.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC
from typing import TYPE_CHECKING, Literal, TextIO, get_args

import msgspec
from loguru import logger

if TYPE_CHECKING:
    from collections.abc import Iterable

    from loguru import Message, Record

__all__ = [
    "LOG_FORMATS",
    "LOG_LEVELS",
    "REDACTED",
    "LogFormat",
    "LogLevel",
    "Redactor",
    "setup_logging",
]

LogLevel = Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"]
# None (in a configuration) = text on a terminal, else JSON.
LogFormat = Literal["text", "json"]
LOG_LEVELS: tuple[LogLevel, ...] = get_args(LogLevel)
LOG_FORMATS: tuple[LogFormat, ...] = get_args(LogFormat)
REDACTED = "[REDACTED]"

_TEXT_FORMAT = (
    "<green>{time:HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
    "<cyan>{extra[role]}[{extra[pid]}]</cyan> {message}{extra[_fields]}"
)  # loguru appends "\n{exception}" to a string format itself

_json = msgspec.json.Encoder()


class Redactor:
    """Replaces each secret (and nothing shorter than 4 characters) in a string."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def __bool__(self) -> bool:
        return bool(self._secrets)


def _fields(extra: dict[str, object]) -> str:
    shown = {k: v for k, v in extra.items() if k not in ("role", "pid", "_fields")}
    if not shown:
        return ""
    return " " + " ".join(f"{k}={v}" for k, v in shown.items())


def _json_line(record: Record) -> str:
    extra = {k: v for k, v in record["extra"].items() if k != "_fields"}
    out: dict[str, object] = {
        "time": record["time"].astimezone(UTC).isoformat(timespec="milliseconds"),
        "level": record["level"].name,
        "message": record["message"],
        **extra,
        "module": record["name"],
    }
    exc = record["exception"]
    if exc is not None and exc.type is not None:
        import traceback

        out["exception"] = "".join(
            traceback.format_exception(exc.type, exc.value, exc.traceback)
        ).rstrip()
    return _json.encode(out).decode("utf-8", "replace") + "\n"


def setup_logging(
    role: str,
    *,
    level: LogLevel = "INFO",
    fmt: LogFormat | None = None,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Replace every loguru sink by one on ``stream`` (stderr) for this process.

    ``fmt=None`` picks text on a terminal and JSON otherwise.
    """
    out = stream if stream is not None else sys.stderr
    if fmt is None:
        fmt = "text" if out.isatty() else "json"
    redact = Redactor(secrets)

    def patch(record: Record) -> None:
        record["extra"]["_fields"] = _fields(record["extra"])

    logger.remove()
    logger.configure(extra={"role": role, "pid": os.getpid()}, patcher=patch)

    if fmt == "json":

        def json_sink(message: Message) -> None:
            line = _json_line(message.record)
            out.write(redact(line) if redact else line)
            out.flush()

        logger.add(json_sink, level=level, diagnose=False, backtrace=False, catch=True)
    else:

        def text_sink(message: Message) -> None:
            text = str(message)
            out.write(redact(text) if redact else text)
            out.flush()

        logger.add(
            text_sink,
            level=level,
            format=_TEXT_FORMAT,
            colorize=out.isatty(),
            diagnose=False,
            backtrace=False,
            catch=True,
        )
