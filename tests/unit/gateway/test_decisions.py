"""The other pure decisions: WebSocket seq tracking, catch-up cursor, backoff, retries, and
the mapping of HTTP errors to our error tree."""

from __future__ import annotations

from multidict import CIMultiDict

from gateway.catchup import catchup_start, thread_page
from gateway.cursor import WsCursor
from gateway.errors import (
    AuthError,
    BadRequestError,
    ForbiddenError,
    NotFoundError,
    PendingPostError,
    RateLimitedError,
    ServerError,
    TransportError,
    retry_delay,
)
from gateway.mattermost import _error_for, decode_post
from gateway.models import Post, PostList, WsFrame
from protocol.backoff import Backoff


def hello(conn: str) -> WsFrame:
    return WsFrame(event="hello", seq=0, data={"connection_id": conn})


def event(seq: int) -> WsFrame:
    return WsFrame(event="posted", seq=seq, data={})


def test_first_hello_is_new_and_events_advance_the_cursor() -> None:
    """The first hello asks for a catch-up; in-order events advance the expected seq."""
    cursor = WsCursor()
    assert cursor.observe(hello("c1")) == "hello_new"
    assert cursor.observe(event(1)) == "event"
    assert cursor.observe(event(2)) == "event"
    assert (cursor.connection_id, cursor.expected_seq) == ("c1", 3)
    assert cursor.observe(WsFrame(status="OK", seq_reply=5)) == "response"
    assert cursor.expected_seq == 3


def test_a_seq_gap_asks_for_a_reconnect_and_replays_are_accepted() -> None:
    """A skipped seq is a gap (reconnect to replay); an old seq is a duplicate."""
    cursor = WsCursor()
    cursor.observe(hello("c1"))
    cursor.observe(event(1))
    assert cursor.observe(event(3)) == "gap"
    assert cursor.connection_id == "c1"
    assert cursor.expected_seq == 2
    assert cursor.observe(event(1)) == "duplicate"
    assert cursor.observe(event(2)) == "event"


def test_the_same_gap_twice_gives_the_connection_up() -> None:
    """If a replay does not fill the hole, start fresh so the REST catch-up covers it."""
    cursor = WsCursor()
    cursor.observe(hello("c1"))
    assert cursor.observe(event(5)) == "gap"
    assert cursor.observe(event(5)) == "gap"
    assert (cursor.connection_id, cursor.expected_seq) == ("", 0)


def test_a_hello_with_the_same_id_is_not_a_catch_up_but_a_new_id_is() -> None:
    """Resumption keeps the id; a new id means events were lost."""
    cursor = WsCursor()
    cursor.observe(hello("c1"))
    assert cursor.observe(hello("c1")) == "hello_same"
    assert cursor.observe(hello("c2")) == "hello_new"
    assert cursor.expected_seq == 1


def test_catchup_starts_a_generous_minute_before_the_floor() -> None:
    """From the worker's high-water mark minus 60 s (events may be lost out of order: a
    post older than one accepted may be the one missed); 0 stays 0, never negative."""
    assert catchup_start(0) == 0
    assert catchup_start(100_000) == 40_000
    assert catchup_start(30_000) == 0
    assert catchup_start(100_000, margin_ms=1_000) == 99_000


def test_thread_page_sorts_replies_and_drops_the_root() -> None:
    """Replies come back in (create_at, id) order with the cursor on the last one."""
    root = Post(id="r", create_at=1)
    a, b, c = (Post(id=i, create_at=t, root_id="r") for i, t in (("b", 5), ("a", 5), ("c", 3)))
    page = PostList(order=["r", "c", "b", "a"], posts={p.id: p for p in (root, a, b, c)})
    posts, cursor = thread_page(page, "r")
    assert [p.id for p in posts] == ["c", "a", "b"]
    assert cursor == (5, "b")
    assert thread_page(PostList(order=["r"], posts={"r": root}), "r") == ([], None)


def test_backoff_doubles_to_the_cap_with_jitter() -> None:
    """0.5 s doubling to 30 s; jitter stays within ±20 %; reset starts over."""
    backoff = Backoff(rng=lambda: 0.5)
    assert [backoff.next() for _ in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    backoff.reset()
    low, high = Backoff(rng=lambda: 0.0).next(), Backoff(rng=lambda: 1.0).next()
    assert (low, high) == (0.4, 0.6)
    assert Backoff(attempt=10_000, rng=lambda: 0.5).next() == 30  # no overflow, ever


def test_retry_delays_follow_the_error_kind() -> None:
    """429 waits what it says, pending retries shortly, 5xx backs off, 401/400/404 stop."""
    backoff = Backoff(rng=lambda: 0.5)
    assert retry_delay(RateLimitedError("x", retry_after=3), backoff) == 3
    assert retry_delay(PendingPostError("x", status=500), backoff) == 0.25
    assert retry_delay(ServerError("x", status=503), backoff) == 0.5
    assert retry_delay(TransportError("x"), backoff) == 1
    assert retry_delay(ForbiddenError("x", status=403), backoff) == 10
    for fatal in (AuthError("x"), BadRequestError("x"), NotFoundError("x")):
        assert retry_delay(fatal, backoff) is None


def test_http_errors_map_to_our_tree() -> None:
    """Status and error id pick the class; a 429's plain-text body and headers are read."""
    empty: CIMultiDict[str] = CIMultiDict()
    pending = b'{"id":"api.post.deduplicate_create_post.pending","message":"wait"}'
    assert isinstance(_error_for(401, b"{}", empty, "w"), AuthError)
    assert isinstance(_error_for(403, b"{}", empty, "w"), ForbiddenError)
    assert isinstance(_error_for(404, b"not json", empty, "w"), NotFoundError)
    assert isinstance(_error_for(400, b"{}", empty, "w"), BadRequestError)
    assert isinstance(_error_for(500, pending, empty, "w"), PendingPostError)
    assert isinstance(_error_for(502, b"<html>", empty, "w"), ServerError)
    limited = _error_for(429, b"limit exceeded\n", CIMultiDict({"Retry-After": "2"}), "w")
    assert isinstance(limited, RateLimitedError)
    assert limited.retry_after == 2
    reset = _error_for(429, b"", CIMultiDict({"X-Ratelimit-Reset": "4"}), "w")
    assert isinstance(reset, RateLimitedError)
    assert reset.retry_after == 4


def test_decode_post_ignores_unknown_fields_and_rejects_garbage() -> None:
    """The posted event's post string decodes into our Post; a broken one gives None."""
    post = decode_post('{"id":"p","root_id":"r","message":"m","metadata":{},"extra":[1]}')
    assert post is not None
    assert (post.id, post.root_id, post.message) == ("p", "r", "m")
    assert decode_post('{"id": ') is None
    assert decode_post('{"no_id": 1}') is None
    assert decode_post(["p"]) is None
    assert decode_post(None) is None
