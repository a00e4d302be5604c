"""Lenient decoding of Mattermost JSON: only a post's id is required; every optional field
that is missing, null or oddly typed takes its default instead of dropping the post."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from gateway.mattermost import WebSocket, decode_post
from gateway.models import decode_json, to_frame, to_post_list, to_user, to_users

POST = {
    "id": "p" * 26,
    "create_at": 1731000000456,
    "user_id": "u" * 26,
    "root_id": "r" * 26,
    "message": "hello",
    "type": "",
    "props": {"from_bot": "true"},
    "metadata": {},
}


def test_the_posted_post_may_be_a_json_string_or_an_object() -> None:
    """The doc promises a JSON string; an object (a server that does not double-encode)
    is converted the same way."""
    as_string = decode_post(json.dumps(POST))
    as_object = decode_post(dict(POST))
    assert as_string is not None
    assert as_string == as_object
    assert as_string.prop("from_bot") == "true"


@pytest.mark.parametrize(
    "field", ["create_at", "delete_at", "user_id", "root_id", "original_id", "type", "props"]
)
@pytest.mark.parametrize("value", [None, [1], "12", True, {"x": 1}])
def test_an_optional_field_of_the_wrong_type_becomes_its_default(field: str, value: object) -> None:
    """null, a list, a string for a number, a bool: the post survives with the default."""
    if field == "props" and isinstance(value, dict):
        return  # a dict is the right type for props
    if field in ("user_id", "root_id", "original_id", "type") and isinstance(value, str):
        return  # a string is the right type there
    post = decode_post({**POST, field: value})
    assert post is not None
    assert post.id == POST["id"]
    default = {"props": None}.get(field, 0 if field.endswith("_at") else "")
    assert getattr(post, field) == default


def test_a_float_timestamp_is_taken_when_integral() -> None:
    post = decode_post({**POST, "create_at": 1731000000456.0})
    assert post is not None
    assert post.create_at == 1731000000456


def test_only_the_id_is_required() -> None:
    assert decode_post({"id": 5}) is None
    assert decode_post({"id": ""}) is None
    minimal = decode_post({"id": "x"})
    assert minimal is not None
    assert (minimal.root_id, minimal.message, minimal.props) == ("", "", None)


def test_a_post_list_with_null_order_and_posts_is_empty() -> None:
    """`order`/`posts` may be null (or missing); entries that are not posts are skipped."""
    assert to_post_list(decode_json(b'{"order": null, "posts": null}')).order == []
    assert to_post_list(decode_json(b"{}")).posts == {}
    assert to_post_list(decode_json(b"[]")).posts == {}
    page = to_post_list(
        {
            "order": ["a", 7, None, "b"],
            "posts": {"a": {"id": "a", "create_at": 1}, "b": "junk", "c": None},
            "has_next": "yes",
            "next_post_id": None,
        }
    )
    assert page.order == ["a", "b"]
    assert list(page.posts) == ["a"]
    assert page.has_next is False
    assert page.next_post_id == ""


def test_users_decode_leniently() -> None:
    user = to_user({"id": "u", "username": None, "is_bot": "true"})
    assert user is not None
    assert (user.username, user.is_bot) == ("", False)
    assert to_user({"username": "alice"}) is None
    assert [u.id for u in to_users([{"id": "a"}, "junk", {"id": None}])] == ["a"]
    assert to_users({"id": "a"}) == []


def test_frames_decode_leniently() -> None:
    """A frame whose data is not an object keeps its event with no data; seq must be an int."""
    frame = to_frame({"event": "posted", "seq": "3", "data": ["x"]})
    assert frame is not None
    assert (frame.event, frame.seq, frame.data) == ("posted", None, None)
    assert to_frame([1, 2]) is None


class _Raw:
    def __init__(self, text: str) -> None:
        self.text = text
        self.closed = False
        self.close_code = 1000

    async def receive(self) -> aiohttp.WSMessage:
        return aiohttp.WSMessage(aiohttp.WSMsgType.TEXT, self.text, None)

    async def close(self) -> bool:
        self.closed = True
        return True


@pytest.mark.parametrize("text", ["[1, 2]", '"just a string"', "}{"])
def test_a_frame_that_is_not_an_object_is_skipped(text: str) -> None:
    ws = WebSocket(_Raw(text))
    assert asyncio.run(ws.receive()) is None
