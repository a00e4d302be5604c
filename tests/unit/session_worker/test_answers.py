"""Answers over the size limit: cut in the thread, whole in a file of the workdir."""

from __future__ import annotations

from typing import TYPE_CHECKING

from session_worker import answers

if TYPE_CHECKING:
    from pathlib import Path


def test_an_answer_that_fits_is_untouched(tmp_path: Path) -> None:
    """Up to the limit nothing is cut and no file is written."""
    assert answers.cap(str(tmp_path), "p1", "x" * 100, limit=100) == "x" * 100
    assert not (tmp_path / ".mmclaude").exists()


def test_a_big_answer_is_cut_and_saved_whole(tmp_path: Path) -> None:
    """Over the limit: the thread gets the head and a note naming the file; the file has
    every character."""
    text = "".join(f"line {i}\n" for i in range(1000))
    capped = answers.cap(str(tmp_path), "p1", text, limit=1000)
    saved = tmp_path / ".mmclaude" / "answers" / "p1.md"
    assert saved.read_text(encoding="utf-8") == text
    head, note = capped.split("\n\n✂️ ")
    assert len(head) <= 1000
    assert text.startswith(head + "\n")  # cut at a line break
    assert "`.mmclaude/answers/p1.md`" in note
    assert f"{len(text):,} characters" in note


def test_saving_again_is_harmless(tmp_path: Path) -> None:
    """A re-run turn (after a crash) writes the file again: one file, the last text, no
    temporary leftovers."""
    assert answers.save(str(tmp_path), "p1", "first") == ".mmclaude/answers/p1.md"
    assert answers.save(str(tmp_path), "p1", "second") == ".mmclaude/answers/p1.md"
    folder = tmp_path / ".mmclaude" / "answers"
    assert [p.name for p in folder.iterdir()] == ["p1.md"]
    assert (folder / "p1.md").read_text() == "second"


def test_a_strange_post_id_cannot_leave_the_answers_dir(tmp_path: Path) -> None:
    """A post id that is not a plain token is hashed into the file name."""
    name = answers.file_name("../../etc/passwd")
    assert "/" not in name
    assert name.endswith(".md")
    assert answers.file_name("abc123") == "abc123.md"


def test_a_cut_code_block_is_closed() -> None:
    """A cut inside a code block closes it, so the note is not shown as code."""
    text = "intro\n```python\n" + "print(1)\n" * 100 + "```\n"
    head = answers.cut(text, 200)
    assert head.endswith("\n```")
    assert head.count("```") == 2


def test_an_unwritable_workdir_still_cuts(tmp_path: Path) -> None:
    """When the file cannot be written the answer is still cut, and says so."""
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    capped = answers.cap(str(blocker), "p1", "y" * 500, limit=100)
    assert len(capped) < 300
    assert "could not be saved" in capped
