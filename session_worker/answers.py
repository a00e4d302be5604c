"""Answers too big for the thread: cut in the thread, whole in a file of the workdir.

An answer over :data:`MAX_ANSWER_CHARS` (a few MB of text would be hundreds of posts, and
every part costs the gateway a REST call) is cut at a line boundary with a note; the whole
text is written to ``CLAUDE_WORKDIR/.mmclaude/answers/<post id>.md`` first (atomically: a
temporary file renamed), so a crash or a re-run of the turn only writes it again.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from loguru import logger

from session_worker import policy

__all__ = ["ANSWERS_DIR", "MAX_ANSWER_CHARS", "cap", "cut", "save"]

MAX_ANSWER_CHARS = 256 * 1024  # characters kept in the thread: 17 posts of 16383
ANSWERS_DIR = Path(".mmclaude") / "answers"  # under CLAUDE_WORKDIR

_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_FENCE = re.compile(r"^\s*```", re.MULTILINE)


def file_name(post_id: str) -> str:
    """``<post id>.md``; an id that is not a plain token is hashed (no path tricks)."""
    if _SAFE_ID.match(post_id):
        return f"{post_id}.md"
    return f"{hashlib.sha256(post_id.encode()).hexdigest()[:32]}.md"


def cut(text: str, limit: int) -> str:
    """The first ``limit`` characters at most, ending at a line break when one is near,
    with a code block left open by the cut closed."""
    head = text[:limit]
    newline = head.rfind("\n")
    if newline >= limit // 2:
        head = head[:newline]
    if len(_FENCE.findall(head)) % 2:
        head += "\n```"
    return head


def save(workdir: str, post_id: str, text: str) -> str | None:
    """Write ``text`` to the answers dir of ``workdir``; its path relative to the workdir,
    or None (logged) when it cannot be written."""
    relative = ANSWERS_DIR / file_name(post_id)
    folder = Path(workdir) / ANSWERS_DIR
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".part-", suffix=".md")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(tmp, folder / relative.name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        logger.bind(post_id=post_id, error=str(exc)).error("answer.save_failed")
        return None
    return str(relative)


def cap(workdir: str, post_id: str, text: str, limit: int = MAX_ANSWER_CHARS) -> str:
    """``text`` when it fits; else its cut with a note naming the file that holds it all."""
    if len(text) <= limit:
        return text
    saved = save(workdir, post_id, text)
    logger.bind(post_id=post_id, chars=len(text), limit=limit, saved=saved).warning("answer.cut")
    return cut(text, limit) + "\n\n" + policy.cut_note(len(text), saved)
