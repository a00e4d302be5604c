"""Files between Mattermost and the worker: a prompt's attachments, downloaded while the post
is accepted (only the gateway holds the token), and the `!file` command's parser.

Kept apart from the other commands' plumbing on purpose: :func:`parse_file_command` is the
one thing a shared command parser needs to call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from loguru import logger

from gateway.errors import BadRequestError, ForbiddenError, NotFoundError
from gateway.mattermost import FileTooLargeError
from protocol import Attachment

if TYPE_CHECKING:
    from collections.abc import Sequence

    from gateway.models import FileInfo

__all__ = ["PROMPT_FILE_BUDGET", "FileClient", "fetch_attachments", "parse_file_command"]

# A Prompt frame must stay under protocol.sockets.MAX_FRAME (64 MiB): the files of one post
# together get at most this much; the rest are skipped and the answer says so.
PROMPT_FILE_BUDGET = 48 * 1024 * 1024


class FileClient(Protocol):
    """What this needs of :class:`gateway.mattermost.MattermostClient`."""

    async def get_file_info(self, file_id: str) -> FileInfo: ...

    async def get_file(self, file_id: str, *, limit: int | None = None) -> bytes: ...


def parse_file_command(message: str) -> str | None:
    """The PATH of ``!file PATH`` (possibly empty), or None when the post is not that command."""
    text = message.strip()
    first, _, rest = text.partition(" ") if " " in text else (text, "", "")
    head = first.split("\n", 1)[0]
    if head.lower() != "!file":
        return None
    if "\n" in first:
        rest = first.split("\n", 1)[1] + (" " + rest if rest else "")
    return rest.strip().splitlines()[0].strip() if rest.strip() else ""


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


async def fetch_attachments(
    client: FileClient,
    file_ids: Sequence[str],
    *,
    max_bytes: int,
    known: Sequence[FileInfo] = (),
) -> tuple[Attachment, ...]:
    """Every attachment of a post: the info first (the size decides), then the bytes.

    The info comes from the post's ``metadata.files`` when the server embedded it, else from
    ``GET /files/{id}/info``; a server without that route (404, 405, 400) is asked for the file
    itself, read no further than ``max_bytes``. A file over ``max_bytes`` (or past
    :data:`PROMPT_FILE_BUDGET`) is listed with ``skipped`` and not downloaded; so is one the
    server refuses for good. Transient errors and a 401 propagate: the caller retries.
    """
    found: list[Attachment] = []
    budget = PROMPT_FILE_BUDGET
    limit = f"larger than MMCLAUDE_MAX_UPLOAD_MB ({_mb(max_bytes)})"
    infos = {info.id: info for info in known}
    for file_id in file_ids:
        info = infos.get(file_id)
        if info is None:
            try:
                info = await client.get_file_info(file_id)
            except (NotFoundError, BadRequestError) as exc:
                logger.bind(file_id=file_id, status=exc.status).info("attachment.no_info")
        name = (info.name if info is not None else "") or file_id
        size = info.size if info is not None else 0
        if size > max_bytes:
            found.append(Attachment(file_id=file_id, name=name, size=size, skipped=limit))
            continue
        if size > budget:
            reason = f"the post's files together exceed {_mb(PROMPT_FILE_BUDGET)}"
            found.append(Attachment(file_id=file_id, name=name, size=size, skipped=reason))
            continue
        try:
            data = await client.get_file(file_id, limit=min(max_bytes, budget))
        except FileTooLargeError:
            found.append(Attachment(file_id=file_id, name=name, size=size, skipped=limit))
            continue
        except (NotFoundError, ForbiddenError, BadRequestError) as exc:
            logger.bind(file_id=file_id, status=exc.status).warning("attachment.unavailable")
            found.append(Attachment(file_id=file_id, name=name, size=size, skipped="not readable"))
            continue
        budget -= len(data)
        found.append(Attachment(file_id=file_id, name=name, size=len(data), data=data))
        logger.bind(file_id=file_id, size=len(data)).debug("attachment.downloaded")
    return tuple(found)
