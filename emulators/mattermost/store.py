"""In-memory server state: seed data, permissions and the post/reaction rules of REST v4.

Everything here is synchronous and raises AppError; the HTTP layer parses requests and the
hub broadcasts the resulting events.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import AppError, bad_url_param, forbidden, post_not_found
from .ids import is_valid_id
from .model import (
    DEFAULT_MAX_FILE_SIZE,
    MAX_MESSAGE_RUNES,
    Channel,
    FileInfo,
    Post,
    Reaction,
    Team,
    User,
    rune_count,
)

if TYPE_CHECKING:
    from .ids import IdGenerator, MillisClock

_EMOJI_RE = re.compile(r"[a-zA-Z0-9+_\-]{1,64}")
MAX_FILES_PER_POST = 10  # Post.IsValid caps the file_ids JSON at 300 runes, about 10 ids
SINCE_LIMIT = 1000  # the server caps ?since= answers at 1000 posts
MAX_PER_PAGE = 200


@dataclass
class ThreadQuery:
    """Paging of GET /posts/{id}/thread; `per_page` 0 means the whole thread."""

    per_page: int = 0
    from_create_at: int = 0
    from_post: str = ""
    direction: str = ""


@dataclass
class ChannelPostsQuery:
    since: int | None = None
    page: int = 0
    per_page: int = 60
    before: str = ""
    after: str = ""
    skip_fetch_threads: bool = False


@dataclass
class PostPatch:
    message: str | None = None
    is_pinned: bool | None = None
    props: dict[str, Any] | None = None
    file_ids: list[str] | None = None


@dataclass
class Store:
    """Users, one team, channels with members, posts (incl. edit history) and reactions."""

    ids: IdGenerator
    clock: MillisClock
    team: Team
    users: dict[str, User] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)
    posts: dict[str, Post] = field(default_factory=dict)  # insertion = create order
    reactions: dict[str, list[Reaction]] = field(default_factory=dict)
    _by_token: dict[str, User] = field(default_factory=dict)
    _by_name: dict[str, User] = field(default_factory=dict)
    _replies: dict[str, list[Post]] = field(default_factory=dict)  # root id -> reply rows
    files: dict[str, FileInfo] = field(default_factory=dict)
    max_file_size: int = DEFAULT_MAX_FILE_SIZE

    # --- users and channels -------------------------------------------------------------

    def add_user(self, username: str, *, first_name: str = "", is_bot: bool = False) -> User:
        user = User(
            id=self.ids.new_id(),
            username=username,
            token=self.ids.new_id(),
            create_at=self.clock.now(),
            first_name=first_name,
            is_bot=is_bot,
            bot_description="Emulated bot" if is_bot else "",
        )
        self.users[user.id] = user
        self._by_token[user.token] = user
        self._by_name[user.username] = user
        return user

    def add_channel(self, name: str, display_name: str, kind: str, members: list[User]) -> Channel:
        channel = Channel(
            id=self.ids.new_id(),
            team_id=self.team.id,
            name=name,
            display_name=display_name,
            type=kind,
            create_at=self.clock.now(),
            members={u.id for u in members},
        )
        self.channels[channel.id] = channel
        return channel

    def rename_user(self, user_id: str, username: str) -> User:
        """Give a user another username (Mattermost lets users rename themselves)."""
        user = self.get_user(user_id)
        if username in self._by_name:
            raise AppError("app.user.save.username_exists.app_error", 400)
        del self._by_name[user.username]
        user.username = username
        self._by_name[username] = user
        return user

    def user_by_token(self, token: str) -> User | None:
        return self._by_token.get(token)

    def user_by_name(self, username: str) -> User | None:
        return self._by_name.get(username)

    def get_user(self, user_id: str) -> User:
        if not is_valid_id(user_id):
            raise bad_url_param("user_id")
        user = self.users.get(user_id)
        if user is None:
            raise AppError("app.user.missing_account.const", 404)
        return user

    def get_channel(self, viewer: User, channel_id: str) -> Channel:
        if not is_valid_id(channel_id):
            raise bad_url_param("channel_id")
        channel = self.channels.get(channel_id)
        if channel is None:
            raise AppError("app.channel.get.existing.app_error", 404)
        if not self.can_read(viewer.id, channel):
            raise forbidden()
        return channel

    def can_read(self, user_id: str, channel: Channel) -> bool:
        # Every seeded user is on the one team, and team members may read open channels.
        return channel.type == "O" or user_id in channel.members

    def require_member(self, user: User, channel_id: str) -> Channel:
        """create_post permission: membership; an unknown channel is also a 403."""
        channel = self.channels.get(channel_id)
        if channel is None or user.id not in channel.members:
            raise forbidden()
        return channel

    # --- posts --------------------------------------------------------------------------

    def reply_count(self, post: Post) -> int:
        root_id = post.root_id or post.id
        return sum(1 for r in self._replies.get(root_id, ()) if r.delete_at == 0)

    def render(self, post: Post, pending_post_id: str = "") -> dict[str, Any]:
        return post.to_json(
            reply_count=self.reply_count(post),
            pending_post_id=pending_post_id,
            reactions=self.reactions.get(post.id),
            files=[self.files[f] for f in post.file_ids if f in self.files],
        )

    def get_post(self, viewer: User, post_id: str) -> Post:
        if not is_valid_id(post_id):
            raise bad_url_param("post_id")
        post = self.posts.get(post_id)
        if post is None or post.delete_at:
            raise post_not_found()
        if not self.can_read(viewer.id, self.channels[post.channel_id]):
            raise forbidden()
        return post

    def check_new_post(self, author: User, channel_id: str, message: str, root_id: str) -> None:
        """Validations of CreatePost that do not depend on the dedup cache."""
        channel = self.require_member(author, channel_id)
        if rune_count(message) > MAX_MESSAGE_RUNES:
            raise AppError("model.post.is_valid.message_length.app_error", 400)
        if root_id:
            if not is_valid_id(root_id):
                raise AppError("model.post.is_valid.root_id.app_error", 400)
            root = self.posts.get(root_id)
            # Only a live root may be a thread target; a reply id is refused like a missing one.
            if root is None or root.delete_at or root.root_id:
                raise AppError("api.post.create_post.root_id.app_error", 400)
            if root.channel_id != channel.id:
                raise AppError("api.post.create_post.channel_root_id.app_error", 400)

    def check_file_ids(self, file_ids: list[str]) -> None:
        if len(file_ids) > MAX_FILES_PER_POST:
            raise AppError("model.post.is_valid.file_ids.app_error", 400)

    def _claim_files(self, author: User, post: Post, file_ids: list[str]) -> list[str]:
        """attachFilesToPost: only the author's own, still unattached uploads to this channel
        are attached; other ids are dropped from the post silently."""
        claimed: list[str] = []
        for file_id in dict.fromkeys(file_ids):
            info = self.files.get(file_id)
            if (
                info is None
                or info.post_id
                or info.user_id != author.id
                or info.channel_id != post.channel_id
            ):
                continue
            info.post_id = post.id
            claimed.append(file_id)
        return claimed

    def create_post(
        self,
        author: User,
        channel_id: str,
        message: str,
        *,
        root_id: str = "",
        props: dict[str, Any] | None = None,
        file_ids: list[str] | None = None,
        is_pinned: bool = False,
    ) -> Post:
        self.check_new_post(author, channel_id, message, root_id)
        self.check_file_ids(list(file_ids or []))
        props = dict(props or {})
        if author.is_bot:
            props["from_bot"] = "true"
        now = self.clock.now()
        post = Post(
            id=self.ids.new_id(),
            create_at=now,
            update_at=now,
            user_id=author.id,
            channel_id=channel_id,
            root_id=root_id,
            message=message,
            props=props,
            is_pinned=is_pinned,
        )
        post.file_ids = self._claim_files(author, post, list(file_ids or []))
        self.posts[post.id] = post
        if root_id:
            self._replies.setdefault(root_id, []).append(post)
            # A reply bumps its root's update_at, which is what makes ?since= find the thread.
            self.posts[root_id].update_at = now
        channel = self.channels[channel_id]
        channel.last_post_at = now
        channel.total_msg_count += 1
        return post

    def _own_live_post(self, user: User, post_id: str) -> Post:
        post = self.get_post(user, post_id)
        # edit_post/delete_post cover own posts; regular users lack the *_others_posts ones.
        if post.user_id != user.id:
            raise forbidden()
        return post

    def patch_post(self, user: User, post_id: str, patch: PostPatch) -> Post:
        post = self._own_live_post(user, post_id)
        if patch.message is not None and rune_count(patch.message) > MAX_MESSAGE_RUNES:
            raise AppError("model.post.is_valid.message_length.app_error", 400)
        now = self.clock.now()
        history = Post(**{**post.__dict__, "file_ids": list(post.file_ids)})
        history.id = self.ids.new_id()
        history.original_id = post.id
        history.delete_at = history.update_at = now
        self.posts[history.id] = history
        if history.root_id:
            self._replies.setdefault(history.root_id, []).append(history)
        if patch.message is not None and patch.message != post.message:
            post.message = patch.message
            post.edit_at = now
        if patch.is_pinned is not None:
            post.is_pinned = patch.is_pinned
        if patch.props is not None:
            post.props = dict(patch.props)  # patch replaces props, it does not merge
        if patch.file_ids is not None:
            post.file_ids = list(patch.file_ids)
        post.update_at = now
        return post

    def delete_post(self, user: User, post_id: str) -> dict[str, Any]:
        """Soft-delete a post (a root takes its replies along); returns the pre-deletion JSON."""
        post = self._own_live_post(user, post_id)
        before = self.render(post)
        now = self.clock.now()
        victims = [post]
        if not post.root_id:
            victims += self._replies.get(post.id, [])
        for victim in victims:
            if victim.delete_at == 0:
                victim.delete_at = victim.update_at = now
        return before

    def posts_in_create_order(self) -> list[Post]:
        return list(self.posts.values())

    # --- reading lists ------------------------------------------------------------------

    def thread(self, viewer: User, post_id: str, query: ThreadQuery) -> dict[str, Any]:
        post = self.get_post(viewer, post_id)
        root_id = post.root_id or post.id
        root = self.posts[root_id]
        rows = [root, *self._replies.get(root_id, [])]
        others = sorted(
            (p for p in rows if p.delete_at == 0 and p.id != post.id),
            key=lambda p: (p.create_at, p.id),
        )
        descending = query.direction == "up"
        if query.from_create_at:
            others = [p for p in others if _beyond(p, query, descending)]
        if descending:
            others.reverse()
        has_next = False
        if query.per_page:
            has_next = len(others) > query.per_page
            others = others[: query.per_page]
        page = [post, *others]
        body = self._post_list(page)
        if query.per_page:
            body["has_next"] = has_next
        return body

    def channel_posts(
        self, viewer: User, channel_id: str, query: ChannelPostsQuery
    ) -> dict[str, Any]:
        channel = self.get_channel(viewer, channel_id)
        rows = [p for p in self.posts.values() if p.channel_id == channel.id]
        if query.since is not None:
            # Strict >, with deleted rows and edit-history copies: a sync feed, not a view.
            since = query.since
            hits = [p for p in rows if p.update_at > since]
            hits.sort(key=lambda p: (p.create_at, p.id), reverse=True)
            hits = hits[:SINCE_LIMIT]
            roots = [self.posts[p.root_id] for p in hits if p.root_id]
            return self._post_list(hits, roots)
        # Newest first; ties (same ms) newest-inserted first, like an index scan would.
        live = sorted(
            (p for p in reversed(rows) if p.delete_at == 0),
            key=lambda p: p.create_at,
            reverse=True,
        )
        if query.before or query.after:
            anchor = self.posts.get(query.before or query.after)
            if anchor is None:
                live = []
            elif query.before:
                live = [p for p in live if p.create_at < anchor.create_at]
            else:
                live = [p for p in live if p.create_at > anchor.create_at]
        start = query.page * query.per_page
        page = live[start : start + query.per_page]
        extra: list[Post] = []
        if not query.skip_fetch_threads:
            for p in page:
                root_id = p.root_id or p.id
                extra.append(self.posts[root_id])
                extra.extend(r for r in self._replies.get(root_id, []) if r.delete_at == 0)
        return self._post_list(page, extra)

    def _post_list(self, ordered: list[Post], extra: list[Post] | None = None) -> dict[str, Any]:
        posts = {p.id: self.render(p) for p in ordered}
        for p in extra or ():
            posts.setdefault(p.id, self.render(p))
        return {
            "order": [p.id for p in ordered],
            "posts": posts,
            "next_post_id": "",
            "prev_post_id": "",
            "first_inaccessible_post_time": 0,
        }

    # --- files --------------------------------------------------------------------------

    def upload_file(self, user: User, channel_id: str, name: str, data: bytes) -> FileInfo:
        if not is_valid_id(channel_id):
            raise AppError("api.context.invalid_param.app_error", 400, name="channel_id")
        self.require_member(user, channel_id)  # upload_file permission in the channel
        if len(data) > self.max_file_size:
            raise AppError("api.file.upload_file.too_large_detailed.app_error", 413)
        # The server keeps only the base name of what the client sent.
        name = name.replace("\\", "/").rsplit("/", 1)[-1] or "file"
        info = FileInfo(self.ids.new_id(), user.id, channel_id, self.clock.now(), name, data)
        self.files[info.id] = info
        return info

    def get_file(self, viewer: User, file_id: str) -> FileInfo:
        """The uploader may always read a file; others only through a post they can read."""
        if not is_valid_id(file_id):
            raise bad_url_param("file_id")
        info = self.files.get(file_id)
        if info is None:
            raise AppError("app.file_info.get.app_error", 404)
        if info.user_id == viewer.id:
            return info
        post = self.posts.get(info.post_id) if info.post_id else None
        if post is None or not self.can_read(viewer.id, self.channels[post.channel_id]):
            raise forbidden()
        return info

    # --- reactions ----------------------------------------------------------------------

    def add_reaction(self, user: User, body: dict[str, Any]) -> Reaction:
        user_id, post_id, emoji = body.get("user_id"), body.get("post_id"), body.get("emoji_name")
        if user_id != user.id:
            raise AppError("api.reaction.save_reaction.user_id.app_error", 403)
        if not (is_valid_id(post_id) and isinstance(emoji, str) and _EMOJI_RE.fullmatch(emoji)):
            raise AppError("api.reaction.save_reaction.invalid.app_error", 400)
        assert isinstance(post_id, str)
        post = self.get_post(user, post_id)
        self.require_member(user, post.channel_id)
        existing = self.reactions.setdefault(post.id, [])
        for reaction in existing:
            if reaction.user_id == user.id and reaction.emoji_name == emoji:
                return reaction
        reaction = Reaction(user.id, post.id, emoji, post.channel_id, self.clock.now())
        existing.append(reaction)
        post.has_reactions = True
        post.update_at = reaction.create_at  # reactions bump update_at (seen by ?since=)
        return reaction

    def remove_reaction(self, user: User, user_id: str, post_id: str, emoji: str) -> Reaction:
        if user_id != user.id:
            raise forbidden()
        post = self.get_post(user, post_id)
        existing = self.reactions.get(post.id, [])
        for reaction in existing:
            if reaction.user_id == user_id and reaction.emoji_name == emoji:
                existing.remove(reaction)
                post.has_reactions = bool(existing)
                post.update_at = self.clock.now()
                return reaction
        # Deleting an absent reaction succeeds on the real server too; echo what was asked.
        return Reaction(user_id, post.id, emoji, post.channel_id, 0)

    def list_reactions(self, viewer: User, post_id: str) -> list[dict[str, Any]]:
        post = self.get_post(viewer, post_id)
        return [r.to_json() for r in self.reactions.get(post.id, [])]


def _beyond(post: Post, query: ThreadQuery, descending: bool) -> bool:
    """Whether `post` lies past the (fromCreateAt, fromPost) cursor in the paging direction."""
    if not query.from_post:
        return (
            post.create_at < query.from_create_at
            if descending
            else post.create_at > query.from_create_at
        )
    key, cursor = (post.create_at, post.id), (query.from_create_at, query.from_post)
    return key < cursor if descending else key > cursor
