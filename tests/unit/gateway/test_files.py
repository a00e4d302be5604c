"""The `!file` command's parser."""

from __future__ import annotations

import pytest

from gateway.files import parse_file_command


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("!file src/app.py", "src/app.py"),
        ("  !FILE   README.md  ", "README.md"),
        ("!file", ""),
        ("!file\nnotes.txt", "notes.txt"),
        ("!file a.txt\nand more words", "a.txt"),
        ("!files a.txt", None),
        ("please !file a.txt", None),
        ("hello", None),
        ("", None),
    ],
)
def test_parse_file_command(message: str, expected: str | None) -> None:
    assert parse_file_command(message) == expected
