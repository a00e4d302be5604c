"""The emulator's REST v4 surface against mattermost-protocol.md section 2."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from emulators.mattermost.ids import ID_ALPHABET, is_valid_id
from emulators.mattermost.testing import Harness, open_harness, run

pytestmark = pytest.mark.slow

POST_KEYS = [
    "id", "create_at", "update_at", "edit_at", "delete_at", "is_pinned", "user_id",
    "channel_id", "root_id", "original_id", "message", "type", "props", "hashtags",
    "file_ids", "pending_post_id", "remote_id", "reply_count", "last_reply_at",
    "participants", "metadata",
]  # fmt: skip


def assert_app_error(reply: Any, status: int, error_id: str) -> dict[str, Any]:
    assert reply.status == status, reply.text
    assert reply.headers["Content-Type"].startswith("application/json")
    body: dict[str, Any] = reply.json()
    assert body["id"] == error_id
    assert set(body) == {"id", "message", "detailed_error", "request_id", "status_code"}
    assert body["detailed_error"] == ""
    assert body["status_code"] == status
    assert body["request_id"] == reply.headers["X-Request-Id"]
    return body


async def create(h: Harness, user: str = "claudebot", **fields: Any) -> dict[str, Any]:
    fields.setdefault("channel_id", h.mm.channel.id)
    fields.setdefault("message", "hello")
    reply = await h.rest(user).post("/api/v4/posts", fields)
    assert reply.status == 201, reply.text
    post: dict[str, Any] = reply.json()
    return post


def test_users_me_returns_the_bot_user() -> None:
    """GET /users/me gives the bot's User JSON with is_bot, email and notify_props."""

    async def body() -> None:
        async with open_harness() as h:
            reply = await h.rest().get("/api/v4/users/me")
            assert reply.status == 200
            assert reply.headers["Content-Type"].startswith("application/json")
            assert reply.headers["Expires"] == "0"
            me = reply.json()
            assert me["id"] == h.mm.bot.id
            assert me["username"] == h.mm.bot.username
            assert me["is_bot"] is True
            assert me["email"] == "claudebot@localhost"
            assert me["roles"] == "system_user"
            assert me["delete_at"] == 0
            assert "notify_props" in me
            assert "bot_description" in me

    run(body())


def test_ids_are_26_chars_of_the_mattermost_alphabet() -> None:
    """Every seeded id and every request id uses the NewId alphabet and length."""

    async def body() -> None:
        async with open_harness() as h:
            ids = [h.mm.bot.id, h.mm.team.id, h.mm.channel.id, *(u.id for u in h.mm.users.values())]
            reply = await h.rest().get("/api/v4/users/me")
            ids.append(reply.headers["X-Request-Id"])
            for value in ids:
                assert len(value) == 26
                assert set(value) <= set(ID_ALPHABET)

    run(body())


def test_missing_or_bad_token_is_401_session_expired() -> None:
    """No token and an unknown token both give 401 api.context.session_expired.app_error."""

    async def body() -> None:
        async with open_harness() as h:
            assert_app_error(
                await h.rest(None).get("/api/v4/users/me"),
                401,
                "api.context.session_expired.app_error",
            )
            bad = {"Authorization": "Bearer nottherighttoken"}
            reply = await h.rest(None).get("/api/v4/users/me", headers=bad)
            assert_app_error(reply, 401, "api.context.session_expired.app_error")

    run(body())


def test_auth_schemes_bearer_any_case_token_and_cookie() -> None:
    """`bearer`, `BEARER`, `Token` and the MMAUTHTOKEN cookie all authenticate."""

    async def body() -> None:
        async with open_harness() as h:
            token = h.mm.bot.token
            for header in (f"bearer {token}", f"BEARER {token}", f"Token {token}"):
                reply = await h.rest(None).get(
                    "/api/v4/users/me", headers={"Authorization": header}
                )
                assert reply.status == 200, header
            cookie = {"Cookie": f"MMAUTHTOKEN={token}"}
            assert (await h.rest(None).get("/api/v4/users/me", headers=cookie)).status == 200

    run(body())


def test_query_string_token_is_401_token_provided() -> None:
    """A personal token in ?access_token= is refused with api.context.token_provided.app_error."""

    async def body() -> None:
        async with open_harness() as h:
            reply = await h.rest(None).get(f"/api/v4/users/me?access_token={h.mm.bot.token}")
            assert_app_error(reply, 401, "api.context.token_provided.app_error")

    run(body())


