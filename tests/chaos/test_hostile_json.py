"""Hostile JSON from Mattermost through every decode path of the gateway, driven through the
real code (the WebSocket frame path, the client's REST methods over their real response
decoding, the service's judgement): deep nesting (msgspec raises ``RecursionError`` past ~1000
levels), numbers it cannot hold (``1e400``, 400 digits), numbers past 64 bits, wrong types and
huge strings. Nothing raises past one item: a bad post is skipped alone, the rest of its page,
frame stream or catch-up goes on."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING

import aiohttp
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.access import Access
from gateway.bridge import WsCursor
from gateway.bus import Bus
from gateway.config import GatewayConfig
from gateway.errors import TransportError, WebSocketClosedError
from gateway.feed import _dispatch
from gateway.filtering import Allowlist, reject_reason
from gateway.mattermost import MattermostClient, WebSocket, _error_for, decode_post
from gateway.models import (
    MAX_DEPTH,
    MAX_INT,
    UNREADABLE,
    Post,
    PostList,
    User,
    _defuse,
    decode_json,
    to_post,
)
from gateway.service import Gateway
from protocol import GatewayHeartbeat, ToGateway, ToWorker, Welcome

if TYPE_CHECKING:
    from collections.abc import Mapping

    from aiohttp import FormData

THREAD = "t" * 26
BOT = "b" * 26
ALICE = "a" * 26
GOOD = "g" * 26
BAD = "h" * 26


def bomb(depth: int, kind: str = "[") -> str:
    """Valid JSON nested ``depth`` levels deep."""
    if kind == "[":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


leaves = st.sampled_from(
    [
        "null",
        "true",
        "0",
        "-1",
        str(2**64 - 1),
        str(2**64),
        str(-(2**63) - 1),
        "1e400",
        "-1e400",
        "1" * 400,
        "1" * 5000,
        "1.5",
        '"x"',
        '"\\u0000"',
        "[]",
        "{}",
    ]
)
bombs = st.builds(bomb, st.integers(min_value=900, max_value=6000), st.sampled_from(["[", "{"]))
huge_strings = st.integers(min_value=10_000, max_value=300_000).map(lambda n: json.dumps("x" * n))
hostile = st.one_of(leaves, bombs, huge_strings)
hostile_values = st.recursive(
    hostile,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda xs: "[" + ",".join(xs) + "]"),
        st.dictionaries(st.sampled_from(["a", "from_webhook", "id", "x"]), inner, max_size=3).map(
            lambda d: "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in d.items()) + "}"
        ),
    ),
    max_leaves=4,
)
FIELDS = ["props", "create_at", "user_id", "root_id", "message", "type", "delete_at", "id"]


def post_json(post_id: str, user_id: str, hostile_fields: Mapping[str, str] | None = None) -> str:
    fields = {
        "id": json.dumps(post_id),
        "create_at": "1731000000456",
        "user_id": json.dumps(user_id),
        "root_id": json.dumps(THREAD),
        "message": json.dumps("hello"),
        "type": '""',
        "delete_at": "0",
        "props": "{}",
    }
    fields.update(hostile_fields or {})
    return "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in fields.items()) + "}"


hostile_posts = st.dictionaries(st.sampled_from(FIELDS), hostile_values, min_size=1, max_size=3)


def judged(post: Post) -> str | None:
    return reject_reason(post, thread_id=THREAD, bot_id=BOT, allow=Allowlist(everyone=True))


def test_msgspec_still_raises_recursion_error_so_this_suite_is_not_vacuous() -> None:
    with pytest.raises(RecursionError):
        msgspec.json.decode(bomb(5000))
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode("1e400")


def test_a_post_with_deep_props_decodes_but_is_never_a_prompt() -> None:
    """The 7 KB post of the issue: valid for Mattermost, nested 5000 deep."""
    post = decode_post(post_json(BAD, ALICE, {"props": '{"x":' + bomb(5000) + "}"}))
    assert post is not None
    assert post.id == BAD
    assert post.unreadable
    assert judged(post) == "unreadable (JSON too deep or a number out of range)"


def test_numbers_out_of_range_make_the_field_default_or_the_post_unreadable() -> None:
    for number in (str(2**64 - 1), str(2**64), str(-(2**63) - 1), "-5", "1" * 400):
        post = decode_post(post_json(GOOD, ALICE, {"create_at": number}))
        assert post is not None
        assert post.create_at == 0  # never a value the worker's journal cannot hold
    post = decode_post(post_json(GOOD, ALICE, {"create_at": str(MAX_INT)}))
    assert post is not None
    assert post.create_at == MAX_INT
    for number in ("1e400", "-1e400", "1" * 5000):
        post = decode_post(post_json(BAD, ALICE, {"create_at": number}))
        assert post is not None
        assert post.unreadable


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(hostile_posts)
def test_one_hostile_post_never_sinks_its_page(fields: dict[str, str]) -> None:
    """A thread page (the real client's decoding) with a hostile post between two good ones:
    the good ones come through unchanged; the hostile one, if it decodes, is not a prompt
    unless every field it carries is a harmless default."""
    posts = {
        GOOD: post_json(GOOD, ALICE),
        BAD: post_json(BAD, ALICE, fields),
        "z" * 26: post_json("z" * 26, ALICE),
    }
    body = '{"order":["' + '","'.join(posts) + '"],"posts":{'
    body += ",".join(f'"{k}":{v}' for k, v in posts.items()) + "}}"
    client = CannedClient(body.encode())
    page = asyncio.run(client.thread_page(THREAD, from_create_at=0))
    assert page.posts[GOOD].message == "hello"
    assert page.posts["z" * 26].message == "hello"
    assert judged(page.posts[GOOD]) is None
    bad = page.posts.get(BAD)
    if bad is not None and judged(bad) is None:
        assert not bad.unreadable
        assert bad.props is None or len(msgspec.json.encode(bad.props)) < 2_000_000
        assert 0 <= bad.create_at <= MAX_INT


class CannedClient(MattermostClient):
    """The real client with the network swapped for one canned response body."""

    def __init__(self, body: bytes) -> None:
        super().__init__("http://127.0.0.1:9", "token")
        self.body = body

    async def _request(
        self,
        method: str,
        path: str,
        what: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: object = None,
        form: FormData | None = None,
        timeout: float | None = None,
        limit: int | None = None,
    ) -> bytes:
        return self.body


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(hostile_values)
def test_every_rest_decode_path_raises_nothing_but_a_transport_error(text: str) -> None:
    """Any response body, to any REST call the gateway makes, is a value or a
    TransportError (retried like a network fault): never RecursionError or ValidationError."""
    client = CannedClient(text.encode())

    async def calls() -> None:
        for call in (
            client.get_me,
            lambda: client.get_user(ALICE),
            lambda: client.users_by_usernames(["alice"]),
            lambda: client.user_by_username("alice"),
            lambda: client.get_post(GOOD),
            lambda: client.thread_page(THREAD, from_create_at=0),
            lambda: client.channel_page("c" * 26, page=0),
            lambda: client.create_post(channel_id="c" * 26, message="x"),
        ):
            with contextlib.suppress(TransportError):
                await call()

    asyncio.run(calls())
    error = _error_for(400, text.encode(), {}, "test")
    assert error.status == 400


class _Raw:
    """Stands in for aiohttp's websocket: hands out the frames, then closes."""

    def __init__(self, payloads: list[str]) -> None:
        self.payloads = payloads
        self.closed = False
        self.close_code: int | None = 1000

    async def receive(self) -> aiohttp.WSMessage:
        if not self.payloads:
            self.closed = True
            return aiohttp.WSMessage(aiohttp.WSMsgType.CLOSED, None, None)
        return aiohttp.WSMessage(aiohttp.WSMsgType.TEXT, self.payloads.pop(0), None)

    async def close(self) -> bool:
        self.closed = True
        return True


class _Listener:
    def __init__(self) -> None:
        self.reactions: list[tuple[str, str, str]] = []
        self.accepted: list[str] = []

    def connected_changed(self, connected: bool) -> None:
        pass

    def events_lost(self) -> None:
        pass

    def reaction_added(self, user_id: str, post_id: str, emoji_name: str) -> None:
        self.reactions.append((user_id, post_id, emoji_name))

    def post_seen(self, post: Post, sender: str) -> None:
        if judged(post) is None:
            self.accepted.append(post.id)


async def _feed(payloads: list[str]) -> _Listener:
    ws = WebSocket(_Raw(list(payloads)))
    cursor = WsCursor()
    listener = _Listener()
    while True:
        try:
            frame = await ws.receive()
        except WebSocketClosedError:
            return listener
        if frame is not None and cursor.observe(frame) == "event":
            _dispatch(frame, listener)


def posted(seq: int, post: str, *, as_string: bool = True) -> str:
    inner = json.dumps(post) if as_string else post
    return f'{{"event":"posted","seq":{seq},"data":{{"post":{inner},"sender_name":"@alice"}}}}'


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(hostile_posts, st.booleans(), hostile_values)
def test_a_hostile_event_or_frame_never_stops_the_socket(
    fields: dict[str, str], as_string: bool, junk: str
) -> None:
    """hello, a good post, a hostile post (double-encoded or not), a hostile frame, a good
    post: both good posts are seen, in order, whatever the hostile ones hold."""
    frames = [
        '{"event":"hello","seq":0,"data":{"connection_id":"' + "c" * 26 + '"}}',
        posted(1, post_json(GOOD, ALICE)),
        posted(2, post_json(BAD, ALICE, fields), as_string=as_string),
        junk,
        posted(3, post_json("z" * 26, ALICE)),
    ]
    listener = asyncio.run(_feed(frames))
    assert [p for p in listener.accepted if p != BAD] == [GOOD, "z" * 26]


def test_a_frame_nested_too_deep_is_skipped_and_the_next_one_read() -> None:
    frames = [
        '{"event":"hello","seq":0,"data":{"connection_id":"' + "c" * 26 + '"}}',
        '{"event":"posted","seq":1,"data":' + bomb(5000, "{") + "}",
        '{"event":"posted","seq":' + bomb(5000) + "}",
        posted(3, post_json(GOOD, ALICE)),  # the seq-less frame took seq 2
    ]
    listener = asyncio.run(_feed(frames))
    assert listener.accepted == [GOOD]


def test_decode_json_raises_only_decode_error() -> None:
    for text in ("[" * 5000, "}" * 3, '"' + "[" * 5000, bomb(5000)[:-1], "1e400 1"):
        with pytest.raises(msgspec.DecodeError):
            decode_json(text)
    value = decode_json('{"a":' + bomb(100) + ',"b":2}')
    assert value["b"] == 2
    assert to_post({"id": "x", "props": value}) is not None


def _cap(value: object, depth: int = 1) -> object:
    """The reference: containers deeper than MAX_DEPTH replaced by the marker."""
    if isinstance(value, dict | list) and depth > MAX_DEPTH:
        return UNREADABLE
    if isinstance(value, dict):
        return {k: _cap(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_cap(v, depth + 1) for v in value]
    return value


deep_values = st.recursive(
    st.none() | st.integers(-5, 5) | st.text(alphabet='[]{}"\\ab', max_size=4),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=2), inner),
    max_leaves=3,
).flatmap(
    lambda leaf: st.lists(st.sampled_from(["list", "dict"]), min_size=40, max_size=140).map(
        lambda kinds: _wrap(leaf, kinds)
    )
)


