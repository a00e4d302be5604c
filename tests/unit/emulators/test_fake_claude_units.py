"""Pure parts of the fake claude: flag parsing, keyword parsing, N counting, answer building."""

from __future__ import annotations

import pytest

from emulators.claude.__main__ import parse_args
from emulators.claude.engine import content_text, keyword, long_answer, slow_seconds
from emulators.claude.session import Session


def test_parse_args_keeps_known_flags_and_drops_the_rest() -> None:
    """Valued flags work as `--x v` and `--x=v`, -r means --resume, unknown flags are dropped."""
    args = "-p --verbose --output-format=stream-json --allowedTools Bash Edit -r abc"
    flags = parse_args([*args.split(), "--permission-mode", "plan", "--weird"])
    assert flags["--output-format"] == "stream-json"
    assert flags["--resume"] == "abc"
    assert flags["--permission-mode"] == "plan"
    assert "--verbose" in flags
    assert "--weird" in flags
    assert "Bash" not in flags


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("SLOW:2", 2.0), ("a SLOW:0.25 b", 0.25), ("SLOW", 1.0), ("SLOWLY", 0.0), ("fast", 0.0)],
)
def test_slow_seconds(text: str, seconds: float) -> None:
    """SLOW:s takes floats, bare SLOW means one second, SLOWLY is not the keyword."""
    assert slow_seconds(text) == seconds


def test_keywords_are_whole_words() -> None:
    """CRASH does not fire on CRASHONCE, HANG not on HANGING."""
    assert keyword("CRASH", "x CRASH y")
    assert not keyword("CRASH", "CRASHONCE")
    assert keyword("CRASHONCE", "CRASHONCE")
    assert not keyword("HANG", "HANGING")


@pytest.mark.parametrize("size", [0, 3, 9, 80, 81, 1000, 123_457])
def test_long_answer_exact_length(size: int) -> None:
    """LONG answers have exactly the asked length, start with the echo and break lines."""
    text = long_answer("echo[1]: ", size)
    assert len(text) == size
    assert text == ("echo[1]: " + text[9:])[:size]
    assert all(len(line) <= 80 for line in text.split("\n"))


def test_request_size_merges_consecutive_user_messages() -> None:
    """N counts API messages: consecutive user entries (interrupt marker + next prompt) merge."""
    session = Session("/nonexistent", "s")
    assert session.request_size(["user"]) == 1
    session.add("user", "a")
    session.add("assistant", "echo[1]: a")
    assert session.request_size(["user"]) == 3
    session.add("user", "HANG")
    session.add("user", "[Request interrupted by user]")
    assert session.request_size(["user"]) == 3
    assert session.request_size(["user", "assistant", "user"]) == 5


def test_content_text() -> None:
    """String content is used as is; text blocks are joined by newlines, image blocks add a
    line each; other blocks are skipped."""
    assert content_text("hi") == "hi"
    blocks = [{"type": "text", "text": "a"}, {"type": "image"}, {"type": "text", "text": "b"}]
    assert content_text(blocks) == "a\nb\n[image ? 0 bytes]"
    assert content_text([{"type": "tool_result"}, {"type": "text", "text": "c"}]) == "c"
    assert content_text(None) == ""