def test_get_user_by_id_hides_is_bot_for_humans() -> None:
    """GET /users/{id} omits is_bot for humans, 404s unknown ids and 400s malformed ones."""

    async def body() -> None:
        async with open_harness() as h:
            alice = h.mm.users["alice"]
            user = (await h.rest().get(f"/api/v4/users/{alice.id}")).json()
            assert user["username"] == "alice"
            assert "is_bot" not in user
            assert "notify_props" not in user  # sanitized for other viewers
            other = (await h.rest().get(f"/api/v4/users/{h.mm.users['otherbot'].id}")).json()
            assert other["is_bot"] is True
            missing = await h.rest().get(f"/api/v4/users/{'a' * 26}")
            assert_app_error(missing, 404, "app.user.missing_account.const")
            bad = await h.rest().get("/api/v4/users/short")
            assert_app_error(bad, 400, "api.context.invalid_url_param.app_error")

    run(body())


def test_users_by_usernames_skips_unknown_names() -> None:
    """POST /users/usernames maps a list of names to the users that exist."""

    async def body() -> None:
        async with open_harness() as h:
            reply = await h.rest().post("/api/v4/users/usernames", ["alice", "nobody", "bob"])
            assert reply.status == 200
            assert [u["username"] for u in reply.json()] == ["alice", "bob"]
            bad = await h.rest().post("/api/v4/users/usernames", {"not": "a list"})
            assert_app_error(bad, 400, "api.context.invalid_body_param.app_error")

    run(body())


def test_a_user_by_username_follows_a_rename() -> None:
    """GET /users/username/{name} finds the holder of a name; after a rename the old name is
    a 404 (app.user.*), the new one finds the same id, and later posts carry the new name."""

    async def body() -> None:
        async with open_harness() as h:
            alice = h.mm.users["alice"].id
            found = await h.rest().get("/api/v4/users/username/alice")
            assert found.status == 200
            assert found.json()["id"] == alice
            h.mm.rename_user(alice, "alicia")
            gone = await h.rest().get("/api/v4/users/username/alice")
            assert_app_error(gone, 404, "app.user.get_by_username.app_error")
            renamed = await h.rest().get("/api/v4/users/username/alicia")
            assert renamed.json()["id"] == alice
            assert (await h.rest().get(f"/api/v4/users/{alice}")).json()["username"] == "alicia"

    run(body())


def test_get_channel_checks_membership_of_private_channels() -> None:
    """GET /channels/{id} serves members, 403s non-members of a private channel, 404s unknown."""

    async def body() -> None:
        async with open_harness() as h:
            channel = (await h.rest().get(f"/api/v4/channels/{h.mm.channel.id}")).json()
            assert channel["name"] == "town-square"
            assert channel["type"] == "O"
            assert channel["team_id"] == h.mm.team.id
            reply = await h.rest("outsider").get(f"/api/v4/channels/{h.mm.other_channel.id}")
            assert_app_error(reply, 403, "api.context.permissions.app_error")
            missing = await h.rest().get(f"/api/v4/channels/{'b' * 26}")
            assert_app_error(missing, 404, "app.channel.get.existing.app_error")

    run(body())


def test_create_post_is_201_with_every_documented_field() -> None:
    """POST /posts answers 201 with all always-present Post keys and pending_post_id echoed."""

    async def body() -> None:
        async with open_harness() as h:
            post = await create(h, pending_post_id=f"{h.mm.bot.id}:1", props={"k": "v"})
            assert list(post) == POST_KEYS
            assert is_valid_id(post["id"])
            assert post["create_at"] == post["update_at"]
            assert post["user_id"] == h.mm.bot.id
            assert post["root_id"] == ""
            assert post["pending_post_id"] == f"{h.mm.bot.id}:1"
            assert post["props"] == {"k": "v", "from_bot": "true"}
            assert post["remote_id"] == ""
            assert post["participants"] is None
            assert post["metadata"] == {}
            assert post["reply_count"] == 0
            read = (await h.rest().get(f"/api/v4/posts/{post['id']}")).json()
            assert read["pending_post_id"] == ""  # not stored: "" on reads
            assert read["message"] == "hello"

    run(body())


def test_human_posts_have_no_from_bot_prop() -> None:
    """Only bot authors get props.from_bot="true"."""

    async def body() -> None:
        async with open_harness() as h:
            assert (await create(h, "alice"))["props"] == {}
            assert (await create(h, "otherbot"))["props"] == {"from_bot": "true"}

    run(body())


