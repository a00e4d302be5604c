"""The allowlist by user id (gateway.access) against a scripted user directory: names resolve
on the server's word, an author is looked up once for all their waiting posts, ids allowed
later cover later posts only, refusals are remembered, and transient failures keep the last
answer."""

from __future__ import annotations

import asyncio

import pytest

from gateway.access import MAX_REJECTED, Access
from gateway.errors import AuthError, MattermostError, NotFoundError, ServerError
from gateway.models import User

ALICE = "a" * 26
BOB = "o" * 26
MALLORY = "m" * 26


class Directory:
    """Users by id; a route answers ``fail[route]`` (an error) when set."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = dict(users)  # id -> username
        self.fail: dict[str, MattermostError] = {}
        self.calls: list[str] = []
        self.gate: asyncio.Event | None = None  # when set, get_user waits for it

    def _check(self, route: str) -> None:
        self.calls.append(route)
        if route in self.fail:
            raise self.fail[route]

    async def users_by_usernames(self, names: list[str]) -> list[User]:
        self._check("usernames")
        return [User(id=i, username=n) for i, n in self.users.items() if n in names]

    async def user_by_username(self, username: str) -> User:
        self._check("username")
        for user_id, name in self.users.items():
            if name == username:
                return User(id=user_id, username=name)
        raise NotFoundError("no", status=404, error_id="app.user.get_by_username.app_error")

    async def get_user(self, user_id: str) -> User:
        self._check("id")
        if self.gate is not None:
            await self.gate.wait()
        if user_id not in self.users:
            raise NotFoundError("no", status=404, error_id="app.user.missing_account.const")
        return User(id=user_id, username=self.users[user_id])


def access(directory: Directory, *entries: str) -> Access:
    return Access(directory, entries, refresh_s=60)


def test_names_resolve_to_ids_and_a_name_alone_allows_nobody() -> None:
    directory = Directory({ALICE: "alice", MALLORY: "mallory"})
    allow = access(directory, "@Alice", BOB, "carol")
    assert asyncio.run(allow.refresh())
    assert allow.allows(ALICE, 1)
    assert allow.allows(BOB, 1)  # a configured id needs no lookup
    assert not allow.allows(MALLORY, 1)
    assert allow.resolved == {"alice": ALICE}
    assert allow.name_of(ALICE) == "alice"


def test_a_rename_moves_access_for_later_posts_only() -> None:
    directory = Directory({ALICE: "alice", MALLORY: "mallory"})
    allow = access(directory, "alice")

    async def main() -> None:
        assert await allow.refresh()
        allow.newest = 500
        directory.users = {ALICE: "alice2", MALLORY: "alice"}
        assert await allow.refresh()

    asyncio.run(main())
    assert not allow.allows(ALICE, 1000)
    assert not allow.allows(MALLORY, 499)
    assert allow.allows(MALLORY, 500)


def test_a_failed_refresh_keeps_the_last_answer_and_a_401_is_raised() -> None:
    directory = Directory({ALICE: "alice"})
    allow = access(directory, "alice")

    async def main() -> None:
        assert await allow.refresh()
        directory.fail["usernames"] = ServerError("down", status=503)
        assert not await allow.refresh()
        assert allow.allows(ALICE, 1)
        directory.fail["usernames"] = AuthError("token", status=401)
        with pytest.raises(AuthError):
            await allow.refresh()

    asyncio.run(main())


def test_without_name_routes_an_author_is_looked_up_once_for_all_their_waiting_posts() -> None:
    """Two posts of a new user arrive while their lookup runs (the socket and a catch-up):
    one request, and both posts are covered."""
    directory = Directory({ALICE: "alice"})
    directory.fail["usernames"] = NotFoundError("no route", status=404)
    directory.fail["username"] = NotFoundError("no route", status=404)
    allow = access(directory, "alice")

    async def main() -> None:
        assert await allow.refresh()
        assert allow.resolved == {}
        directory.gate = asyncio.Event()
        first = asyncio.create_task(allow.check_author(ALICE, 20))
        second = asyncio.create_task(allow.check_author(ALICE, 10))
        await asyncio.sleep(0)
        assert allow.should_check(ALICE)  # still running: a third post would wait too
        directory.gate.set()
        assert await first
        assert await second

    asyncio.run(main())
    assert directory.calls.count("id") == 1
    assert allow.allows(ALICE, 10)
    assert not allow.allows(ALICE, 9)


def test_an_author_not_allowed_is_not_looked_up_again_at_once() -> None:
    directory = Directory({MALLORY: "mallory"})
    directory.fail["usernames"] = NotFoundError("no route", status=404)
    directory.fail["username"] = NotFoundError("no route", status=404)
    allow = access(directory, "alice")

    async def main() -> None:
        await allow.refresh()
        for at in range(5):
            assert await allow.check_author(MALLORY, at)

    asyncio.run(main())
    assert directory.calls.count("id") == 1
    assert not allow.allows(MALLORY, 10)


def test_refusals_are_remembered_and_bounded() -> None:
    allow = access(Directory({}), "alice")
    allow.reject("p" * 26)
    assert allow.rejected("p" * 26)
    for i in range(MAX_REJECTED):
        allow.reject(f"{i:026d}")
    assert not allow.rejected("p" * 26)  # the oldest went first
    assert allow.rejected(f"{MAX_REJECTED - 1:026d}")
