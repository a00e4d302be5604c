"""Posting one answer into the thread, exactly once whatever died before.

Each part carries ``props.mmclaude_reply_to``/``mmclaude_part`` and a ``pending_post_id`` of
``"<post id>:<part>"``: Mattermost folds repeats within 30 s into one post, and beyond that a
re-delivery (``attempt > 1``) or a retry after an answer-less failure first looks in the
thread for the parts already there and posts only the missing ones.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from gateway.binding import not_member
from gateway.bridge import split
from protocol import EMPTY_ANSWER

if TYPE_CHECKING:
    from gateway.mattermost import MattermostClient
    from protocol import Answer

__all__ = ["deliver", "deliver_fallback", "posted_parts"]

SPLIT_OFF_LOOP = 256 * 1024  # runes: longer answers are split in a worker thread


async def deliver(
    client: MattermostClient, answer: Answer, *, thread_id: str, channel_id: str, bot_id: str
) -> tuple[tuple[str, ...], int]:
    """Post every missing part; the reply ids in order, and how many were already there."""
    text = answer.text if answer.text.strip() else EMPTY_ANSWER
    # Linear, but a few MB of fence lines still take a second: off the event loop (which
    # sends the heartbeats) for anything big.
    parts = await asyncio.to_thread(split, text) if len(text) > SPLIT_OFF_LOOP else split(text)
    have: dict[int, str] = {}
    if answer.attempt > 1:
        have = await posted_parts(client, answer, thread_id=thread_id, bot_id=bot_id)
    ids: list[str] = []
    file_ids: list[str] = []  # uploaded once per delivery, attached to part 1

    async def upload() -> list[str]:
        if not file_ids:
            for item in answer.files:
                info = await client.call(
                    f"upload {item.name!r} for the answer to {answer.post_id}",
                    lambda item=item: client.upload_file(  # type: ignore[misc]
                        channel_id=channel_id, name=item.name, data=item.data
                    ),
                    forbidden=not_member(channel_id),
                )
                file_ids.append(info.id)
        return file_ids

    for number, text in enumerate(parts, 1):
        reply_id = have.get(number)
        if reply_id is None:

            async def find(number: int = number) -> str | None:
                found = await posted_parts(client, answer, thread_id=thread_id, bot_id=bot_id)
                return found.get(number)

            async def create(number: int = number, text: str = text) -> str:
                attach = await upload() if number == 1 and answer.files else []
                post = await client.create_post(
                    channel_id=channel_id,
                    root_id=thread_id,
                    message=text,
                    props={
                        "mmclaude_reply_to": answer.post_id,
                        "mmclaude_part": number,
                        "mmclaude_parts": len(parts),
                    },
                    pending_post_id=f"{answer.post_id}:{number}",
                    file_ids=attach,
                )
                return post.id

            reply_id = await client.call(
                f"post part {number}/{len(parts)} of the answer to {answer.post_id}",
                create,
                forbidden=not_member(channel_id),
                recheck=find,
            )
        ids.append(reply_id)
    return tuple(ids), len(have)


async def posted_parts(
    client: MattermostClient, answer: Answer, *, thread_id: str, bot_id: str
) -> dict[int, str]:
    """Part number → id of the bot's replies to ``answer.post_id`` already in the thread.

    Only posts after the prompt are read: an answer is always newer than its question.
    """
    found: dict[int, str] = {}
    async for posts in client.thread_after(thread_id, max(0, answer.create_at - 1)):
        for post in posts:
            number = post.prop("mmclaude_part")
            if (
                post.user_id == bot_id
                and post.prop("mmclaude_reply_to") == answer.post_id
                and isinstance(number, int)
                and not isinstance(number, bool)
                and not post.delete_at
                and post.prop("mmclaude_fallback") is not True
            ):
                found.setdefault(number, post.id)
    return found


async def deliver_fallback(
    client: MattermostClient,
    answer: Answer,
    text: str,
    *,
    thread_id: str,
    channel_id: str,
    bot_id: str,
) -> str:
    """Post ``text`` as the answer's only part (after the real one was refused for good).

    It carries the usual props plus ``mmclaude_fallback``; a fallback already in the thread
    (from an earlier try or another gateway) is reused.
    """
    async for posts in client.thread_after(thread_id, max(0, answer.create_at - 1)):
        for post in posts:
            if (
                post.user_id == bot_id
                and post.prop("mmclaude_reply_to") == answer.post_id
                and post.prop("mmclaude_fallback") is True
                and not post.delete_at
            ):
                return post.id
    post = await client.call(
        f"post the fallback answer to {answer.post_id}",
        lambda: client.create_post(
            channel_id=channel_id,
            root_id=thread_id,
            message=text,
            props={
                "mmclaude_reply_to": answer.post_id,
                "mmclaude_part": 1,
                "mmclaude_parts": 1,
                "mmclaude_fallback": True,
            },
            pending_post_id=f"{answer.post_id}:fallback",
        ),
        forbidden=not_member(channel_id),
    )
    return post.id