def test_create_post_in_foreign_or_unknown_channel_is_403() -> None:
    """Posting where the user is no member, or into an unknown channel, is 403 permissions."""

    async def body() -> None:
        async with open_harness() as h:
            body = {"channel_id": h.mm.channel.id, "message": "hi"}
            reply = await h.rest("outsider").post("/api/v4/posts", body)
            assert_app_error(reply, 403, "api.context.permissions.app_error")
            unknown = {"channel_id": "c" * 26, "message": "hi"}
            reply = await h.rest().post("/api/v4/posts", unknown)
            assert_app_error(reply, 403, "api.context.permissions.app_error")

    run(body())


def test_root_id_rules() -> None:
    """Replies need an existing root in the same channel; a reply is not a valid root."""

    async def body() -> None:
        async with open_harness() as h:
            root = await create(h, "alice")
            reply = await create(h, root_id=root["id"])
            assert reply["root_id"] == root["id"]
            assert reply["reply_count"] == 1
            for target in (reply["id"], "d" * 26):
                bad = await h.rest().post(
                    "/api/v4/posts", {"channel_id": h.mm.channel.id, "root_id": target}
                )
                assert_app_error(bad, 400, "api.post.create_post.root_id.app_error")
            other = {"channel_id": h.mm.other_channel.id, "root_id": root["id"], "message": "x"}
            bad = await h.rest().post("/api/v4/posts", other)
            assert_app_error(bad, 400, "api.post.create_post.channel_root_id.app_error")

    run(body())


def test_message_limit_counts_runes_not_bytes() -> None:
    """16383 emoji (4 UTF-8 bytes each) are accepted; 16384 ASCII runes get the exact 400."""

    async def body() -> None:
        async with open_harness() as h:
            post = await create(h, message="😀" * 16383)
            assert len(post["message"]) == 16383
            reply = await h.rest().post(
                "/api/v4/posts", {"channel_id": h.mm.channel.id, "message": "a" * 16384}
            )
            error = assert_app_error(reply, 400, "model.post.is_valid.message_length.app_error")
            assert error["message"] == (
                "Post Message property is longer than the maximum permitted length."
            )
            patch = await h.rest().put(
                f"/api/v4/posts/{post['id']}/patch", {"message": "b" * 16384}
            )
            assert_app_error(patch, 400, "model.post.is_valid.message_length.app_error")
            assert len(h.mm.posts()) == 1

    run(body())


def test_pending_post_id_deduplicates_within_ttl() -> None:
    """A repeated pending_post_id returns the first post (201) instead of creating another."""

    async def body() -> None:
        async with open_harness() as h:
            first = await create(h, pending_post_id="k1", message="once")
            again = await create(h, pending_post_id="k1", message="once")
            assert again["id"] == first["id"]
            assert len(h.mm.posts()) == 1
            assert h.mm.stats.posts_deduplicated == 1

    run(body())


def test_pending_post_id_in_progress_is_500_pending() -> None:
    """A repeat while the first create is in progress gets 500 ...create_post.pending."""

    async def body() -> None:
        async with open_harness(post_create_delay_s=0.3) as h:
            fields = {"channel_id": h.mm.channel.id, "message": "m", "pending_post_id": "k2"}
            first = asyncio.create_task(h.rest().post("/api/v4/posts", fields))
            await asyncio.sleep(0.1)
            second = await h.rest().post("/api/v4/posts", fields)
            assert_app_error(second, 500, "api.post.deduplicate_create_post.pending")
            assert (await first).status == 201
            assert len(h.mm.posts()) == 1

    run(body())


def test_pending_post_id_expires_after_ttl() -> None:
    """After the (shortened) TTL the same pending_post_id creates a duplicate."""

    async def body() -> None:
        async with open_harness(dedup_ttl_s=0.2) as h:
            first = await create(h, pending_post_id="k3")
            await asyncio.sleep(0.3)
            second = await create(h, pending_post_id="k3")
            assert second["id"] != first["id"]
            assert len(h.mm.posts()) == 2

    run(body())


def test_failed_create_forgets_its_pending_post_id() -> None:
    """A create that fails validation releases its key, so a fixed retry creates the post."""

    async def body() -> None:
        async with open_harness() as h:
            fields = {
                "channel_id": h.mm.channel.id,
                "message": "x" * 20000,
                "pending_post_id": "k4",
            }
            assert (await h.rest().post("/api/v4/posts", fields)).status == 400
            fields["message"] = "short"
            assert (await h.rest().post("/api/v4/posts", fields)).status == 201

    run(body())


