"""Operations shared by the REST routes and the admin/in-process API: they mutate the store
and broadcast exactly the events a real server would, and keep the per-post timings."""

from __future__ import annotations

import asyncio
import re
import time
from typing import TYPE_CHECKING, Any

from .dedup import PENDING, PendingPostCache
from .errors import AppError
from .hub import dumps, make_broadcast
from .stats import PostTiming

if TYPE_CHECKING:
    from collections.abc import Callable

    from .faults import Faults
    from .hub import Hub
    from .model import Post, User
    from .stats import Counters
    from .store import PostPatch, Store

_MENTION_RE = re.compile(r"@([a-z0-9][a-z0-9._\-]*)", re.IGNORECASE)
_EVERYONE = {"channel", "all", "here"}


class RateLimitedError(Exception):
    """A 429: rendered as the plain-text body `limit exceeded\\n` with rate-limit headers."""

    def __init__(self, retry_after_s: float, limit: int, remaining: int, reset_s: float) -> None:
        super().__init__("limit exceeded")
        self.retry_after_s = retry_after_s
        self.limit = limit
        self.remaining = remaining
        self.reset_s = reset_s


class Core:
    def __init__(
        self,
        store: Store,
        hub: Hub,
        faults: Faults,
        counters: Counters,
        *,
        dedup_ttl_s: float = 30.0,
        post_create_delay_s: float = 0.0,
    ) -> None:
        self.store = store
        self.hub = hub
        self.faults = faults
        self.counters = counters
        self.dedup = PendingPostCache(ttl_s=dedup_ttl_s)
        self.rest_in_flight = 0  # REST requests being served now (not sockets)
        # An await between "pending" and "created" makes the dedup 500 reproducible.
        self.post_create_delay_s = post_create_delay_s
        self.timings: dict[str, PostTiming] = {}
        self._changed = asyncio.Event()

    # --- create -------------------------------------------------------------------------

    async def create_post(
        self,
        author: User,
        body: dict[str, Any],
        *,
        set_online: bool = True,
        inject_faults: bool = True,
    ) -> dict[str, Any]:
        """CreatePost with dedup; returns the post JSON with pending_post_id echoed."""
        failure = self.faults.take_post_failure() if inject_faults else None
        if failure is not None and not failure.after_create:
            self._raise_injected(failure.status, failure.retry_after)
        channel_id = _str_field(body, "channel_id")
        message = _str_field(body, "message")
        root_id = _str_field(body, "root_id")
        pending_id = _str_field(body, "pending_post_id")
        props = body.get("props") or {}
        file_ids = body.get("file_ids") or []
        if not isinstance(props, dict) or not isinstance(file_ids, list):
            raise AppError("api.context.invalid_body_param.app_error", 400, name="post")
        if _str_field(body, "type").startswith("system_"):
            raise AppError("api.context.invalid_param.app_error", 400, name="post.type")
        self.store.require_member(author, channel_id)
        if pending_id:
            found = self.dedup.lookup(pending_id)
            if found == PENDING:
                raise AppError("api.post.deduplicate_create_post.pending", 500)
            if found is not None:
                existing = self.store.posts.get(found)
                if existing is None or existing.delete_at:
                    raise AppError("api.post.deduplicate_create_post.failed_to_get", 500)
                if self.store.can_read(author.id, self.store.channels[existing.channel_id]):
                    self.counters.posts_deduplicated += 1
                    return self.store.render(existing)  # a DB read: pending_post_id is ""
            self.dedup.mark_pending(pending_id)
        try:
            self.store.check_new_post(author, channel_id, message, root_id)
            if self.post_create_delay_s:
                await asyncio.sleep(self.post_create_delay_s)
            post = self.store.create_post(
                author,
                channel_id,
                message,
                root_id=root_id,
                props=props,
                file_ids=[str(f) for f in file_ids],
            )
        except BaseException:
            if pending_id:
                self.dedup.forget(pending_id)
            raise
        if pending_id:
            self.dedup.mark_created(pending_id, post.id)
        rendered = self._publish_posted(author, post, pending_id, set_online)
        if failure is not None:
            self._raise_injected(failure.status, failure.retry_after)
        return rendered

    def _raise_injected(self, status: int, retry_after: float) -> None:
        self.counters.post_failures_injected += 1
        if status == 429:
            raise RateLimitedError(retry_after, 101, 0, retry_after)
        raise AppError("app.post.save.app_error", status)

    def _publish_posted(
        self, author: User, post: Post, pending_id: str, set_online: bool
    ) -> dict[str, Any]:
        timing = PostTiming(post.id, author.id, post.channel_id, post.root_id, time.monotonic())
        self.timings[post.id] = timing
        self.counters.posts_created += 1
        rendered = self.store.render(post, pending_id)
        channel = self.store.channels[post.channel_id]
        data = {
            "channel_display_name": channel.display_name,
            "channel_name": channel.name,
            "channel_type": channel.type,
            "post": dumps(rendered),
            "sender_name": f"@{author.username}",
            "set_online": set_online,
            "team_id": channel.team_id,
        }
        if post.file_ids:
            data["otherFile"] = "true"
            if any(self.store.files[f].is_image for f in post.file_ids):
                data["image"] = "true"
        mentioned = self._mentions(author, post)

        def hook(user_id: str) -> dict[str, Any]:
            # The per-connection broadcast hook: only the mentioned receiver learns of it.
            return {"mentions": dumps([user_id])} if user_id in mentioned else {}

        self.hub.broadcast(
            "posted",
            data,
            make_broadcast(channel_id=channel.id),
            hook=hook if mentioned else None,
            post_id=post.id,
        )
        timing.broadcast_at = time.monotonic()
        self._notify()
        return rendered

    def _mentions(self, author: User, post: Post) -> set[str]:
        members = self.store.channels[post.channel_id].members
        names = {m.rstrip(".").lower() for m in _MENTION_RE.findall(post.message)}
        if names & _EVERYONE:
            return members - {author.id}
        hits = set()
        for name in names:
            user = self.store.user_by_name(name)
            if user is not None and user.id in members and user.id != author.id:
                hits.add(user.id)
        return hits

    # --- edit, delete, react ------------------------------------------------------------

    def patch_post(self, user: User, post_id: str, patch: PostPatch) -> dict[str, Any]:
        post = self.store.patch_post(user, post_id, patch)
        rendered = self.store.render(post)
        self.hub.broadcast(
            "post_edited", {"post": dumps(rendered)}, make_broadcast(channel_id=post.channel_id)
        )
        self._notify()
        return rendered

    def delete_post(self, user: User, post_id: str) -> None:
        before = self.store.delete_post(user, post_id)
        # Only the sanitized variant: no emulated user is a system admin.
        broadcast = make_broadcast(channel_id=before["channel_id"], sanitized=True)
        self.hub.broadcast("post_deleted", {"post": dumps(before)}, broadcast)
        self._notify()

    def add_reaction(self, user: User, body: dict[str, Any]) -> dict[str, Any]:
        reaction = self.store.add_reaction(user, body).to_json()
        broadcast = make_broadcast(channel_id=reaction["channel_id"])
        self.hub.broadcast("reaction_added", {"reaction": dumps(reaction)}, broadcast)
        return reaction

    def remove_reaction(self, user: User, user_id: str, post_id: str, emoji: str) -> None:
        reaction = self.store.remove_reaction(user, user_id, post_id, emoji).to_json()
        broadcast = make_broadcast(channel_id=reaction["channel_id"])
        self.hub.broadcast("reaction_removed", {"reaction": dumps(reaction)}, broadcast)

    # --- observation --------------------------------------------------------------------

    def on_delivered(self, post_id: str, user_id: str) -> None:
        timing = self.timings.get(post_id)
        if timing is not None:
            timing.delivered_at.setdefault(user_id, time.monotonic())

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for_post(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float
    ) -> dict[str, Any]:
        """The first live post (create order) matching `predicate`, waiting up to `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            for post in self.store.posts.values():
                if post.delete_at == 0:
                    rendered = self.store.render(post)
                    if predicate(rendered):
                        return rendered
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"no matching post within {timeout} s; {len(self.store.posts)} rows exist"
                )
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                continue


def _str_field(body: dict[str, Any], name: str) -> str:
    value = body.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise AppError("api.context.invalid_body_param.app_error", 400, name="post")
    return value
