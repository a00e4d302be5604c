"""Files between Mattermost and the worker: a prompt's attachments, downloaded while the post
is accepted (only the gateway holds the token), and the `!file` command's parser.

Kept apart from the other commands' plumbing on purpose: :func:`parse_file_command` is the
one thing a shared command parser needs to call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loguru import logger

from gateway.errors import BadRequestError, ForbiddenError, NotFoundError
from protocol import Attachment

if TYPE_CHECKING:
    from collections.abc import Sequence

    from gateway.mattermost import MattermostClient

__all__ = ["PROMPT_FILE_BUDGET", "fetch_attachments", "parse_file_command"]

# A Prompt frame must stay under protocol.sockets.MAX_FRAME (64 MiB): the files of one post
# together get at most this much; the rest are skipped and the answer says so.
PROMPT_FILE_BUDGET = 48 * 1024 * 1024


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
    client: MattermostClient, file_ids: Sequence[str], *, max_bytes: int
) -> tuple[Attachment, ...]:
    """Every attachment of a post: the info first (the size decides), then the bytes.

    A file over ``max_bytes`` (or past :data:`PROMPT_FILE_BUDGET`) is not downloaded but
    listed with ``skipped``; a file the server refuses for good (404, 403, 400) is listed as
    skipped too. Transient errors and a 401 propagate: the caller retries the whole post.
    """
    found: list[Attachment] = []
    budget = PROMPT_FILE_BUDGET
    limit = f"larger than MMCLAUDE_MAX_UPLOAD_MB ({_mb(max_bytes)})"
    for file_id in file_ids:
        name, size = file_id, 0
        try:
            info = await client.get_file_info(file_id)
            name, size = info.name or file_id, info.size
            if size > max_bytes:
                found.append(Attachment(file_id=file_id, name=name, size=size, skipped=limit))
                continue
            if size > budget:
                reason = f"the post's files together exceed {_mb(PROMPT_FILE_BUDGET)}"
                found.append(Attachment(file_id=file_id, name=name, size=size, skipped=reason))
                continue
            data = await client.get_file(file_id)
        except (NotFoundError, ForbiddenError, BadRequestError) as exc:
            logger.bind(file_id=file_id, status=exc.status).warning("attachment.unavailable")
            found.append(Attachment(file_id=file_id, name=name, size=size, skipped="not readable"))
            continue
        if len(data) > max_bytes:  # the info understated it: the limit holds anyway
            found.append(Attachment(file_id=file_id, name=name, size=len(data), skipped=limit))
            continue
        budget -= len(data)
        found.append(Attachment(file_id=file_id, name=name, size=len(data), data=data))
        logger.bind(file_id=file_id, size=len(data)).debug("attachment.downloaded")
    return tuple(found)