def test_get_post_errors() -> None:
    """GET /posts/{id}: 404 app.post.get.app_error for unknown or deleted, 400 for a bad id."""

    async def body() -> None:
        async with open_harness() as h:
            post = await create(h)
            await h.mm.delete_as("claudebot", post["id"])
            for post_id in (post["id"], "e" * 26):
                reply = await h.rest().get(f"/api/v4/posts/{post_id}")
                assert_app_error(reply, 404, "app.post.get.app_error")
            bad = await h.rest().get("/api/v4/posts/NOT-AN-ID")
            assert_app_error(bad, 400, "api.context.invalid_url_param.app_error")

    run(body())


def test_delete_post_is_soft_and_takes_replies_along() -> None:
    """DELETE /posts/{id} answers {"status":"OK"}; the root and its replies get delete_at set."""

    async def body() -> None:
        async with open_harness() as h:
            root = await create(h)
            reply = await h.mm.post_as("alice", "r", root_id=root["id"])
            forbidden = await h.rest("bob").delete(f"/api/v4/posts/{root['id']}")
            assert_app_error(forbidden, 403, "api.context.permissions.app_error")
            done = await h.rest().delete(f"/api/v4/posts/{root['id']}")
            assert done.status == 200
            assert done.json() == {"status": "OK"}
            rows = {p["id"]: p for p in h.mm.posts(include_deleted=True)}
            assert rows[root["id"]]["delete_at"] > 0
            assert rows[reply["id"]]["delete_at"] > 0
            assert rows[root["id"]]["message"] == ""  # deleted rows are blanked
            assert h.mm.posts() == []

    run(body())


def test_thread_puts_the_requested_post_first() -> None:
    """GET /posts/{id}/thread lists the requested post first, then the live thread posts."""

    async def body() -> None:
        async with open_harness() as h:
            root = await create(h, "alice")
            replies = [await h.mm.post_as("bob", f"r{i}", root_id=root["id"]) for i in range(3)]
            await h.mm.delete_as("bob", replies[1]["id"])
            thread = (await h.rest().get(f"/api/v4/posts/{root['id']}/thread")).json()
            # The requested post first; the rest in unspecified order (same-ms posts tie).
            assert thread["order"][0] == root["id"]
            assert sorted(thread["order"][1:]) == sorted([replies[0]["id"], replies[2]["id"]])
            assert set(thread["posts"]) == set(thread["order"])
            assert {"next_post_id", "prev_post_id", "first_inaccessible_post_time"} <= set(thread)
            from_reply = (await h.rest().get(f"/api/v4/posts/{replies[2]['id']}/thread")).json()
            assert from_reply["order"][0] == replies[2]["id"]
            assert set(from_reply["order"]) == {root["id"], replies[0]["id"], replies[2]["id"]}
            assert thread["posts"][root["id"]]["reply_count"] == 2

    run(body())


def test_thread_paging_with_cursor_and_has_next() -> None:
    """fromCreateAt/fromPost/direction=down/perPage pages ascending and reports has_next."""

    async def body() -> None:
        async with open_harness() as h:
            root = await create(h, "alice")
            replies = [await h.mm.post_as("bob", f"r{i}", root_id=root["id"]) for i in range(5)]
            expected = sorted(replies, key=lambda p: (p["create_at"], p["id"]))
            seen: list[str] = []
            cursor = ""  # the first page has no cursor: replies may share the root's ms
            while True:
                path = f"/api/v4/posts/{root['id']}/thread?{cursor}&direction=down&perPage=2"
                page = (await h.rest().get(path)).json()
                assert page["order"][0] == root["id"]
                batch = page["order"][1:]
                seen += batch
                if not page["has_next"]:
                    break
                last = page["posts"][batch[-1]]
                cursor = f"fromCreateAt={last['create_at']}&fromPost={last['id']}"
            assert seen == [p["id"] for p in expected]
            up = f"/api/v4/posts/{root['id']}/thread?direction=up&perPage=2"
            newest = (await h.rest().get(up)).json()
            assert newest["order"][1:] == [expected[4]["id"], expected[3]["id"]]
            assert newest["has_next"] is True

    run(body())


def test_thread_query_validation() -> None:
    """perPage > 200, fromPost without fromCreateAt and a bad direction are 400s."""

    async def body() -> None:
        async with open_harness() as h:
            root = await create(h)
            base = f"/api/v4/posts/{root['id']}/thread"
            for query in ("perPage=201", f"fromPost={root['id']}", "direction=sideways"):
                reply = await h.rest().get(f"{base}?{query}")
                assert_app_error(reply, 400, "api.context.invalid_url_param.app_error")

    run(body())


