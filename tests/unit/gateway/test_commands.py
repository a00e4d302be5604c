"""The command parser: a command is the first word, exactly one of the known names."""

from __future__ import annotations

import pytest

from gateway.commands import COMMANDS, ParsedCommand, parse_command


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("!stop", ParsedCommand("stop", "")),
        ("  !status  ", ParsedCommand("status", "")),
        ("!model claude-sonnet-4-5", ParsedCommand("model", "claude-sonnet-4-5")),
        ("!deny not\ntoday", ParsedCommand("deny", "not\ntoday")),
        ("!answer\n2", ParsedCommand("answer", "2")),
        ("!STOP", ParsedCommand("stop", "")),
        ("!mode\tplan", ParsedCommand("mode", "plan")),
    ],
)
def test_commands_are_recognized(text: str, expected: ParsedCommand) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize(
    "text",
    ["!unknown", "stop", "please !stop", "! stop", "!stopnow", "", "   ", "!", "!file x"],
)
def test_anything_else_is_a_prompt(text: str) -> None:
    """``!unknown`` included; ``!file`` belongs to another issue until it is added."""
    assert parse_command(text) is None


def test_a_new_command_is_one_more_name() -> None:
    """The hook for !file: the parser takes the set of names."""
    assert parse_command("!file a.txt", COMMANDS | {"file"}) == ParsedCommand("file", "a.txt")
    assert {"stop", "status", "new", "model", "mode", "allow", "always", "deny"} < COMMANDS
    assert {"answer", "help"} < COMMANDS
