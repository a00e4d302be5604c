"""Which accepted posts are commands (contract.md "Commands in the thread"): pure, unit-tested.

A post is a command when its first word, exactly, is one of :data:`COMMANDS` (``!stop`` …);
anything else, ``!unknown`` included, stays a prompt for Claude. The gateway only
recognizes a command; what it does is the worker's business. A command another issue adds
(``!file``) is one more entry in :data:`COMMANDS`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["COMMANDS", "ParsedCommand", "parse_command"]

# Every command the worker knows, without the "!".
COMMANDS = frozenset(
    {"stop", "status", "new", "model", "mode", "allow", "always", "deny", "answer", "help"}
)


@dataclass(frozen=True)
class ParsedCommand:
    name: str  # without "!", lower case
    args: str  # the rest of the post, stripped (may hold newlines)


def parse_command(text: str, commands: frozenset[str] = COMMANDS) -> ParsedCommand | None:
    """The command that ``text`` is, or None when it is a prompt."""
    parts = text.strip().split(maxsplit=1)
    if not parts or not parts[0].startswith("!"):
        return None
    name = parts[0][1:].lower()
    if name not in commands:
        return None
    return ParsedCommand(name=name, args=parts[1].strip() if len(parts) > 1 else "")