def test_channel_posts_since_is_strict_and_includes_deleted_and_history() -> None:
    """?since= returns update_at > since, deleted rows, edit-history rows and bumped roots."""

    async def body() -> None:
        async with open_harness() as h:
            root = await create(h, "alice")
            await asyncio.sleep(0.005)
            reply = await h.mm.post_as("bob", "reply", root_id=root["id"])
            path = f"/api/v4/channels/{h.mm.channel.id}/posts?since="
            at_reply = (await h.rest().get(path + str(reply["create_at"]))).json()
            assert at_reply["order"] == []  # strictly greater
            before = (await h.rest().get(path + str(root["create_at"]))).json()
            # The reply bumped its root's update_at, so both come back, newest first.
            assert before["order"] == [reply["id"], root["id"]]
            await asyncio.sleep(0.005)
            edited = await h.mm.patch_as("bob", reply["id"], "edited")
            await h.mm.delete_as("alice", root["id"])
            since = (await h.rest().get(path + str(reply["create_at"]))).json()
            rows = [since["posts"][i] for i in since["order"]]
            history = [p for p in rows if p["original_id"] == reply["id"]]
            assert len(history) == 1
            assert history[0]["delete_at"] == edited["edit_at"]
            assert any(p["id"] == root["id"] and p["delete_at"] > 0 for p in rows)
            assert "has_next" not in since

    run(body())


def test_channel_posts_pages_newest_first() -> None:
    """Without since, page/per_page pages live posts newest first; include_deleted is 403."""

    async def body() -> None:
        async with open_harness() as h:
            posts = []
            for i in range(5):
                posts.append(await h.mm.post_as("alice", f"p{i}"))
                await asyncio.sleep(0.002)  # distinct create_at: ties have no defined order
            path = f"/api/v4/channels/{h.mm.channel.id}/posts"
            first = (await h.rest().get(f"{path}?page=0&per_page=2")).json()
            second = (await h.rest().get(f"{path}?page=1&per_page=2")).json()
            newest = [p["id"] for p in reversed(posts)]
            assert first["order"] + second["order"] == newest[:4]
            reply = await h.rest().get(f"{path}?include_deleted=true")
            assert_app_error(reply, 403, "api.context.permissions.app_error")
            bad = await h.rest().get(f"{path}?page=x")
            assert_app_error(bad, 400, "api.context.invalid_url_param.app_error")

    run(body())


def test_patch_edits_and_keeps_a_history_row() -> None:
    """PUT /patch sets edit_at = update_at and stores the old version under a new id."""

    async def body() -> None:
        async with open_harness() as h:
            post = await create(h, message="v1")
            await asyncio.sleep(0.005)
            reply = await h.rest().put(f"/api/v4/posts/{post['id']}/patch", {"message": "v2"})
            assert reply.status == 200
            edited = reply.json()
            assert edited["id"] == post["id"]
            assert edited["message"] == "v2"
            assert edited["edit_at"] == edited["update_at"] > post["update_at"]
            rows = h.mm.posts(include_deleted=True)
            history = [p for p in rows if p["original_id"] == post["id"]]
            assert len(history) == 1
            assert history[0]["id"] != post["id"]
            assert history[0]["delete_at"] == history[0]["update_at"] == edited["edit_at"]
            forbidden = await h.rest("alice").put(
                f"/api/v4/posts/{post['id']}/patch", {"message": "x"}
            )
            assert_app_error(forbidden, 403, "api.context.permissions.app_error")

    run(body())


def test_reactions_add_list_and_remove() -> None:
    """POST /reactions answers 200 with the Reaction; GET lists it; DELETE removes it."""

    async def body() -> None:
        async with open_harness() as h:
            post = await h.mm.post_as("alice", "react to me")
            me = h.mm.bot.id
            fields = {"user_id": me, "post_id": post["id"], "emoji_name": "thumbsup"}
            reply = await h.rest().post("/api/v4/reactions", fields)
            assert reply.status == 200
            reaction = reply.json()
            assert list(reaction) == [
                "user_id", "post_id", "emoji_name", "create_at", "update_at", "delete_at",
                "remote_id", "channel_id",
            ]  # fmt: skip
            listed = (await h.rest().get(f"/api/v4/posts/{post['id']}/reactions")).json()
            assert listed == [reaction]
            read = (await h.rest().get(f"/api/v4/posts/{post['id']}")).json()
            assert read["has_reactions"] is True
            assert read["update_at"] >= reaction["create_at"]
            other = dict(fields, user_id=h.mm.users["alice"].id)
            reply = await h.rest().post("/api/v4/reactions", other)
            assert_app_error(reply, 403, "api.reaction.save_reaction.user_id.app_error")
            reply = await h.rest().post("/api/v4/reactions", dict(fields, emoji_name="no way!"))
            assert_app_error(reply, 400, "api.reaction.save_reaction.invalid.app_error")
            path = f"/api/v4/users/{me}/posts/{post['id']}/reactions/thumbsup"
            removed = await h.rest().delete(path)
            assert removed.status == 200
            assert removed.json() == {"status": "OK"}
            assert (await h.rest().get(f"/api/v4/posts/{post['id']}/reactions")).json() == []

    run(body())


