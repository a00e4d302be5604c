"""Entities of the emulated server and their JSON shapes (field order and omitempty as in Go)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The rune limit with the standard schema: Posts.Message is 65535 bytes, /4 per rune.
MAX_MESSAGE_RUNES = 65535 // 4  # 16383 code points

_NOTIFY_PROPS = {
    "channel": "true",
    "comments": "never",
    "desktop": "mention",
    "desktop_sound": "true",
    "desktop_threads": "all",
    "email": "true",
    "email_threads": "all",
    "first_name": "false",
    "mention_keys": "",
    "push": "mention",
    "push_status": "away",
    "push_threads": "all",
}


@dataclass
class User:
    """A user row; bots are users with `is_bot` (their Bot row is folded in)."""

    id: str
    username: str
    token: str
    create_at: int
    first_name: str = ""
    is_bot: bool = False
    bot_description: str = ""

    def to_json(self, *, as_self: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "create_at": self.create_at,
            "update_at": self.create_at,
            "delete_at": 0,
            "username": self.username,
            "auth_service": "",
            "email": f"{self.username}@localhost",
            "nickname": "",
            "first_name": self.first_name,
            "last_name": "",
            "position": "",
            "roles": "system_user",
        }
        if as_self:
            # Sanitized away for other viewers (SanitizeProfile).
            body["notify_props"] = dict(_NOTIFY_PROPS)
        body["locale"] = "en"
        body["timezone"] = {
            "automaticTimezone": "",
            "manualTimezone": "",
            "useAutomaticTimezone": "true",
        }
        if self.is_bot:  # omitempty: absent, not false, for humans
            body["is_bot"] = True
            body["bot_description"] = self.bot_description
        body["disable_welcome_email"] = False
        return body


@dataclass
class Team:
    id: str
    name: str
    display_name: str


@dataclass
class Channel:
    id: str
    team_id: str
    name: str
    display_name: str
    type: str  # "O" open, "P" private
    create_at: int
    members: set[str] = field(default_factory=set)
    last_post_at: int = 0
    total_msg_count: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "create_at": self.create_at,
            "update_at": self.create_at,
            "delete_at": 0,
            "team_id": self.team_id,
            "type": self.type,
            "display_name": self.display_name,
            "name": self.name,
            "header": "",
            "purpose": "",
            "last_post_at": self.last_post_at,
            "total_msg_count": self.total_msg_count,
            "extra_update_at": 0,
            "creator_id": "",
            "scheme_id": None,
            "props": None,
            "group_constrained": None,
            "shared": None,
            "total_msg_count_root": 0,
            "policy_id": None,
            "last_root_post_at": self.last_post_at,
        }


@dataclass
class Post:
    """A post row; edit-history copies are rows with `original_id` set and `delete_at` > 0."""

    id: str
    create_at: int
    update_at: int
    user_id: str
    channel_id: str
    root_id: str
    message: str
    props: dict[str, Any]
    edit_at: int = 0
    delete_at: int = 0
    is_pinned: bool = False
    original_id: str = ""
    type: str = ""
    hashtags: str = ""
    file_ids: list[str] = field(default_factory=list)
    has_reactions: bool = False

    def to_json(
        self,
        *,
        reply_count: int,
        pending_post_id: str = "",
        reactions: list[Reaction] | None = None,
        files: list[FileInfo] | None = None,
    ) -> dict[str, Any]:
        deleted = self.delete_at > 0
        metadata: dict[str, Any] = {}
        if files and not deleted:
            metadata["files"] = [f.to_json() for f in files]
        if reactions and not deleted:
            metadata["reactions"] = [r.to_json() for r in reactions]
        body: dict[str, Any] = {
            "id": self.id,
            "create_at": self.create_at,
            "update_at": self.update_at,
            "edit_at": self.edit_at,
            "delete_at": self.delete_at,
            "is_pinned": self.is_pinned,
            "user_id": self.user_id,
            "channel_id": self.channel_id,
            "root_id": self.root_id,
            "original_id": self.original_id,
            # PreparePostForClient blanks the message of deleted rows.
            "message": "" if deleted else self.message,
            "type": self.type,
            "props": dict(self.props),
            "hashtags": self.hashtags,
            "file_ids": list(self.file_ids),
            "pending_post_id": pending_post_id,
        }
        if self.has_reactions:
            body["has_reactions"] = True
        body["remote_id"] = ""
        body["reply_count"] = reply_count
        body["last_reply_at"] = 0
        body["participants"] = None
        body["metadata"] = metadata
        return body


@dataclass
class Reaction:
    user_id: str
    post_id: str
    emoji_name: str
    channel_id: str
    create_at: int

    def to_json(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "post_id": self.post_id,
            "emoji_name": self.emoji_name,
            "create_at": self.create_at,
            "update_at": self.create_at,
            "delete_at": 0,
            "remote_id": "",
            "channel_id": self.channel_id,
        }


def rune_count(message: str) -> int:
    """utf8.RuneCountInString: a Python str is already a sequence of code points."""
    return len(message)


# FileSettings.MaxFileSize of a default install: 100 MB.
DEFAULT_MAX_FILE_SIZE = 100 * 1024 * 1024
_IMAGE_MIME = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif"}
_MIME = {
    **_IMAGE_MIME,
    "webp": "image/webp",
    "txt": "text/plain",
    "md": "text/markdown",
    "json": "application/json",
    "pdf": "application/pdf",
    "csv": "text/csv",
    "log": "text/plain",
    "py": "text/x-python",
}


@dataclass
class FileInfo:
    """A FileInfo row; `post_id` is set once a post claims the file (then it is immutable)."""

    id: str
    user_id: str
    channel_id: str
    create_at: int
    name: str
    data: bytes
    post_id: str = ""

    @property
    def extension(self) -> str:
        # model.GetFileExtension-like: lower-cased text after the last dot, "" without one.
        _, dot, ext = self.name.rpartition(".")
        return ext.lower() if dot else ""

    @property
    def mime_type(self) -> str:
        return _MIME.get(self.extension, "application/octet-stream" if self.extension else "")

    @property
    def is_image(self) -> bool:
        return self.mime_type.startswith("image/")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user_id": self.user_id,
            "post_id": self.post_id,
            "channel_id": self.channel_id,
            "create_at": self.create_at,
            "update_at": self.create_at,
            "delete_at": 0,
            "name": self.name,
            "extension": self.extension,
            "size": len(self.data),
            "mime_type": self.mime_type,
            "width": 0,
            "height": 0,
            "has_preview_image": False,
            "mini_preview": None,
            "remote_id": "",
            "archived": False,
        }
