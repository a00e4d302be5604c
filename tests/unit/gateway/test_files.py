"""The `!file` command's parser."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from gateway.errors import NotFoundError
from gateway.files import fetch_attachments, parse_file_command
from gateway.mattermost import FileTooLargeError
from gateway.models import FileInfo

if TYPE_CHECKING:
    from protocol import Attachment


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


class FakeFiles:
    """A server's files; `no_info` answers 404 to GET /files/{id}/info (an older server)."""

    def __init__(self, files: dict[str, tuple[str, bytes]], *, no_info: bool = False) -> None:
        self.files = files
        self.no_info = no_info
        self.calls: list[str] = []

    async def get_file_info(self, file_id: str) -> FileInfo:
        self.calls.append(f"info {file_id}")
        if self.no_info or file_id not in self.files:
            raise NotFoundError("404", status=404)
        name, data = self.files[file_id]
        return FileInfo(id=file_id, name=name, size=len(data))

    async def get_file(self, file_id: str, *, limit: int | None = None) -> bytes:
        self.calls.append(f"get {file_id}")
        if file_id not in self.files:
            raise NotFoundError("404", status=404)
        data = self.files[file_id][1]
        if limit is not None and len(data) > limit:
            raise FileTooLargeError("too large")
        return data


def fetch(client: FakeFiles, ids: list[str], **kw: Any) -> tuple[Attachment, ...]:
    return asyncio.run(fetch_attachments(client, ids, max_bytes=10, **kw))


def test_the_size_from_the_info_decides_before_any_download() -> None:
    client = FakeFiles({"a": ("a.txt", b"small"), "b": ("big.bin", b"x" * 11)})
    small, big = fetch(client, ["a", "b"])
    assert (small.name, small.data, small.skipped) == ("a.txt", b"small", "")
    assert big.data == b""
    assert "MMCLAUDE_MAX_UPLOAD_MB" in big.skipped
    assert "get b" not in client.calls


def test_embedded_metadata_saves_the_info_call() -> None:
    client = FakeFiles({"a": ("a.txt", b"small")})
    [item] = fetch(client, ["a"], known=[FileInfo(id="a", name="a.txt", size=5)])
    assert item.data == b"small"
    assert client.calls == ["get a"]


def test_a_server_without_the_info_route_still_gives_the_file_within_the_limit() -> None:
    client = FakeFiles({"a": ("a.txt", b"small"), "b": ("b", b"x" * 11)}, no_info=True)
    small, big = fetch(client, ["a", "b"])
    assert small.data == b"small"
    assert small.name == "a"  # no info: the id stands in for the name
    assert big.data == b""
    assert big.skipped


def test_a_missing_file_is_listed_as_skipped() -> None:
    [gone] = fetch(FakeFiles({}), ["zz"])
    assert gone.skipped == "not readable"
