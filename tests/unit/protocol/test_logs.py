"""The per-process log sink: JSON or text, role and pid bound, the token redacted."""

from __future__ import annotations

import ast
import io
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from loguru import logger

from protocol import REDACTED, Redactor, setup_logging

if TYPE_CHECKING:
    from collections.abc import Iterator

TOKEN = "s3cr3t-token-abcdefghijklmnop"


@pytest.fixture(autouse=True)
def _restore_loguru() -> Iterator[None]:
    yield
    logger.remove()


def test_json_lines_carry_role_pid_and_fields() -> None:
    """In JSON mode each line is one object with role, pid, level, message and bound fields."""
    out = io.StringIO()
    setup_logging("gateway", fmt="json", stream=out)
    logger.bind(post_id="p1").info("prompt.sent")
    record = json.loads(out.getvalue().splitlines()[0])
    assert record["role"] == "gateway"
    assert record["pid"] == os.getpid()
    assert record["level"] == "INFO"
    assert record["message"] == "prompt.sent"
    assert record["post_id"] == "p1"


def test_token_is_redacted_everywhere() -> None:
    """The token is replaced in the message, in bound fields and in exception text."""
    out = io.StringIO()
    setup_logging("gateway", fmt="json", secrets=[TOKEN], stream=out)
    logger.bind(header=f"Bearer {TOKEN}").warning("token is {}", TOKEN)
    try:
        raise RuntimeError(f"bad token {TOKEN}")
    except RuntimeError:
        logger.exception("failed")
    text = out.getvalue()
    assert TOKEN not in text
    assert REDACTED in text


def test_text_format_is_redacted_too() -> None:
    """Text mode redacts the same way."""
    out = io.StringIO()
    setup_logging("worker", fmt="text", secrets=[TOKEN], stream=out)
    logger.info("using {}", TOKEN)
    assert TOKEN not in out.getvalue()
    assert "worker[" in out.getvalue()
    assert out.getvalue().count("\n") == 1  # one line per record, no blank line after it


def test_level_filters() -> None:
    """Lines below the configured level are not written."""
    out = io.StringIO()
    setup_logging("worker", level="WARNING", fmt="json", stream=out)
    logger.info("hidden")
    logger.warning("shown")
    assert "hidden" not in out.getvalue()
    assert "shown" in out.getvalue()


def test_auto_format_is_json_off_a_terminal() -> None:
    """With no format given, a non-terminal stream gets JSON."""
    out = io.StringIO()
    setup_logging("worker", stream=out)
    logger.info("x")
    json.loads(out.getvalue())


def test_short_strings_are_not_treated_as_secrets() -> None:
    """An empty or tiny secret would redact everything; it is ignored."""
    redact = Redactor(["", "ab"])
    assert redact("abc") == "abc"
    assert not redact


# One idiom: the event name is the message, the values are fields.
IDIOM_PACKAGES = ("protocol", "supervisor", "devtools", "session_worker", "gateway")
_LEVELS = {"trace", "debug", "info", "success", "warning", "error", "critical", "exception"}
_EVENT = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")


def _log_calls(tree: ast.AST) -> Iterator[ast.Call]:
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _LEVELS
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "logger"
        ):
            yield node


def test_every_log_call_is_an_event_name_with_fields() -> None:
    """No value formatted into a message: one constant ``area.event`` name, then fields."""
    root = Path(__file__).resolve().parents[3]
    bad: list[str] = []
    calls = 0
    for package in IDIOM_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            for call in _log_calls(ast.parse(path.read_text(encoding="utf-8"))):
                calls += 1
                first = call.args[0] if call.args else None
                if (
                    len(call.args) != 1
                    or not isinstance(first, ast.Constant)
                    or not isinstance(first.value, str)
                    or not _EVENT.match(first.value)
                ):
                    bad.append(f"{path.relative_to(root)}:{call.lineno}")
    assert calls > 10  # the scan finds the calls it judges
    assert bad == []
