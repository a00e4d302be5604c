"""Author names: learned from sender_name (never from a webhook's override), looked up once
with GET /users/{id}, and a server without that endpoint switches lookups off."""

from __future__ import annotations

import asyncio

import pytest

from gateway.errors import AuthError, BadRequestError, MattermostError, NotFoundError, ServerError
from gateway.models import Post, User
from gateway.users import UserNames, sender_username


class FakeClient:
    def __init__(self, result: User | MattermostError) -> None:
        self.result = result
        self.calls: list[str] = []

    async def get_user(self, user_id: str) -> User:
        self.calls.append(user_id)
        if isinstance(self.result, MattermostError):
            raise self.result
        return self.result


def test_sender_name_gives_the_username_unless_a_webhook_may_have_overridden_it() -> None:
    post = Post(id="p", user_id="u")
    assert sender_username(post, "@alice") == "alice"
    assert sender_username(post, "alice") == ""
    assert sender_username(post, "@") == ""
    assert sender_username(Post(id="p", props={"from_webhook": "true"}), "@alice") == ""
    assert sender_username(Post(id="p", props={"override_username": "alice"}), "@alice") == ""


def test_a_lookup_is_made_once_and_cached() -> None:
    client = FakeClient(User(id="u1", username="Carol"))
    names = UserNames(client)
    assert names.unknown("u1")
    assert asyncio.run(names.look_up("u1")) == "carol"
    assert asyncio.run(names.look_up("u1")) == "carol"
    assert client.calls == ["u1"]
    assert not names.unknown("u1")


def test_learned_senders_need_no_lookup() -> None:
    client = FakeClient(ServerError("no", status=500))
    names = UserNames(client)
    names.learn_sender(Post(id="p", user_id="u2"), "@dave")
    assert asyncio.run(names.look_up("u2")) == "dave"
    assert client.calls == []


def test_404_marks_the_user_unknown_and_405_switches_lookups_off() -> None:
    missing = UserNames(FakeClient(NotFoundError("no", status=404)))
    assert asyncio.run(missing.look_up("u3")) == ""
    assert not missing.unknown("u3")
    assert missing.unknown("u4")
    off = UserNames(FakeClient(BadRequestError("no", status=405)))
    assert asyncio.run(off.look_up("u3")) == ""
    assert off.lookups_off
    assert not off.unknown("u4")
    flaky = UserNames(FakeClient(ServerError("no", status=503)))
    assert asyncio.run(flaky.look_up("u5")) == ""
    assert flaky.unknown("u5")  # a transient failure is tried again later


def test_a_401_on_a_lookup_is_still_fatal() -> None:
    names = UserNames(FakeClient(AuthError("no", status=401)))
    with pytest.raises(AuthError):
        asyncio.run(names.look_up("u6"))
