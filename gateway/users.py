"""Usernames of post authors, for allowlists that list names and for ``Prompt.username``.

Learned from the ``posted`` event's ``sender_name`` (promised by the protocol doc) and, for
catch-up posts by an author not seen yet, looked up once with ``GET /users/{id}``: a
best-effort call that a server may not have (a 404/405 switches lookups off).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from loguru import logger

from gateway.errors import AuthError, BadRequestError, MattermostError, NotFoundError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from gateway.models import Post, User

__all__ = ["MAX_NAMES", "UserLookup", "UserNames"]

MAX_NAMES = 10_000


def sender_username(post: Post, sender: str) -> str:
    """The author's username from ``sender_name`` ("@alice"), or "" when it may not be the
    author's (webhook posts can override the name)."""
    if not sender.startswith("@") or len(sender) < 2:
        return ""
    if post.prop("from_webhook") in ("true", True) or post.prop("override_username"):
        return ""
    return sender[1:]


class UserLookup(Protocol):
    """What the cache needs of the MattermostClient (a fake in tests)."""

    async def get_user(self, user_id: str) -> User: ...


class UserNames:
    """A cache of user id → username, with best-effort lookups."""

    def __init__(self, client: UserLookup) -> None:
        self._client = client
        self._names: dict[str, str] = {}
        self._missing: set[str] = set()  # ids the server does not know (404)
        self.lookups_off = False

    def __repr__(self) -> str:
        return f"<UserNames known={len(self._names)} lookups_off={self.lookups_off}>"

    def get(self, user_id: str) -> str:
        return self._names.get(user_id, "")

    def unknown(self, user_id: str) -> bool:
        """True when a lookup could still tell us this author's name."""
        return user_id not in self._names and user_id not in self._missing and not self.lookups_off

    def _remember(self, user_id: str, username: str) -> None:
        if user_id and username:
            if len(self._names) >= MAX_NAMES and user_id not in self._names:
                self._names.pop(next(iter(self._names)))
            self._names[user_id] = username.lower()

    def update(self, pairs: Mapping[str, str]) -> None:
        for user_id, username in pairs.items():
            self._remember(user_id, username)

    def learn_sender(self, post: Post, sender: str) -> None:
        name = sender_username(post, sender)
        if name:
            self._remember(post.user_id, name)

    async def look_up(self, user_id: str) -> str:
        """The author's username, asking the server once if needed; "" when unknown."""
        if not user_id or not self.unknown(user_id):
            return self.get(user_id)
        try:
            user = await self._client.get_user(user_id)
        except AuthError:
            raise
        except MattermostError as exc:
            if exc.status == 405 and isinstance(exc, BadRequestError):
                self.lookups_off = True
                logger.info("users.lookup_off: the server has no users/{{id}} ({})", exc)
            elif isinstance(exc, NotFoundError):
                self._missing.add(user_id)
                logger.debug("users.lookup_missing {}", exc)
            else:
                logger.debug("users.lookup_failed {}", exc)
            return ""
        self._remember(user.id or user_id, user.username)
        return self.get(user_id)
