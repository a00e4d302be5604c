"""Attachments in and `!file` out: safe names, idempotent saving, images, path confinement."""

from __future__ import annotations

import base64
import os
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import Attachment
from session_worker import files, outfiles
from session_worker.files import FileRefused, confine, safe_name

if TYPE_CHECKING:
    from pathlib import Path

POST = "p" * 26
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 16
GIF = b"GIF89a" + b"\x00" * 16
WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 8


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("..", "file"),
        ("...", "file"),
        (".bashrc", "bashrc"),
        ("a/b\\c.txt", "c.txt"),
        ("C:\\Users\\x\\shot.png", "shot.png"),
        ("we ird$name!.tar.gz", "we_ird_name_.tar.gz"),
        ("", "file"),
        ("nul\x00byte.txt", "nul_byte.txt"),
        ("a..b.txt", "a.b.txt"),
    ],
)
def test_safe_name_examples(raw: str, expected: str) -> None:
    assert safe_name(raw) == expected


@given(st.text(max_size=400))
def test_safe_name_is_always_a_plain_short_base_name(raw: str) -> None:
    name = safe_name(raw)
    assert name
    assert "/" not in name
    assert "\\" not in name
    assert "\x00" not in name
    assert not name.startswith(".")
    assert ".." not in name
    assert len(name) <= files.MAX_NAME
    assert name not in (".", "..")


def test_safe_name_resolves_collisions_case_insensitively() -> None:
    taken: set[str] = set()
    names = [safe_name(n, taken) for n in ("a.txt", "A.txt", "x/a.txt", "a.txt")]
    assert names == ["a.txt", "A-2.txt", "a-3.txt", "a-4.txt"]
    long = "x" * 300 + ".log"
    first, second = safe_name(long, taken), safe_name(long, taken)
    assert first != second
    assert len(first) <= files.MAX_NAME
    assert len(second) <= files.MAX_NAME


def test_image_type_by_magic_bytes_not_name() -> None:
    assert files.image_type(PNG) == "image/png"
    assert files.image_type(JPEG) == "image/jpeg"
    assert files.image_type(GIF) == "image/gif"
    assert files.image_type(WEBP) == "image/webp"
    assert files.image_type(b"%PDF-1.4") == ""
    assert files.image_type(b"") == ""


def att(name: str, data: bytes, *, skipped: str = "") -> Attachment:
    return Attachment(file_id="f" * 26, name=name, size=len(data), data=data, skipped=skipped)


def test_save_attachments_is_idempotent_and_confined(tmp_path: Path) -> None:
    items = [att("../../evil.sh", b"echo hi"), att("shot.png", PNG), att("shot.png", GIF)]
    first = files.save_attachments(tmp_path, POST, items, max_bytes=1000)
    second = files.save_attachments(tmp_path, POST, items, max_bytes=1000)
    assert first == second
    folder = tmp_path / ".mmclaude" / "uploads" / POST
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [".manifest.json", "evil.sh", "shot.png", "shot-2.png"]
    )
    assert not (tmp_path / "evil.sh").exists()
    assert [f.path for f in first.saved] == [
        f".mmclaude/uploads/{POST}/evil.sh",
        f".mmclaude/uploads/{POST}/shot.png",
        f".mmclaude/uploads/{POST}/shot-2.png",
    ]
    assert [f.image for f in first.saved] == ["", "image/png", "image/gif"]
    assert files.load_manifest(tmp_path, POST) == first


def test_oversized_and_skipped_attachments_are_named_not_written(tmp_path: Path) -> None:
    items = [att("big.bin", b"x" * 11), att("gone.txt", b"", skipped="not readable")]
    manifest = files.save_attachments(tmp_path, POST, items, max_bytes=10)
    assert manifest.saved == ()
    assert len(manifest.skipped) == 2
    assert "big.bin" in manifest.skipped[0]
    note = files.skipped_note(manifest)
    assert "big.bin" in note
    assert "gone.txt" in note
    text = files.prompt_with_files("look", manifest)
    assert text.startswith("look")
    assert "not saved" in text


def test_prompt_lists_saved_paths_and_images_become_blocks(tmp_path: Path) -> None:
    manifest = files.save_attachments(
        tmp_path, POST, [att("a.png", PNG), att("notes.txt", b"n")], max_bytes=1000
    )
    text = files.prompt_with_files("what is this?", manifest, tmp_path)
    assert f"{tmp_path}/.mmclaude/uploads/{POST}/a.png" in text
    assert f".mmclaude/uploads/{POST}/notes.txt" in text
    [block] = files.image_blocks(tmp_path, manifest)
    assert block["type"] == "image"
    assert block["source"]["media_type"] == "image/png"
    assert base64.b64decode(block["source"]["data"]) == PNG
    assert files.skipped_note(manifest) == ""


def test_a_bad_post_id_never_becomes_a_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="post id"):
        files.save_attachments(tmp_path, "../../x", [att("a", b"a")], max_bytes=10)
    assert files.load_manifest(tmp_path, "../x") is None


def make_tree(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    (work / "src").mkdir(parents=True)
    (work / "src" / "app.py").write_text("print(1)\n")
    (tmp_path / "secret.txt").write_text("s")
    os.symlink(tmp_path / "secret.txt", work / "link-out")
    os.symlink(work / "src" / "app.py", work / "link-in")
    return work


@pytest.mark.parametrize(
    "path",
    ["../secret.txt", "/etc/passwd", "src/../../secret.txt", "link-out", "~/x", "", "src"],
)
def test_confine_refuses_what_resolves_outside_or_is_no_file(tmp_path: Path, path: str) -> None:
    work = make_tree(tmp_path)
    with pytest.raises(FileRefused):
        confine(work, path, 1000)


@pytest.mark.parametrize(
    "path",
    ["../secret.txt", "../no-such-file", "/etc/passwd", "/no/such", "link-out", "~/x",
     "src/../../secret.txt"],
)  # fmt: skip
def test_an_escape_is_refused_as_outside_even_when_nothing_is_there(
    tmp_path: Path, path: str
) -> None:
    """The reply says the path is outside the working directory and refused, never only that
    a file is missing (which would tell what exists outside)."""
    work = make_tree(tmp_path)
    with pytest.raises(FileRefused, match=r"outside the working directory.*refused"):
        confine(work, path, 1000)


@pytest.mark.parametrize("path", ["src/app.py", "./src/app.py", "link-in", "`src/app.py`"])
def test_confine_accepts_files_inside(tmp_path: Path, path: str) -> None:
    work = make_tree(tmp_path)
    assert confine(work, path, 1000) == (work / "src" / "app.py").resolve()


def test_confine_enforces_the_size_limit(tmp_path: Path) -> None:
    work = make_tree(tmp_path)
    with pytest.raises(FileRefused, match="MMCLAUDE_MAX_UPLOAD_MB"):
        confine(work, "src/app.py", 3)


def test_outfiles_survive_until_forgotten(tmp_path: Path) -> None:
    outfiles.store(tmp_path, POST, "app.py", b"x")
    outfiles.store(tmp_path, POST, "app.py", b"y")  # a repeat replaces, never doubles
    [item] = outfiles.load(tmp_path, POST)
    assert (item.name, item.data) == ("app.py", b"y")
    outfiles.forget(tmp_path, POST)
    assert outfiles.load(tmp_path, POST) == ()
    assert outfiles.load(tmp_path, "../etc") == ()
