"""The thread filter of contract.md and the allowlist it uses."""

from __future__ import annotations

import msgspec
import pytest

from gateway.filtering import Allowlist, build_allowlist, names_to_resolve, reject_reason
from gateway.models import Post

THREAD = "t" * 26
BOT = "b" * 26
ALICE = "a" * 26
BOB = "o" * 26
ALLOW_ALICE = Allowlist(user_ids=frozenset({ALICE}))


def post(**fields: object) -> Post:
    base: dict[str, object] = {
        "id": "p" * 26,
        "root_id": THREAD,
        "user_id": ALICE,
        "message": "hi",
    }
    base.update(fields)
    return msgspec.convert(base, Post)


def reason(p: Post, allow: Allowlist = ALLOW_ALICE) -> str | None:
    return reject_reason(p, thread_id=THREAD, bot_id=BOT, allow=allow)


def test_an_allowed_reply_in_the_thread_is_accepted() -> None:
    """An ordinary reply by an allowed user in the thread is a prompt."""
    assert reason(post()) is None


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"root_id": ""}, "not a reply in the thread"),
        ({"root_id": "x" * 26}, "not a reply in the thread"),
        ({"id": THREAD, "root_id": ""}, "not a reply in the thread"),
        ({"user_id": BOT}, "the bot's own post"),
        ({"props": {"from_bot": "true"}}, "another bot's post"),
        ({"type": "system_join_channel"}, "a system post (system_join_channel)"),
        ({"delete_at": 1700000000000}, "deleted"),
        ({"original_id": "q" * 26}, "an edit-history row"),
        ({"user_id": BOB}, "author not allowed"),
    ],
)
def test_everything_else_is_ignored_with_a_reason(fields: dict[str, object], why: str) -> None:
    """Replies elsewhere, own and bot posts, system, deleted, edit rows, strangers: ignored."""
    assert reason(post(**fields)) == why


def test_a_bot_post_without_from_bot_prop_from_a_human_is_fine() -> None:
    """Props other than from_bot (or from_bot false) do not reject a post."""
    assert reason(post(props={"from_bot": "false", "x": 1})) is None


def test_the_filter_refuses_everything_before_a_thread_is_bound() -> None:
    """With no thread yet, nothing is a prompt (not even a root post)."""
    assert reject_reason(post(root_id=""), thread_id="", bot_id=BOT, allow=ALLOW_ALICE)


def test_allowlist_by_username_and_id() -> None:
    """Usernames resolve to ids; ids are kept as they are; unknown names are reported."""
    allow, unknown = build_allowlist(["@Alice", BOB, "ghost", " "], {"alice": ALICE})
    assert allow.allows(ALICE)
    assert allow.allows(BOB)
    assert not allow.allows("z" * 26)
    assert unknown == ["ghost"]
    assert reason(post(user_id=BOB), allow) is None


def test_star_allows_every_member() -> None:
    """`*` lets every user through (but never the bot itself)."""
    allow, unknown = build_allowlist(["*"], {})
    assert unknown == []
    assert reason(post(user_id=BOB), allow) is None
    assert reason(post(user_id=BOT), allow) == "the bot's own post"


def test_an_empty_allowlist_refuses_everyone() -> None:
    """No entries: even an otherwise valid reply is refused."""
    allow, _ = build_allowlist([], {})
    assert reason(post(), allow) == "author not allowed"


def test_names_to_resolve_skips_star_and_normalises() -> None:
    """The lookup list is lower-case, without `@`, without `*`, de-duplicated."""
    assert names_to_resolve(["*", "@Bob", "bob", "Carol "]) == ["bob", "carol"]


def test_names_never_allow_by_themselves_only_their_resolved_ids() -> None:
    """A name nobody resolved allows nobody; a resolved one allows its id alone."""
    allow, unresolved = build_allowlist(["@Carol", BOB], {})
    assert unresolved == ["Carol"]
    assert allow.user_ids == {BOB}
    assert not allow.allows(ALICE)
    assert reason(post(), allow) == "author not allowed"
    resolved, unresolved = build_allowlist(["alice"], {"alice": ALICE})
    assert unresolved == []
    assert resolved.allows(ALICE)


def test_an_id_shaped_entry_is_an_id_not_a_name_to_resolve() -> None:
    assert names_to_resolve([ALICE, "bob"]) == ["bob"]


@pytest.mark.parametrize(
    "props",
    [
        {"from_webhook": "true"},
        {"from_webhook": True},
        {"override_username": "alice"},
        {"override_icon_url": "https://example.com/x.png"},
        {"from_plugin": "true"},
        {"from_plugin": True, "from_webhook": "false"},
        {"override_icon_emoji": "robot"},
        {"webhook_display_name": "CI"},
        {"from_oauth_app": True},
    ],
)
def test_integration_posts_are_never_prompts_whoever_user_id_says(props: dict[str, object]) -> None:
    """Slash-command responses, webhooks and plugins post under the invoking user's id: an
    allowed id does not make their text a prompt (nor does ``*``)."""
    why = reason(post(props=props))
    assert why is not None
    assert why.startswith("an integration's post")
    assert reason(post(props=props), Allowlist(everyone=True)) is not None


@pytest.mark.parametrize(
    "props", [None, {}, {"from_webhook": "false"}, {"override_username": ""}, {"x": 1}]
)
def test_absent_or_false_integration_props_do_not_refuse(props: dict[str, object] | None) -> None:
    assert reason(post(props=props)) is None


@pytest.mark.parametrize("post_id", ["x", "p" * 27, "P" * 26, "p" * 10_000])
def test_a_post_id_that_is_not_a_mattermost_id_is_never_a_prompt(post_id: str) -> None:
    assert reason(post(id=post_id)) == "a malformed post id"


def test_an_unreadable_post_is_never_a_prompt() -> None:
    assert reason(post(unreadable=True)) == "unreadable (JSON too deep or a number out of range)"
