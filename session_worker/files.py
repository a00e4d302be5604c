"""Files in and out of the workdir: attachments of a prompt, and the confined `!file` path.

Attachments arrive on the wire (only the gateway holds the token) and are written under
``CLAUDE_WORKDIR/.mmclaude/uploads/<post id>/`` before the prompt is acknowledged, with a
``.manifest.json`` beside them that the turn reads back (image blocks, the skipped note).
Writing is idempotent: the same attachments give the same names and the same bytes, so a
re-sent prompt after a crash rewrites what is there instead of doubling it.

Nothing the client sends is trusted as a path: names are reduced to a safe base name.
"""

from __future__ import annotations

import base64
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from collections.abc import Sequence

    from protocol import Attachment

__all__ = [
    "MAX_ATTACHMENTS",
    "MAX_IMAGE_BLOCK",
    "UPLOADS",
    "FileRefused",
    "Manifest",
    "SavedFile",
    "confine",
    "image_blocks",
    "image_type",
    "load_manifest",
    "prompt_with_files",
    "safe_name",
    "save_attachments",
    "skipped_note",
]

UPLOADS = Path(".mmclaude") / "uploads"
MAX_NAME = 100  # characters of a saved file name
MAX_ATTACHMENTS = 20  # per prompt (Mattermost allows 10 per post)
MANIFEST = ".manifest.json"
# The Messages API refuses images over 5 MB; larger ones are only named by path.
MAX_IMAGE_BLOCK = 5 * 1024 * 1024
_POST_ID = re.compile(r"[a-z0-9]{26}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+\-]+")


class SavedFile(msgspec.Struct, frozen=True):
    path: str  # relative to the workdir
    size: int
    image: str = ""  # media type when png/jpeg/gif/webp by magic bytes


class Manifest(msgspec.Struct, frozen=True):
    saved: tuple[SavedFile, ...] = ()
    skipped: tuple[str, ...] = ()  # one human line per skipped attachment


