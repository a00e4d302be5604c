"""Approval and question posts: shown as the worker says, found again, answered by reactions.

The worker sends :class:`protocol.ApprovalShow` (the request's state and text) until a
gateway confirms it with :class:`protocol.ApprovalShown`. Posting is idempotent like an
answer: the post carries ``props.mmclaude_approval`` (or ``mmclaude_question``) = the request
id and a ``pending_post_id`` derived from it, and before creating one the thread is searched
for it. It never carries ``mmclaude_reply_to``: it is not an answer (``mmclaude_prompt`` names
the prompt whose turn asked). A reaction on a pending request's post by an allowed user becomes a
:class:`protocol.Decision`; reactions made while no gateway watched are read back when the
post is found again.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Literal

from loguru import logger

from gateway.errors import MattermostError
from gateway.thread_binding import not_member
from protocol import ApprovalShown, Decision

if TYPE_CHECKING:
    from collections.abc import Callable

    from gateway.access import Access
    from gateway.bus import WorkerBus
    from gateway.mattermost import MattermostApi
    from protocol import ApprovalShow

__all__ = ["EMOJI", "ApprovalPosts", "Approvals", "behavior_of"]

EMOJI: dict[str, Literal["allow", "always", "deny"]] = {
    "+1": "allow",
    "thumbsup": "allow",
    "white_check_mark": "always",
    "heavy_check_mark": "always",
    "-1": "deny",
    "thumbsdown": "deny",
}


def behavior_of(emoji_name: str) -> Literal["allow", "always", "deny"] | None:
    """The decision a reaction stands for, None for any other emoji."""
    return EMOJI.get(emoji_name)


class ApprovalPosts:
    """The approval posts this gateway knows, and the ones it still has to show."""

    def __init__(self) -> None:
        self.todo: dict[str, ApprovalShow] = {}  # request id → latest wanted state
        self.post_of: dict[str, str] = {}  # request id → post id
        self.request_of: dict[str, str] = {}  # post id → request id
        self.created_of: dict[str, int] = {}  # request id → its post's create_at
        self.pending: set[str] = set()  # request ids still waiting for a decision
        self.ready = asyncio.Event()

    def push(self, show: ApprovalShow) -> None:
        self.todo[show.request_id] = show
        self.ready.set()

    def request_for(self, post_id: str) -> str | None:
        """The pending request whose post is ``post_id``."""
        request_id = self.request_of.get(post_id)
        return request_id if request_id in self.pending else None

    async def run(
        self,
        client: MattermostApi,
        where: Callable[[], tuple[str, str, str]],
        shown: Callable[[ApprovalShow, str, int], None],
        reactions: Callable[[str, list[tuple[str, str]]], None],
    ) -> None:
        """Show every request as wanted, forever; failures are retried by the worker."""
        while True:
            await self.ready.wait()
            self.ready.clear()
            for request_id in list(self.todo):
                show = self.todo.pop(request_id)
                try:
                    await self._show(client, where(), show, shown, reactions)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the worker re-sends; never fatal here
                    # The post may be gone (deleted by hand): look for it afresh next time.
                    post_id = self.post_of.pop(request_id, None)
                    self.request_of.pop(post_id or "", None)
                    logger.warning("approval.show_failed", request_id=request_id, error=str(exc))

    async def _show(
        self,
        client: MattermostApi,
        where: tuple[str, str, str],
        show: ApprovalShow,
        shown: Callable[[ApprovalShow, str, int], None],
        reactions: Callable[[str, list[tuple[str, str]]], None],
    ) -> None:
        bot_id, channel_id, thread_id = where
        if not thread_id:
            return
        key = "mmclaude_question" if show.kind == "question" else "mmclaude_approval"
        post_id = self.post_of.get(show.request_id)
        message = None
        found_again = made = False
        if post_id is None:
            post_id, message, created = await self._find(client, thread_id, bot_id, show, key)
            found_again = post_id is not None
            self.created_of[show.request_id] = created
        if post_id is None and show.state != "pending":
            shown(show, "", 0)  # ended before it was ever posted: nothing to show or mark
            return
        if post_id is None:
            post = await client.call(
                f"post approval {show.request_id}",
                lambda: client.create_post(
                    channel_id=channel_id,
                    root_id=thread_id,
                    message=show.text,
                    props={key: show.request_id, "mmclaude_prompt": show.prompt_post_id},
                    pending_post_id=f"{show.request_id}:approval",
                ),
                forbidden=not_member(channel_id),
            )
            post_id, message, made = post.id, post.message, True
            self.created_of[show.request_id] = post.create_at
            logger.info("approval.posted", request_id=show.request_id, post_id=post_id)
        self.post_of[show.request_id] = post_id
        self.request_of[post_id] = show.request_id
        if show.state == "pending":
            self.pending.add(show.request_id)
        else:
            self.pending.discard(show.request_id)
        if message != show.text:
            await client.call(
                f"edit approval {show.request_id}",
                lambda: client.patch_post(post_id, message=show.text),
            )
            logger.info("approval.edited", request_id=show.request_id, state=show.state)
        shown(show, post_id, self.created_of.get(show.request_id, 0))
        if made and show.kind == "approval":
            await _offer_reactions(client, bot_id, post_id)
        if found_again and show.state == "pending":
            # Reactions made while no gateway had this post in mind.
            reactions(post_id, await client.reactions(post_id))

    async def _find(
        self,
        client: MattermostApi,
        thread_id: str,
        bot_id: str,
        show: ApprovalShow,
        key: str,
    ) -> tuple[str | None, str | None, int]:
        async for posts in client.thread_after(thread_id, max(0, show.create_at - 1)):
            for post in posts:
                if (
                    post.user_id == bot_id
                    and post.prop(key) == show.request_id
                    and not post.delete_at
                ):
                    return post.id, post.message, post.create_at
        return None, None, 0


OFFERED = ("+1", "white_check_mark", "-1")


async def _offer_reactions(client: MattermostApi, bot_id: str, post_id: str) -> None:
    """The bot's own 👍 ✅ 👎 on a new approval post, so that deciding is one click (the
    bot's reactions never count as decisions). Best effort: a failure is logged."""
    for emoji in OFFERED:
        try:
            await client.add_reaction(user_id=bot_id, post_id=post_id, emoji_name=emoji)
        except MattermostError as exc:
            logger.warning("approval.reaction_failed", post_id=post_id, error=str(exc))
            return