def _wrap(leaf: object, kinds: list[str]) -> object:
    value = leaf
    for i, kind in enumerate(kinds):
        value = [value, i] if kind == "list" else {"k": value, "n": i}
    return value


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(deep_values)
def test_defusing_keeps_everything_but_what_is_too_deep(value: object) -> None:
    """Against a reference walk: the defused document is the original with exactly the
    containers deeper than MAX_DEPTH replaced (strings holding brackets untouched)."""
    raw = json.dumps(value, separators=(",", ":")).encode()
    defused = _defuse(raw)
    expected = _cap(value)
    if defused is None:
        assert expected == value
    else:
        assert msgspec.json.decode(defused) == expected


# --- the service itself: the socket's events and a catch-up's pages, judged post by post ---


class MemoryBus(Bus):
    """The gateway's bus without sockets: what it sends to the worker, in a list."""

    def __init__(self) -> None:
        self.sent: list[ToWorker] = []

    def send(self, message: ToWorker) -> bool:
        self.sent.append(message)
        return True

    def heartbeat(self, message: GatewayHeartbeat) -> None:
        pass

    async def receive(self, timeout: float) -> ToGateway | None:
        return None

    def close(self) -> None:
        pass


class PageClient(CannedClient):
    """One canned thread page for every thread request."""

    async def thread_page(
        self, thread_id: str, *, from_create_at: int, from_post: str = "", per_page: int = 200
    ) -> PostList:
        page = await super().thread_page(thread_id, from_create_at=0)
        if from_post:  # the second request: nothing after the first page
            return PostList()
        return page


