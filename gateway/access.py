"""Who may talk to Claude: decided by user id, on the server's word, never on an event field.

Configured ids are allowed as they are. Configured usernames are resolved to ids over REST
(``POST /users/usernames``; on a server without it ``GET /users/username/{name}`` one by
one) at start and every ``refresh_s`` seconds, so a rename or a new holder of a name is
picked up within that period. An author who is not allowed, posting while some configured
names are unresolved, is looked up by id (``GET /users/{id}``, at most every 5 s): a user
created after start is answered at once. ``sender_name``, props and other event fields never
decide (webhooks can set the name an event shows), except as the last resort on a server
that has none of the three lookups (see :meth:`Access.allows_by_event_name`).

An id that becomes allowed after start is allowed for posts made from then on (``since``),
and a post refused once is remembered and refused for good by this process: a REST catch-up
never re-judges it.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Protocol

from loguru import logger

from gateway.errors import AuthError, MattermostError, NotFoundError, endpoint_missing
from gateway.filtering import Allowlist, build_allowlist, names_to_resolve

if TYPE_CHECKING:
    from gateway.models import Post, User

__all__ = ["ALLOW_REFRESH_S", "MAX_REJECTED", "Access", "Directory"]

ALLOW_REFRESH_S = 30.0  # a rename or a new user is picked up within a minute
AUTHOR_RECHECK_S = 5.0  # an author not allowed is looked up again at most this often
MAX_REJECTED = 100_000  # refused post ids remembered (26 runes each: a few MB at most)

# A 404 with one of these error ids is about the user (nobody holds that name or id), not a
# route the server lacks.
_USER_NOT_FOUND = ("app.user.", "store.sql_user.")


class Directory(Protocol):
    """The user lookups Access makes (gateway.mattermost.MattermostClient has them)."""

    async def users_by_usernames(self, names: list[str]) -> list[User]: ...
    async def user_by_username(self, username: str) -> User: ...
    async def get_user(self, user_id: str) -> User: ...


class Access:
    """The allowlist, its resolution and the posts refused so far."""

    def __init__(self, client: Directory, entries: tuple[str, ...], *, refresh_s: float) -> None:
        self._client = client
        self._entries = entries
        self.refresh_s = refresh_s
        self.names = frozenset(names_to_resolve(entries))
        self.allow, self._unresolved = build_allowlist(entries, {})
        self._configured = self.allow.user_ids
        self.resolved: dict[str, str] = {}  # configured username -> id, the server's word
        self.since: dict[str, int] = {}  # id allowed by a name -> oldest create_at it covers
        self._rejected: OrderedDict[str, None] = OrderedDict()
        self._checked: dict[str, float] = {}  # author -> monotonic time of their last lookup
        self._inflight: dict[str, asyncio.Future[bool]] = {}  # lookups running, by author
        self._waiting: dict[str, int] = {}  # oldest create_at waiting for each lookup
        self.newest = 0  # newest create_at seen: the server's clock, as far as we know
        self._started = False
        self._batch = True  # POST /users/usernames is there
        self._by_name = True  # GET /users/username/{name} is there
        self._by_id = True  # GET /users/{id} is there

    def __repr__(self) -> str:
        return (
            f"<Access everyone={self.allow.everyone} ids={len(self.allow.user_ids)} "
            f"names={len(self.names)} resolved={len(self.resolved)} "
            f"rejected={len(self._rejected)}>"
        )

    # --- decisions ---------------------------------------------------------------------------

    def allows(self, user_id: str, create_at: int) -> bool:
        """Whether ``user_id`` may talk to Claude in a post made at ``create_at``."""
        if not self.allow.allows(user_id):
            return False
        return user_id in self._configured or create_at >= self.since.get(user_id, 0)

    def name_of(self, user_id: str) -> str:
        """The configured name this id holds (for display), or ""."""
        for name, holder in self.resolved.items():
            if holder == user_id:
                return name
        return ""

    @property
    def names_unresolvable(self) -> bool:
        """True on a server with none of the three user lookups (seen missing)."""
        return not (self._batch or self._by_name or self._by_id)

    def allows_by_event_name(self, sender: str) -> bool:
        """The last resort on a server that resolves no usernames at all (never a real
        Mattermost, which has all three lookups): the ``posted`` event's ``sender_name``
        ("@name", set by the server; integration posts, which may override it, are refused
        before this) for that one post, never remembered."""
        if not self.names_unresolvable or not sender.startswith("@"):
            return False
        name = sender[1:].lower()
        return name in self.names and name not in self.resolved

    def saw(self, post: Post) -> None:
        self.newest = max(self.newest, post.create_at)

    def rejected(self, post_id: str) -> bool:
        return post_id in self._rejected

    def reject(self, post_id: str) -> None:
        self._rejected[post_id] = None
        self._rejected.move_to_end(post_id)
        while len(self._rejected) > MAX_REJECTED:
            self._rejected.popitem(last=False)

    def should_check(self, user_id: str) -> bool:
        """True when a lookup of this author by id could allow them (see check_author)."""
        if user_id in self._inflight:
            return True
        return (
            bool(user_id)
            and not self.allow.allows(user_id)
            and time.monotonic() - self._checked.get(user_id, -AUTHOR_RECHECK_S) >= AUTHOR_RECHECK_S
            and self._by_id
            and any(name not in self.resolved for name in self.names)
        )

    # --- the server's word -------------------------------------------------------------------

    def _set(self, resolved: dict[str, str], as_of: int) -> None:
        before = set(self.resolved.values())
        after = set(resolved.values())
        for user_id in after - before:
            self.since[user_id] = as_of
        for user_id in before - after:
            self.since.pop(user_id, None)
        if after != before or resolved != self.resolved:
            logger.info(
                "allow.resolved",
                names=sorted(resolved),
                unresolved=sorted(self.names - set(resolved)),
                added=len(after - before),
                removed=len(before - after),
            )
        self.resolved = resolved
        self.allow = Allowlist(
            everyone=self.allow.everyone, user_ids=self._configured | frozenset(after)
        )

    async def refresh(self) -> bool:
        """Resolve every configured name again; False (the last answer kept) when the server
        could not be asked. A 401 is raised (fatal, as everywhere)."""
        first = not self._started
        self._started = True
        if not self.names:
            if first and not self.allow.everyone and not self.allow.user_ids:
                logger.warning("allow.empty", reason="MATTERMOST_ALLOWED_USERS allows nobody")
            return True
        try:
            resolved = await self._resolve(sorted(self.names))
        except AuthError:
            raise
        except MattermostError as exc:
            logger.warning("allow.refresh_failed", error=str(exc), names=len(self.names))
            return False
        # Ids newly allowed now cover posts made from the newest one seen (never the first
        # resolution: what the operator configured covers the thread's posts so far).
        self._set(resolved, 0 if first else self.newest)
        self._checked.clear()
        return True

    async def _resolve(self, names: list[str]) -> dict[str, str]:
        if self._batch:
            try:
                users = await self._client.users_by_usernames(names)
            except MattermostError as exc:
                if not endpoint_missing(exc, objects=_USER_NOT_FOUND):
                    raise
                self._batch = False
                logger.info("allow.no_batch", reason="resolving names one by one", error=str(exc))
            else:
                return self._named(users)
        if self._by_name:
            found: list[User] = []
            for name in names:
                try:
                    found.append(await self._client.user_by_username(name))
                except MattermostError as exc:
                    if not endpoint_missing(exc, objects=_USER_NOT_FOUND):
                        if isinstance(exc, NotFoundError):
                            continue  # nobody holds that name now
                        raise
                    self._by_name = False
                    logger.info(
                        "allow.no_name_lookup",
                        reason="names are checked by author id",
                        error=str(exc),
                    )
                    break
            else:
                return self._named(found)
        # The server resolves no names: check the ids found by author lookups again.
        kept: dict[str, str] = {}
        for name, user_id in self.resolved.items():
            user = await self._user(user_id)
            if user is not None and user.username.lower() == name:
                kept[name] = user_id
        return kept

    def _named(self, users: list[User]) -> dict[str, str]:
        return {u.username.lower(): u.id for u in users if u.username.lower() in self.names}

    async def _user(self, user_id: str) -> User | None:
        """``GET /users/{id}``; None when there is no such user (or the route is missing)."""
        if not self._by_id:
            return None
        try:
            return await self._client.get_user(user_id)
        except MattermostError as exc:
            if endpoint_missing(exc, objects=_USER_NOT_FOUND):
                self._by_id = False
                logger.info(
                    "allow.no_id_lookup", reason="the server has no users/{id}", error=str(exc)
                )
                if not (self._batch or self._by_name):
                    logger.error(
                        "allow.no_lookup",
                        reason="this server resolves no usernames; names are matched on each "
                        "event's sender_name, and posts read by a catch-up only by id: list "
                        "user ids in MATTERMOST_ALLOWED_USERS",
                        error=str(exc),
                    )
                return None
            if isinstance(exc, NotFoundError):
                return None
            raise

    async def check_author(self, user_id: str, create_at: int) -> bool:
        """Look an author up by id (at most every 5 s): a configured, unresolved name
        they hold now allows them for the posts that waited for this lookup and later ones.
        False when the server could not answer (the post may then be judged again later).
        Posts of one author arriving while their lookup runs wait for that same lookup."""
        earliest = self._waiting.get(user_id)
        self._waiting[user_id] = create_at if earliest is None else min(earliest, create_at)
        task = self._inflight.get(user_id)
        if task is None:
            if not self.should_check(user_id):
                self._waiting.pop(user_id, None)
                return True
            self._checked[user_id] = time.monotonic()
            task = asyncio.ensure_future(self._look_up(user_id))
            self._inflight[user_id] = task
        return await asyncio.shield(task)

    async def _look_up(self, user_id: str) -> bool:
        try:
            user = await self._user(user_id)
        except AuthError:
            raise
        except MattermostError as exc:
            self._checked.pop(user_id, None)
            logger.warning("allow.lookup_failed", error=str(exc), user_id=user_id)
            return False
        finally:
            self._inflight.pop(user_id, None)
            since = self._waiting.pop(user_id, 0)
        if user is None or user.id != user_id:
            return True
        name = user.username.lower()
        if name in self.names and name not in self.resolved:
            self._set({**self.resolved, name: user_id}, since)
        return True


async def refresh_forever(access: Access) -> None:
    """Resolve the names again every ``refresh_s`` seconds, forever."""
    while True:
        await asyncio.sleep(access.refresh_s)
        await access.refresh()
