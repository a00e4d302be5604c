"""Our own view of Mattermost's JSON: only the fields the gateway uses, unknown ones ignored.

These Structs are deliberately separate from any emulator or driver: the gateway must hold
its own understanding of the API (design.md). Every field has a default because Mattermost
omits empty ones on some endpoints and versions.
"""

from __future__ import annotations

import msgspec

__all__ = ["Post", "PostList", "User", "WsFrame"]


class Post(msgspec.Struct, kw_only=True):
    """A post as REST returns it and as the ``posted`` event carries it (a JSON string)."""

    id: str
    create_at: int = 0
    update_at: int = 0
    delete_at: int = 0
    user_id: str = ""
    channel_id: str = ""
    root_id: str = ""
    original_id: str = ""
    message: str = ""
    type: str = ""
    # Free-form JSON set by clients and the server (from_bot, our mmclaude_* keys).
    props: dict[str, object] | None = None

    def prop(self, key: str) -> object:
        """One prop, or None when absent (props may be missing or null on the wire)."""
        return None if self.props is None else self.props.get(key)


class PostList(msgspec.Struct, kw_only=True):
    """The ``PostList`` of the thread and channel endpoints."""

    order: list[str] = []
    posts: dict[str, Post] = {}
    has_next: bool = False
    next_post_id: str = ""
    prev_post_id: str = ""


class User(msgspec.Struct, kw_only=True):
    """A user (or bot) as ``users/me`` and ``users/usernames`` return it."""

    id: str
    username: str = ""
    is_bot: bool = False


class WsFrame(msgspec.Struct, kw_only=True):
    """One server→client WebSocket frame: an event (``event`` and ``seq``) or a response to
    one of our requests (``seq_reply``, no ``event``)."""

    event: str = ""
    seq: int | None = None
    data: dict[str, object] | None = None
    status: str = ""
    seq_reply: int | None = None