def service(client: MattermostClient) -> tuple[Gateway, MemoryBus]:
    config = GatewayConfig(
        url="http://127.0.0.1:9",
        token="token",
        channel_id="c" * 26,
        thread_id=THREAD,
        allowed_users=(ALICE,),
        state_dir="/tmp",
        gateway_id="g1",
        worker_endpoint="ipc:///tmp/unused-w",
        endpoint="ipc:///tmp/unused-g",
    )
    bus = MemoryBus()
    gateway = Gateway(config, client, bus)
    gateway.bot = User(id=BOT, username="bot")
    gateway.thread_id, gateway.channel_id = THREAD, "c" * 26
    gateway.welcome = Welcome(
        worker_pid=1,
        incarnation="w",
        thread_id=THREAD,
        channel_id="c" * 26,
        bind_token="t",
        catch_up_from=0,
    )
    return gateway, bus


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(hostile_posts)
def test_the_service_judges_a_hostile_post_alone_on_the_socket_and_in_a_catch_up(
    fields: dict[str, str],
) -> None:
    """The real Gateway: a catch-up page and posted events holding a hostile post between
    two good ones prompt exactly the good ones (and the hostile one only if it came out as
    a harmless well-formed post), and nothing raises."""
    posts = {
        GOOD: post_json(GOOD, ALICE),
        BAD: post_json(BAD, ALICE, fields),
        "z" * 26: post_json("z" * 26, ALICE),
    }
    body = '{"order":["' + '","'.join(posts) + '"],"posts":{'
    body += ",".join(f'"{k}":{v}' for k, v in posts.items()) + "}}"

    async def main() -> list[Gateway]:
        by_catchup, _ = service(PageClient(body.encode()))
        await by_catchup._catch_up()
        by_socket, _ = service(CannedClient(b"{}"))
        for text in posts.values():
            post = decode_post(text)
            if post is not None:
                by_socket.post_seen(post, "@alice")
        return [by_catchup, by_socket]

    bad = decode_post(posts[BAD])
    only_alice = Allowlist(user_ids=frozenset({ALICE}))
    harmless = (
        bad is not None
        and reject_reason(bad, thread_id=THREAD, bot_id=BOT, allow=only_alice) is None
    )
    for gateway in asyncio.run(main()):
        assert GOOD in gateway.prompts
        assert "z" * 26 in gateway.prompts
        assert (BAD in gateway.prompts) == harmless
        assert len(gateway.prompts) == 2 + harmless