def safe_name(name: str, taken: set[str] | None = None) -> str:
    """A base name safe to create in a directory of ours: no separator, no ``..``, no leading
    dot, no control character, at most ``MAX_NAME`` characters, unique among ``taken``
    (compared case-insensitively; the chosen name is added to it)."""
    name = unicodedata.normalize("NFKC", name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip("._ -")
    name = re.sub(r"\.{2,}", ".", name)
    if not name:
        name = "file"
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    ext = ext[:16]
    stem = stem[: MAX_NAME - len(ext) - 1 if ext else MAX_NAME].rstrip("._-") or "file"
    candidate = f"{stem}.{ext}" if ext else stem
    if taken is None:
        return candidate
    n = 1
    while candidate.lower() in taken or candidate.lower() == MANIFEST:
        n += 1
        suffix = f"-{n}"
        base = stem[: MAX_NAME - len(ext) - 1 - len(suffix) if ext else MAX_NAME - len(suffix)]
        candidate = f"{base}{suffix}.{ext}" if ext else f"{base}{suffix}"
    taken.add(candidate.lower())
    return candidate


def image_type(data: bytes) -> str:
    """The media type of a png, jpeg, gif or webp by its magic bytes, else ``""``."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return ""


def _upload_dir(workdir: Path, post_id: str) -> Path:
    if not _POST_ID.fullmatch(post_id):
        raise ValueError(f"not a post id: {post_id!r}")
    return workdir / UPLOADS / post_id


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def save_attachments(
    workdir: Path, post_id: str, attachments: Sequence[Attachment], max_bytes: int
) -> Manifest:
    """Write the attachments (idempotent) and their manifest; returns the manifest."""
    folder = _upload_dir(workdir, post_id)
    folder.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    saved: list[SavedFile] = []
    skipped: list[str] = []
    for item in attachments:
        shown = safe_name(item.name)
        if item.skipped or len(item.data) > max_bytes:
            reason = item.skipped or f"larger than {_mb(max_bytes)}"
            skipped.append(f"{shown} ({_mb(item.size or len(item.data))}): {reason}")
            continue
        name = safe_name(item.name, taken)
        _write_atomic(folder / name, item.data)
        rel = (UPLOADS / post_id / name).as_posix()
        saved.append(SavedFile(rel, len(item.data), image_type(item.data)))
    manifest = Manifest(tuple(saved), tuple(skipped))
    _write_atomic(folder / MANIFEST, msgspec.json.encode(manifest))
    return manifest


def load_manifest(workdir: Path, post_id: str) -> Manifest | None:
    """The manifest of a prompt's attachments; None without attachments (or a bad one)."""
    try:
        raw = (_upload_dir(workdir, post_id) / MANIFEST).read_bytes()
        return msgspec.json.decode(raw, type=Manifest)
    except (OSError, ValueError, msgspec.DecodeError):
        return None


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def prompt_with_files(text: str, manifest: Manifest, workdir: Path | None = None) -> str:
    """The prompt Claude gets: the post text, then the saved paths (absolute when
    ``workdir`` is given) and what was skipped."""
    lines = [text.rstrip()] if text.strip() else []
    if manifest.saved:
        lines.append("")
        lines.append("Attached files (saved in the working directory):")
        for f in manifest.saved:
            shown = str(workdir / f.path) if workdir is not None else f.path
            lines.append(f"- {shown} ({f.size} bytes)")
    if manifest.skipped:
        lines.append("")
        lines.append("Attachments not saved (too large or unreadable):")
        lines += [f"- {line}" for line in manifest.skipped]
    return "\n".join(lines)


def skipped_note(manifest: Manifest | None) -> str:
    """The line the answer starts with when attachments were skipped, else ``""``."""
    if manifest is None or not manifest.skipped:
        return ""
    return "⚠️ Skipped, not given to Claude: " + "; ".join(manifest.skipped)


def image_blocks(workdir: Path, manifest: Manifest) -> list[dict[str, Any]]:
    """Base64 image content blocks for the saved images (each at most MAX_IMAGE_BLOCK)."""
    blocks: list[dict[str, Any]] = []
    for item in manifest.saved:
        if not item.image or item.size > MAX_IMAGE_BLOCK:
            continue
        try:
            data = (workdir / item.path).read_bytes()
        except OSError:
            continue
        if image_type(data) != item.image:
            continue  # changed since: send only what we know is that image
        blocks.append(
            {
                "type": "image",
                "source": {
                    "type": "base64",
                    "media_type": item.image,
                    "data": base64.b64encode(data).decode("ascii"),
                },
            }
        )
    return blocks


@dataclass(frozen=True)
class FileRefused(Exception):
    """A ``!file`` path that may not be sent; ``reason`` is shown to the user."""

    reason: str


def confine(workdir: Path, requested: str, max_bytes: int) -> Path:
    """The regular file ``requested`` names inside ``workdir``, symlinks resolved; raises
    :class:`FileRefused` for an absolute path, one that resolves outside, a missing or
    non-regular file, or one over ``max_bytes``."""
    raw = requested.strip().strip("`")
    if not raw:
        raise FileRefused("Usage: `!file PATH` (a path inside the working directory).")
    if "\x00" in raw:
        raise FileRefused("That path is not valid.")
    outside = f"`{raw}` is outside the working directory: refused."
    if os.path.isabs(raw) or raw.startswith("~"):
        raise FileRefused(f"{outside[:-9]} (an absolute path): refused.")
    root = workdir.resolve()
    try:
        # Where it points, existing or not (symlinks of the parts that exist followed): a
        # path out of the workdir is refused as such, never reported as merely missing.
        if not (root / raw).resolve(strict=False).is_relative_to(root):
            raise FileRefused(outside)
        target = (root / raw).resolve(strict=True)
    except FileNotFoundError:
        raise FileRefused(f"`{raw}` does not exist in the working directory.") from None
    except (OSError, RuntimeError):
        raise FileRefused(f"`{raw}` cannot be resolved.") from None
    if not target.is_relative_to(root):
        raise FileRefused(outside)
    if not target.is_file():
        raise FileRefused(f"`{raw}` is not a regular file.")
    size = target.stat().st_size
    if size > max_bytes:
        raise FileRefused(
            f"`{raw}` is {_mb(size)}, larger than MMCLAUDE_MAX_UPLOAD_MB ({_mb(max_bytes)})."
        )
    return target
