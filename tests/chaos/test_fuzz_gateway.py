"""Fuzzed WebSocket frames and `posted` events through the gateway's real feed loop,
``gateway.feed.follow`` (decode → seq cursor → dispatch → post decode → filter, and the
reconnect a gap asks for): nothing raises, whatever arrives."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any
from unittest import mock

import aiohttp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import feed
from gateway.filtering import Allowlist, reject_reason
from gateway.mattermost import WebSocket

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from gateway.models import Post

THREAD = "t" * 26
BOT = "b" * 26

json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

post_dicts = st.fixed_dictionaries(
    {},
    optional={
        "id": st.text(max_size=30),
        "create_at": st.integers() | st.text(max_size=5),
        "user_id": st.sampled_from(["u" * 26, BOT, ""]) | st.text(max_size=5),
        "root_id": st.sampled_from([THREAD, ""]) | st.text(max_size=5),
        "message": st.text(max_size=50),
        "type": st.sampled_from(["", "system_join_channel"]) | st.text(max_size=5),
        "delete_at": st.integers(),
        "original_id": st.sampled_from(["", "x" * 26]),
        "props": json_value,
        "unknown_field": json_value,
    },
)

posted_events = st.builds(
    lambda seq, post, raw, sender: {
        "event": "posted",
        "seq": seq,
        "data": {
            "post": raw if raw is not None else json.dumps(post),
            "sender_name": sender,
            "channel_type": "O",
        },
        "broadcast": {"channel_id": "c" * 26},
    },
    st.integers(min_value=-2, max_value=5) | st.none(),
    post_dicts,
    st.none() | st.text(max_size=40) | json_value,
    json_value,
)

frames = st.one_of(
    st.text(max_size=200),  # arbitrary text, mostly not JSON
    json_value.map(json.dumps),  # JSON of any shape
    posted_events.map(json.dumps),
    st.builds(
        lambda event, seq, data: json.dumps({"event": event, "seq": seq, "data": data}),
        st.sampled_from(["hello", "posted", "post_edited", "typing", "", "weird"]),
        json_value,
        json_value,
    ),
)


class _FramesUsedUp(Exception):
    """The end of the fuzzed frames: the one way out of the feed's endless loop."""


class _Raw:
    """Stands in for aiohttp's websocket: hands out the fuzzed frames, then ends the test."""

    def __init__(self, payloads: list[str]) -> None:
        self.payloads = payloads
        self.closed = False
        self.close_code = 1000

    async def receive(self) -> aiohttp.WSMessage:
        if not self.payloads:
            raise _FramesUsedUp
        return aiohttp.WSMessage(aiohttp.WSMsgType.TEXT, self.payloads.pop(0), None)

    async def close(self) -> bool:
        return True


class _Client:
    """Stands in for the MattermostClient: each (re)connection reads on from the frames."""

    def __init__(self, payloads: list[str]) -> None:
        self.raw = _Raw(payloads)
        self.connects = 0

    @contextlib.asynccontextmanager
    async def websocket(self, connection_id: str, sequence_number: int) -> AsyncIterator[WebSocket]:
        self.connects += 1
        yield WebSocket(self.raw)


class _Listener:
    def __init__(self) -> None:
        self.seen: list[Post] = []
        self.accepted: list[Post] = []

    def connected_changed(self, connected: bool) -> None:
        pass

    def events_lost(self) -> None:
        pass

    def reaction_added(self, user_id: str, post_id: str, emoji_name: str) -> None:
        pass

    def post_seen(self, post: Post, sender: str) -> None:
        self.seen.append(post)
        allow = Allowlist(everyone=True)
        if reject_reason(post, thread_id=THREAD, bot_id=BOT, allow=allow) is None:
            self.accepted.append(post)


async def _feed(payloads: list[str]) -> _Listener:
    """Run the real ``follow`` over the frames until they are used up."""
    listener = _Listener()
    with mock.patch.object(feed, "GAP_RECONNECT_S", 0.0), contextlib.suppress(_FramesUsedUp):
        await feed.follow(_Client(list(payloads)), listener, "g-fuzz")
    return listener


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(frames, max_size=8))
def test_fuzzed_frames_never_break_the_gateway(payloads: list[str]) -> None:
    """Any sequence of text frames is decoded, classified and filtered without an exception;
    every post that passes the filter is a well-formed reply in the thread."""
    listener = asyncio.run(_feed(payloads))
    for post in listener.accepted:
        assert post.root_id == THREAD
        assert post.user_id != BOT
        assert post.type == ""
        assert post.delete_at == 0


def test_a_valid_posted_event_still_gets_through() -> None:
    """The fuzz harness is not vacuous: a well-formed hello + posted pair is accepted."""
    post: dict[str, Any] = {
        "id": "p" * 26,
        "create_at": 1,
        "user_id": "u" * 26,
        "root_id": THREAD,
        "message": "hi",
        "type": "",
        "delete_at": 0,
        "original_id": "",
        "props": {},
    }
    frames_in = [
        json.dumps({"event": "hello", "seq": 0, "data": {"connection_id": "c" * 26}}),
        json.dumps({"event": "posted", "seq": 1, "data": {"post": json.dumps(post)}}),
    ]
    listener = asyncio.run(_feed(frames_in))
    assert [p.id for p in listener.accepted] == ["p" * 26]
