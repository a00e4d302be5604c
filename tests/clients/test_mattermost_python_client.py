"""`mattermostautodriver` (the Python client users would reach for) against the emulator's
REST API: its TypedDriver parses every answer, keeps error ids and retries a 429."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import TYPE_CHECKING, Any

import pytest
from mattermostautodriver import TypedDriver
from mattermostautodriver.exceptions import InvalidOrMissingParameters, NotEnoughPermissions

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.slow


def _admin(seed: dict[str, Any], route: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(
        f"{seed['url']}/_admin/{route}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status in (200, 201)


def _driver(seed: dict[str, Any], username: str) -> TypedDriver:
    port = int(seed["url"].rsplit(":", 1)[1])
    return TypedDriver(
        {
            "url": "127.0.0.1",
            "port": port,
            "scheme": "http",
            "token": seed["users"][username]["token"],
            "timeout": 10,
            "request_timeout": 10,
            "max_retries": 3,
            "retry_max_sleep": 5,
        }
    )


@pytest.fixture
def alice(emulator_seed: dict[str, Any]) -> Iterator[TypedDriver]:
    with _driver(emulator_seed, "alice") as driver:
        driver.login()
        yield driver


def test_python_driver_rest_round_trip(emulator_seed: dict[str, Any], alice: TypedDriver) -> None:
    """Login with a token, users, a root post and a reply, the thread, posts?since,
    reactions, patch and typing all parse as the driver expects."""
    seed = emulator_seed
    channel = seed["channel"]["id"]
    me = alice.users.get_user("me")
    assert me["id"] == seed["users"]["alice"]["id"] == alice.client.userid
    bot = alice.users.get_user(seed["bot"]["id"])
    assert bot["is_bot"] is True
    assert alice.channels.get_channel(channel)["team_id"] == seed["team"]["id"]
    found = alice.users.get_users_by_usernames(["alice", "bob", "nobody"])
    assert sorted(u["username"] for u in found) == ["alice", "bob"]

    # The typed endpoints return the parsed body only when the Content-Type is exactly
    # application/json (else the raw response): a dict here is that check.
    root = alice.posts.create_post(channel_id=channel, message="from the python driver")
    assert isinstance(root, dict)
    reply = alice.posts.create_post(channel_id=channel, message="a reply", root_id=root["id"])
    assert reply["root_id"] == root["id"]
    # pending_post_id is not in the OpenAPI schema: the raw request carries it.
    pending = f"{me['id']}:{int(time.time() * 1000)}"
    body = {"channel_id": channel, "message": "deduplicated", "pending_post_id": pending}
    created = alice.client.make_request("post", "/api/v4/posts", options=body)
    assert created.status_code == 201
    first = created.json()
    again = alice.client.make_request("post", "/api/v4/posts", options=body).json()
    assert first["pending_post_id"] == pending
    assert again["id"] == first["id"]

    thread = alice.posts.get_post_thread(root["id"])
    assert thread["order"][0] == root["id"]
    assert reply["id"] in thread["order"]
    since = alice.posts.get_posts_for_channel(channel, since=root["create_at"] - 1)
    assert {root["id"], reply["id"]} <= set(since["order"])

    reaction = alice.reactions.save_reaction(
        {"user_id": me["id"], "post_id": reply["id"], "emoji_name": "white_check_mark"}
    )
    assert reaction["emoji_name"] == "white_check_mark"
    assert [r["user_id"] for r in alice.reactions.get_reactions(reply["id"])] == [me["id"]]

    patched = alice.posts.patch_post(root["id"], message="edited")
    assert patched["message"] == "edited"
    assert patched["edit_at"] > 0
    typing = alice.users.publish_user_typing("me", channel_id=channel, parent_id=root["id"])
    assert typing == {"status": "OK"}


def test_python_driver_errors_keep_ids(emulator_seed: dict[str, Any], alice: TypedDriver) -> None:
    """Errors parse into the driver's exceptions with the server's error id and request id:
    the 16384-rune message and a channel alice may not post in."""
    channel = emulator_seed["channel"]["id"]
    ok = alice.posts.create_post(channel_id=channel, message="é" * 16383)
    assert len(ok["message"]) == 16383
    with pytest.raises(InvalidOrMissingParameters) as too_long:
        alice.posts.create_post(channel_id=channel, message="é" * 16384)
    assert too_long.value.error_id == "model.post.is_valid.message_length.app_error"
    assert too_long.value.request_id
    with _driver(emulator_seed, "mallory") as mallory:
        mallory.login()
        other = emulator_seed["other_channel"]["id"]
        with pytest.raises(NotEnoughPermissions) as denied:
            mallory.posts.create_post(channel_id=other, message="let me in")
    assert denied.value.error_id == "api.context.permissions.app_error"


def test_python_driver_retries_a_429(emulator_seed: dict[str, Any], alice: TypedDriver) -> None:
    """The emulator's 429 (plain text, Retry-After) is one the driver knows how to wait out."""
    _admin(emulator_seed, "fail_posts", {"n": 1, "status": 429, "retry_after": 1})
    channel = emulator_seed["channel"]["id"]
    post = alice.posts.create_post(channel_id=channel, message="after a 429")
    assert post["message"] == "after a 429"
    url = emulator_seed["url"]
    with urllib.request.urlopen(f"{url}/_admin/stats", timeout=5) as response:
        assert json.loads(response.read())["post_failures_injected"] == 1
    with urllib.request.urlopen(f"{url}/_admin/posts?channel_id={channel}", timeout=5) as response:
        posts = json.loads(response.read())
    assert [p["message"] for p in posts].count("after a 429") == 1