class Approvals:
    """The approval glue between the worker and the thread: shows what the worker asks
    (:class:`ApprovalPosts`), tells it what is shown, and turns reactions on a pending
    request's post into :class:`protocol.Decision` when their author is allowed."""

    def __init__(
        self,
        client: MattermostApi,
        bus: WorkerBus,
        access: Access,
        gateway_id: str,
        where: Callable[[], tuple[str, str, str]],
    ) -> None:
        self.client = client
        self.bus = bus
        self.access = access
        self.gateway_id = gateway_id
        self.where = where  # (bot id, channel id, thread id)
        self.posts = ApprovalPosts()
        self._log = logger.bind(gateway=gateway_id)

    def push(self, show: ApprovalShow) -> None:
        self.posts.push(show)

    @property
    def pending(self) -> bool:
        return bool(self.posts.pending)

    async def run(self) -> None:
        await self.posts.run(self.client, self.where, self._shown, self._reactions)

    def _shown(self, show: ApprovalShow, post_id: str, post_create_at: int) -> None:
        self.bus.send(
            ApprovalShown(
                gateway_id=self.gateway_id,
                request_id=show.request_id,
                state=show.state,
                post_id=post_id,
                post_create_at=post_create_at,
            )
        )

    def _reactions(self, post_id: str, reactions: list[tuple[str, str]]) -> None:
        for user_id, emoji in reactions:
            self.reaction_added(user_id, post_id, emoji)

    async def reread_reactions(self) -> None:
        """After a fresh WebSocket: reactions made while it was down."""
        for request_id in list(self.posts.pending):
            post_id = self.posts.post_of.get(request_id)
            if post_id is None:
                continue
            try:
                self._reactions(post_id, await self.client.reactions(post_id))
            except MattermostError as exc:
                self._log.warning("approval.reactions_failed", error=str(exc), post_id=post_id)

    def reaction_added(self, user_id: str, post_id: str, emoji_name: str) -> None:
        """A reaction on an approval post decides it when its author is allowed now (by id,
        as resolved from the server; a name resolved later counts from the next refresh)."""
        request_id = self.posts.request_for(post_id)
        behavior = behavior_of(emoji_name)
        bot_id = self.where()[0]
        if request_id is None or behavior is None or user_id == bot_id:
            return
        if not self.access.allow.allows(user_id):
            self._log.debug("reaction.ignored", post_id=post_id, user_id=user_id)
            return
        self._log.info("approval.reaction", request_id=request_id, behavior=behavior)
        self.bus.send(
            Decision(
                gateway_id=self.gateway_id,
                request_id=request_id,
                behavior=behavior,
                user_id=user_id,
                username=self.access.name_of(user_id),
            )
        )
