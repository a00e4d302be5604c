"""Splitting answers into posts of at most 16383 runes, and putting them back together."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.splitting import POST_LIMIT, open_fence, reassemble, split

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType


def bodies(parts: list[str]) -> list[str]:
    """Each part without its "(i/n)" marker line."""
    n = len(parts)
    return [p.removesuffix(f"\n\n({i}/{n})") for i, p in enumerate(parts, 1)]


def test_a_short_answer_is_one_unchanged_part() -> None:
    """Up to the limit the text is posted as it is, without a marker."""
    text = "x" * POST_LIMIT
    assert split(text) == [text]
    assert reassemble([text]) == text


def test_parts_are_numbered_and_cut_at_paragraphs() -> None:
    """Over the limit each part ends with a blank line and "(i/n)", cut after a paragraph."""
    para = ("word " * 60).strip() + "\n\n"
    text = para * 200  # ~60 000 runes
    parts = split(text)
    assert len(parts) == 4
    for i, part in enumerate(parts, 1):
        assert len(part) <= POST_LIMIT
        assert part.endswith(f"\n\n({i}/4)")
    assert all(b.endswith("\n\n") for b in bodies(parts)[:-1])
    assert reassemble(parts) == text


def test_runes_not_bytes_or_utf16_are_counted() -> None:
    """Emoji (2 UTF-16 units, 4 bytes) and CJK (3 bytes) count as one rune each."""
    text = ("😀中" * 10_000) + "\n" + ("文" * 10_000)  # 30 001 runes, 100 000+ bytes
    parts = split(text)
    assert len(parts) == 2
    assert all(len(p) <= POST_LIMIT for p in parts)
    assert len(parts[0]) > POST_LIMIT - 200  # filled by runes, not by bytes
    assert reassemble(parts) == text


def test_a_single_line_longer_than_the_limit_is_cut_hard() -> None:
    """A line with no space or newline is cut at the limit and still reassembles."""
    text = "y" * 40_000
    parts = split(text)
    assert len(parts) == 3
    assert all(len(p) <= POST_LIMIT for p in parts)
    assert reassemble(parts) == text


def test_a_code_block_cut_by_a_split_is_closed_and_reopened() -> None:
    """The fence (with its info string) is closed at the end of a part and reopened after."""
    code = "".join(f"print({i})\n" for i in range(4000))  # ~40 000 runes of code
    text = "Here:\n\n```python title=x.py\n" + code + "```\nDone."
    parts = split(text)
    assert len(parts) == 3
    first, second, third = bodies(parts)
    assert first.endswith("\n```")
    assert open_fence(first) is None
    assert second.startswith("```python title=x.py\n")
    assert second.endswith("\n```")
    assert third.startswith("```python title=x.py\n")
    assert third.endswith("```\nDone.")
    assert reassemble(parts) == text


def test_a_long_line_inside_a_code_block_is_cut_hard_and_fenced() -> None:
    """Minified JSON in a fence: the hard cut is fenced too and nothing is lost."""
    text = "~~~~json\n" + '{"k":1}' * 6000 + "\n~~~~\n"
    parts = split(text)
    assert len(parts) == 3
    assert all(open_fence(b) is None for b in bodies(parts)[:-1])
    assert bodies(parts)[1].startswith("~~~~json\n")
    assert reassemble(parts) == text


def test_reassemble_refuses_parts_that_split_did_not_make() -> None:
    """A missing marker or reopening line is an error, not a silent wrong text."""
    with pytest.raises(ValueError, match="does not end with"):
        reassemble(["a\n\n(1/2)", "b"])
    with pytest.raises(ValueError, match="does not reopen"):
        reassemble(["```py\na\n```\n\n(1/2)", "b\n\n(2/2)"])


def test_a_tiny_limit_is_refused() -> None:
    """Limits too small to hold a fence line and a marker are a programming error."""
    with pytest.raises(ValueError, match="at least"):
        split("x" * 1000, limit=100)


FRAGMENTS = st.sampled_from(
    [
        "```",
        "```py",
        "````",
        "~~~~",
        "   ```",
        "    ```",
        "``` `x`",
        "`",
        "\n",
        "\n\n",
        "\r\n",
        " ",
        "\t",
        "word ",
        "a",
        "é",
        "😀",
        "👩‍👩‍👧",
        "中文",
        "(1/2)",
        "x" * 60,
    ]
)


@settings(max_examples=600, deadline=None)
@given(st.lists(FRAGMENTS, max_size=300).map("".join), st.integers(256, 700))
def test_split_then_reassemble_is_the_identity(text: str, limit: int) -> None:
    """For any text: parts fit the limit, fences are balanced per part, and the text returns."""
    parts = split(text, limit)
    assert all(len(p) <= limit for p in parts)
    assert reassemble(parts) == text
    if len(parts) > 1:
        assert all(open_fence(b) is None for b in bodies(parts)[:-1])


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=3000), st.integers(256, 500))
def test_split_then_reassemble_is_the_identity_on_any_unicode(text: str, limit: int) -> None:
    """Arbitrary code points (controls, surrogates excluded by hypothesis) survive too."""
    parts = split(text, limit)
    assert all(len(p) <= limit for p in parts)
    assert reassemble(parts) == text


# --- cost: split runs on the gateway's event loop (heartbeats wait while it works) ---------


def _work(text: str) -> int:
    """Python calls and C calls made by split + reassemble of ``text``: a count of the work
    done that does not depend on how busy the machine is."""
    events = 0

    def count(frame: FrameType, event: str, arg: object) -> None:
        nonlocal events
        events += 1

    sys.setprofile(count)
    try:
        parts = split(text)
    finally:
        sys.setprofile(None)
    assert reassemble(parts) == text
    return events


PROSE_LINE = "lorem ipsum dolor sit amet, " * 3 + "\n"
SHAPES: dict[str, Callable[[int], str]] = {
    "prose": lambda n: (PROSE_LINE * (n // len(PROSE_LINE) + 1))[:n],
    "fence lines": lambda n: ("```\n" * (n // 4 + 1))[:n],
    "code blocks": lambda n: (("```py\n" + "x = 1\n" * 40 + "```\n\n") * (n // 260 + 1))[:n],
    "one long line": lambda n: "x" * n,
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_split_work_grows_linearly(shape: str) -> None:
    """Four times the text costs about four times the work (it was quadratic: 256 KB of
    fence lines took 5.6 s, 2 MB of prose 12 s, on the event loop)."""
    make = SHAPES[shape]
    small, large = _work(make(64 * 1024)), _work(make(256 * 1024))
    assert large <= 5 * small, (small, large)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("shape", "size"), [("prose", 2 << 20), ("fence lines", 256 << 10)])
def test_split_of_a_big_answer_does_a_bounded_amount_of_work(shape: str, size: int) -> None:
    """A 2 MB answer and 256 KB of fence lines: a bounded number of calls per line of the
    text (about 10 for prose, 17 for fence lines, each line toggling a fence)."""
    text = SHAPES[shape](size)
    assert _work(text) <= 25 * (text.count("\n") + 1) + 1000 * len(split(text))