class ExplodingAccess(Access):
    """An allowlist whose decision raises for one author (any bug in judging one post)."""

    def allows(self, user_id: str, create_at: int) -> bool:
        if user_id == "e" * 26:
            raise OverflowError("judging this post broke")
        return super().allows(user_id, create_at)


def test_a_post_whose_judgement_raises_is_skipped_alone() -> None:
    """Whatever raises while one post is judged skips that post (one log line); the
    socket's next post and a catch-up's next post are still judged."""

    async def main() -> Gateway:
        gateway, _ = service(CannedClient(b"{}"))
        gateway.access = ExplodingAccess(gateway.client, ("*",), refresh_s=60)
        for post_id, user_id in ((BAD, "e" * 26), (GOOD, ALICE)):
            post = decode_post(post_json(post_id, user_id))
            assert post is not None
            gateway.post_seen(post, "")
        return gateway

    gateway = asyncio.run(main())
    assert GOOD in gateway.prompts
    assert BAD not in gateway.prompts


class ExplodingListener(_Listener):
    def post_seen(self, post: Post, sender: str) -> None:
        if post.id == BAD:
            raise RuntimeError("a listener bug")
        super().post_seen(post, sender)


def test_an_event_whose_handling_raises_is_skipped_and_the_feed_goes_on() -> None:
    frames = [
        '{"event":"hello","seq":0,"data":{"connection_id":"' + "c" * 26 + '"}}',
        posted(1, post_json(BAD, ALICE)),
        posted(2, post_json(GOOD, ALICE)),
    ]

    async def feed() -> _Listener:
        ws = WebSocket(_Raw(list(frames)))
        cursor = WsCursor()
        listener = ExplodingListener()
        while True:
            try:
                frame = await ws.receive()
            except WebSocketClosedError:
                return listener
            if frame is not None and cursor.observe(frame) == "event":
                _dispatch(frame, listener)

    assert asyncio.run(feed()).accepted == [GOOD]