def test_typing_endpoint() -> None:
    """POST /users/me/typing is 200 OK; another user's id or a foreign channel is 403."""

    async def body() -> None:
        async with open_harness() as h:
            fields = {"channel_id": h.mm.channel.id, "parent_id": ""}
            ok = await h.rest().post("/api/v4/users/me/typing", fields)
            assert ok.status == 200
            assert ok.json() == {"status": "OK"}
            other = await h.rest().post(f"/api/v4/users/{h.mm.users['alice'].id}/typing", fields)
            assert_app_error(other, 403, "api.context.permissions.app_error")
            outside = await h.rest("outsider").post("/api/v4/users/me/typing", fields)
            assert_app_error(outside, 403, "api.context.permissions.app_error")

    run(body())


def test_unknown_route_and_bad_bodies_are_app_errors() -> None:
    """Unknown routes are a 404 AppError; malformed JSON is 400; lone surrogates do not crash."""

    async def body() -> None:
        async with open_harness() as h:
            missing = await h.rest().get("/api/v4/nothing/here")
            assert_app_error(missing, 404, "api.context.404.app_error")
            bad = await h.rest().post("/api/v4/posts", raw=b"{not json")
            assert_app_error(bad, 400, "api.context.invalid_body_param.app_error")
            wrong_type = await h.rest().post("/api/v4/posts", {"channel_id": 5})
            assert wrong_type.status == 400
            surrogate = b'{"channel_id": "%s", "message": "a\\ud800b"}' % h.mm.channel.id.encode()
            reply = await h.rest().post("/api/v4/posts", raw=surrogate)
            assert reply.status == 201
            assert reply.json()["message"] == "a\ufffdb"

    run(body())


def test_malformed_input_never_causes_a_server_error() -> None:
    """Wrongly typed bodies and queries on every route get 4xx answers, never a 5xx."""
    bodies = [
        b"", b"null", b"[]", b'"s"', b"{", b"\xff\xfe", b'{"channel_id": null}',
        b'{"message": 5}', b'{"channel_id": [], "message": {}}', b'{"root_id": 7}',
        b'{"props": []}', b'{"file_ids": {}}', b'{"user_id": 1, "post_id": 2, "emoji_name": 3}',
        b'{"message": null, "is_pinned": "x"}',
    ]  # fmt: skip
    queries = [
        "?since=abc", "?page=-1", "?per_page=99999", "?perPage=-3", "?fromCreateAt=1e3",
        "?fromCreateAt=1&fromPost=zz", "?before=x&after=y", "?page=100000000000000000000",
    ]  # fmt: skip

    async def body() -> None:
        async with open_harness() as h:
            post_id = (await create(h))["id"]
            me = h.mm.bot.id
            writes = [
                ("POST", "/api/v4/posts"),
                ("PUT", f"/api/v4/posts/{post_id}/patch"),
                ("POST", "/api/v4/reactions"),
                ("POST", "/api/v4/users/me/typing"),
                ("POST", "/api/v4/users/usernames"),
            ]
            reads = [
                f"/api/v4/posts/{post_id}/thread",
                f"/api/v4/channels/{h.mm.channel.id}/posts",
                f"/api/v4/users/{me}/posts/{post_id}/reactions/x",
            ]
            seen = []
            for method, path in writes:
                for raw in bodies:
                    seen.append((await h.rest().call(method, path, raw=raw)).status)
            for path in reads:
                for query in queries:
                    for method in ("GET", "DELETE"):
                        seen.append((await h.rest().call(method, path + query)).status)
            assert max(seen) < 500
            assert (await h.rest().get("/api/v4/users/me")).status == 200

    run(body())
