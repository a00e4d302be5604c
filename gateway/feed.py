"""The WebSocket feed: one connection kept open forever, resumed when the server can.

It hands every ``posted`` event's post to the service and asks for a REST catch-up whenever
a ``hello`` brings a new connection id (the server could not resume: events were lost).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, NoReturn, Protocol

from loguru import logger

from gateway.cursor import WsCursor
from gateway.errors import AuthError, MattermostError
from gateway.mattermost import decode_post
from gateway.models import decode_json
from protocol.backoff import Backoff

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from gateway.mattermost import WebSocket
    from gateway.models import Post, WsFrame

__all__ = ["FeedListener", "WebSocketOpener", "follow"]

GAP_RECONNECT_S = 0.05  # a gap is fixed by an immediate resume (the server replays)


class WebSocketOpener(Protocol):
    """Where the feed gets its connections (a MattermostClient; a fake in tests)."""

    def websocket(
        self, connection_id: str, sequence_number: int
    ) -> AbstractAsyncContextManager[WebSocket]: ...


class FeedListener(Protocol):
    """What the feed tells the service."""

    def connected_changed(self, connected: bool) -> None: ...
    def events_lost(self) -> None: ...
    def post_seen(self, post: Post, sender: str) -> None: ...
    def reaction_added(self, user_id: str, post_id: str, emoji_name: str) -> None: ...


async def follow(client: WebSocketOpener, listener: FeedListener, gateway_id: str) -> NoReturn:
    """Connect, read, reconnect with backoff (0.5 s doubling to 30 s, jittered), forever."""
    log = logger.bind(gateway=gateway_id)
    cursor = WsCursor()
    backoff = Backoff(initial=0.5, cap=30.0)
    while True:
        delay: float | None = None
        resuming = bool(cursor.connection_id)
        try:
            async with client.websocket(cursor.connection_id, cursor.expected_seq) as ws:
                listener.connected_changed(True)
                log.info(
                    "ws.resumed" if resuming else "ws.connected",
                    connection_id=cursor.connection_id,
                    seq=cursor.expected_seq,
                )
                while delay is None:
                    frame = await ws.receive()
                    if frame is None:
                        continue
                    step = cursor.observe(frame)
                    if step in ("hello_new", "hello_same", "event"):
                        backoff.reset()
                    if step == "hello_new":
                        log.info("ws.hello", connection_id=cursor.connection_id)
                        listener.events_lost()
                    elif step == "event":
                        _dispatch(frame, listener)
                    elif step == "gap":
                        log.warning(
                            "ws.gap",
                            reason="reconnecting for a replay",
                            expected=cursor.expected_seq,
                            got=frame.seq,
                        )
                        delay = GAP_RECONNECT_S
        except AuthError:
            raise
        except MattermostError as exc:
            log.warning("ws.closed", error=str(exc))
        finally:
            listener.connected_changed(False)
        await asyncio.sleep(backoff.next() if delay is None else delay)


def _dispatch(frame: WsFrame, listener: FeedListener) -> None:
    """Judge one event alone: whatever it holds, an error skips it and never stops the feed."""
    try:
        _judge(frame, listener)
    except Exception as exc:
        logger.error(
            "ws.event_skipped", error=f"{type(exc).__name__}: {str(exc)[:200]}", seq=frame.seq
        )


def _judge(frame: WsFrame, listener: FeedListener) -> None:
    data = frame.data or {}
    if frame.event == "reaction_added":
        _reaction(data.get("reaction"), listener)
        return
    if frame.event != "posted":
        return  # post_edited/post_deleted: an accepted post is never answered twice
    post = decode_post(data.get("post"))
    if post is None:
        logger.warning("ws.bad_post", reason="a posted event without a decodable post")
        return
    sender = data.get("sender_name")  # decides nothing unless the server names nobody
    listener.post_seen(post, sender if isinstance(sender, str) else "")


def _reaction(raw: object, listener: FeedListener) -> None:
    """``reaction_added`` carries the reaction as a JSON string (mattermost-protocol.md)."""
    try:
        reaction = decode_json(raw) if isinstance(raw, str | bytes) else raw
    except ValueError:
        reaction = None
    if not isinstance(reaction, dict):
        logger.warning(
            "ws.bad_reaction", reason="a reaction_added event without a decodable reaction"
        )
        return
    user_id, post_id = reaction.get("user_id"), reaction.get("post_id")
    emoji = reaction.get("emoji_name")
    if isinstance(user_id, str) and isinstance(post_id, str) and isinstance(emoji, str):
        listener.reaction_added(user_id, post_id, emoji)
