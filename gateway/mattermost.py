"""The Mattermost side: REST calls and the WebSocket, on aiohttp, by hand (no driver).

Every aiohttp exception is translated here into :mod:`gateway.errors`; nothing above this
module sees aiohttp. Every network await has a deadline. The token travels only in the
``Authorization`` header and never appears in an error message or a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Protocol, TypeVar
from urllib.parse import quote

import aiohttp
import msgspec
from loguru import logger

from gateway.bridge import retry_delay, thread_page
from gateway.errors import (
    AuthError,
    BadRequestError,
    ForbiddenError,
    MattermostError,
    NotFoundError,
    PendingPostError,
    RateLimitedError,
    ServerError,
    TransportError,
    WebSocketClosedError,
)
from gateway.models import (
    FileInfo,
    Post,
    PostList,
    User,
    WsFrame,
    decode_json,
    to_file_info,
    to_frame,
    to_post,
    to_post_list,
    to_user,
    to_users,
)
from protocol.backoff import Backoff

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence

__all__ = ["FileTooLargeError", "MattermostClient", "RawSocket", "WebSocket", "decode_post"]

T = TypeVar("T")

REQUEST_TIMEOUT_S = 15.0
FILE_TIMEOUT_S = 120.0  # a 20 MB attachment over a slow link
WS_CONNECT_TIMEOUT_S = 10.0
# aiohttp pings every HEARTBEAT_S and drops the socket when no pong comes within half of
# it: a silently dead server is noticed within ~22 s, far inside Mattermost's 100 s.
WS_HEARTBEAT_S = 15.0
AMBIGUOUS_RECHECK_S = 20.0  # pending_post_id protects 30 s; past this, look before re-posting
# Mattermost orders a thread by (create_at ms, id): two of our posts created in the same
# millisecond may show in either order. The server stamped the previous post before it
# answered, and stamps the next one after we send it, so sending >= 1 ms after the previous
# answer arrived gives the next post a later millisecond (0.1 ms of margin for clock drift).
# Keeps answers, and the parts of one answer, in the order we post them.
CREATE_GAP_S = 0.0011


class _ErrorBody(msgspec.Struct):
    id: str = ""
    message: str = ""


_error_decoder = msgspec.json.Decoder(_ErrorBody)


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _error_for(status: int, body: bytes, headers: Mapping[str, str], what: str) -> MattermostError:
    """The error for a non-2xx response (429 bodies are plain text, not JSON)."""
    if status == 429:
        wait = _seconds(headers.get("Retry-After")) or _seconds(headers.get("X-Ratelimit-Reset"))
        return RateLimitedError(f"{what}: rate limited (429)", retry_after=wait or 1.0)
    try:
        err = _error_decoder.decode(body)
    except (msgspec.DecodeError, RecursionError):
        err = _ErrorBody()
    text = f"{what}: HTTP {status} {err.id or ''} {err.message or ''}".rstrip()
    cls: type[MattermostError]
    if status == 401:
        cls = AuthError
    elif status == 403:
        cls = ForbiddenError
    elif status == 404:
        cls = NotFoundError
    elif err.id == "api.post.deduplicate_create_post.pending":
        cls = PendingPostError
    elif status >= 500:
        cls = ServerError
    else:
        cls = BadRequestError
    return cls(text, status=status, error_id=err.id)


@contextlib.contextmanager
def _map_errors(what: str) -> Iterator[None]:
    try:
        yield
    except TimeoutError as exc:
        raise TransportError(f"{what}: timed out") from exc
    except aiohttp.ClientError as exc:
        raise TransportError(f"{what}: {type(exc).__name__}: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise TransportError(f"{what}: malformed response: {exc}") from exc


def _date_ms(value: str | None) -> int:
    """An HTTP ``Date`` header in ms since the epoch; 0 when absent or malformed."""
    if not value:
        return 0
    try:
        return int(parsedate_to_datetime(value).timestamp()) * 1000
    except (TypeError, ValueError, IndexError, OverflowError):
        return 0


def decode_post(raw: object) -> Post | None:
    """The Post inside a ``posted`` event: a JSON string (documented) or, leniently, an
    object; None when it is neither."""
    if isinstance(raw, str):
        try:
            raw = decode_json(raw)
        except msgspec.DecodeError:
            return None
    return to_post(raw)


def _one_post(raw: bytes, what: str) -> Post:
    post = to_post(decode_json(raw))
    if post is None:
        raise TransportError(f"{what}: the response is not a post")
    return post


def _one_user(raw: bytes, what: str) -> User:
    user = to_user(decode_json(raw))
    if user is None:
        raise TransportError(f"{what}: the response is not a user")
    return user


class FileTooLargeError(MattermostError):
    """A download grew past the limit the caller set; the rest was not read."""


async def _read_limited(resp: aiohttp.ClientResponse, limit: int, what: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            raise FileTooLargeError(f"{what}: more than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class MattermostClient:
    """REST calls and WebSocket connections for one bot token."""

    def __init__(self, url: str, token: str, *, timeout: float = REQUEST_TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._last_create = -CREATE_GAP_S
        # The server's clock (ms, to the second) per the Date header of its last answer.
        self.server_ms = 0

    def __repr__(self) -> str:
        return f"<MattermostClient {self.url} open={self._session is not None}>"

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=self._timeout, connect=self._timeout),
            )
        return self._session

    async def aclose(self) -> None:
        """Close the HTTP session (bounded: a hung close never blocks shutdown)."""
        session, self._session = self._session, None
        if session is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await session.close()

    # --- REST ------------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        what: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: object = None,
        form: aiohttp.FormData | None = None,
        timeout: float | None = None,
        limit: int | None = None,
    ) -> bytes:
        data: bytes | aiohttp.FormData | None = None
        headers = None
        if form is not None:
            data = form
        elif body is not None:
            data = msgspec.json.encode(body)
            headers = {"Content-Type": "application/json"}
        with _map_errors(what):
            async with asyncio.timeout(timeout or self._timeout):
                async with self._http().request(
                    method,
                    f"{self.url}/api/v4{path}",
                    params=params,
                    data=data,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=timeout or self._timeout),
                ) as resp:
                    if limit is not None and resp.status < 300:
                        return await _read_limited(resp, limit, what)
                    content = await resp.read()
                    self.server_ms = _date_ms(resp.headers.get("Date")) or self.server_ms
                    if resp.status >= 300:
                        raise _error_for(resp.status, content, resp.headers, what)
                    return content

    async def get_me(self) -> User:
        raw = await self._request("GET", "/users/me", "get users/me")
        with _map_errors("get users/me"):
            return _one_user(raw, "get users/me")

    async def get_user(self, user_id: str) -> User:
        """``GET /users/{id}`` (not every server or emulator has it: callers tolerate 404/405)."""
        what = f"get user {user_id}"
        raw = await self._request("GET", f"/users/{user_id}", what)
        with _map_errors(what):
            return _one_user(raw, what)

    async def user_by_username(self, username: str) -> User:
        """``GET /users/username/{username}`` (404 when nobody holds that name)."""
        what = f"get user @{username}"
        raw = await self._request("GET", f"/users/username/{quote(username, safe='')}", what)
        with _map_errors(what):
            return _one_user(raw, what)

    async def users_by_usernames(self, names: list[str]) -> list[User]:
        """``POST /users/usernames``: an optional fast path, not promised by the protocol doc."""
        raw = await self._request("POST", "/users/usernames", "resolve usernames", body=names)
        with _map_errors("resolve usernames"):
            return to_users(decode_json(raw))

    async def get_post(self, post_id: str) -> Post:
        what = f"get post {post_id}"
        raw = await self._request("GET", f"/posts/{post_id}", what)
        with _map_errors(what):
            return _one_post(raw, what)

    async def thread_page(
        self, thread_id: str, *, from_create_at: int, from_post: str = "", per_page: int = 200
    ) -> PostList:
        """One page of the thread, oldest first, strictly after ``(from_create_at, from_post)``."""
        params: dict[str, str | int] = {
            "fromCreateAt": from_create_at,
            "direction": "down",
            "perPage": per_page,
        }
        if from_post:
            params["fromPost"] = from_post
        what = f"page thread {thread_id}"
        raw = await self._request("GET", f"/posts/{thread_id}/thread", what, params=params)
        with _map_errors(what):
            return to_post_list(decode_json(raw))

    async def thread_after(
        self, thread_id: str, create_at: int, *, forbidden: str = ""
    ) -> AsyncIterator[list[Post]]:
        """Pages of the thread's replies after ``create_at`` (ms), oldest first, with retries."""
        cursor = (create_at, "")
        while True:
            at, after = cursor
            page = await self.call(
                f"page thread {thread_id}",
                lambda at=at, after=after: self.thread_page(  # type: ignore[misc]
                    thread_id, from_create_at=at, from_post=after
                ),
                forbidden=forbidden,
            )
            posts, nxt = thread_page(page, thread_id)
            yield posts
            if not page.has_next or nxt is None or nxt == cursor:
                return
            cursor = nxt

    async def channel_page(self, channel_id: str, *, page: int, per_page: int = 200) -> PostList:
        """One page of the channel, newest first."""
        what = f"page channel {channel_id}"
        params = {"page": page, "per_page": per_page}
        raw = await self._request("GET", f"/channels/{channel_id}/posts", what, params=params)
        with _map_errors(what):
            return to_post_list(decode_json(raw))

    async def create_post(
        self,
        *,
        channel_id: str,
        message: str,
        root_id: str = "",
        props: Mapping[str, object] | None = None,
        pending_post_id: str = "",
        file_ids: Sequence[str] = (),
    ) -> Post:
        body: dict[str, object] = {
            "channel_id": channel_id,
            "root_id": root_id,
            "message": message,
            "props": dict(props or {}),
            "pending_post_id": pending_post_id,
        }
        if file_ids:
            body["file_ids"] = list(file_ids)
        what = f"create post in channel {channel_id}"
        wait = self._last_create + CREATE_GAP_S - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        try:
            raw = await self._request("POST", "/posts", what, body=body)
        finally:
            self._last_create = time.monotonic()  # the server stamped it before it answered
        with _map_errors(what):
            return _one_post(raw, what)

    async def patch_post(
        self, post_id: str, *, message: str, props: Mapping[str, object] | None = None
    ) -> Post:
        """``PUT /posts/{id}/patch``; ``props`` replaces the post's props when given."""
        body: dict[str, object] = {"message": message}
        if props is not None:
            body["props"] = dict(props)
        what = f"patch post {post_id}"
        raw = await self._request("PUT", f"/posts/{post_id}/patch", what, body=body)
        with _map_errors(what):
            return _one_post(raw, what)

    # --- files -----------------------------------------------------------------------------

    async def get_file_info(self, file_id: str) -> FileInfo:
        what = f"get file info {file_id}"
        raw = await self._request("GET", f"/files/{file_id}/info", what)
        with _map_errors(what):
            info = to_file_info(decode_json(raw))
        if info is None:
            raise TransportError(f"{what}: the response is not a file info")
        return info

    async def get_file(self, file_id: str, *, limit: int | None = None) -> bytes:
        """``GET /files/{id}``: the file's bytes; :class:`FileTooLargeError` as soon as
        they pass ``limit`` (nothing more is read)."""
        return await self._request(
            "GET",
            f"/files/{file_id}",
            f"download file {file_id}",
            timeout=FILE_TIMEOUT_S,
            limit=limit,
        )

    async def upload_file(self, *, channel_id: str, name: str, data: bytes) -> FileInfo:
        """``POST /files`` (multipart: channel_id, then files); the new file's info."""
        form = aiohttp.FormData()
        form.add_field("channel_id", channel_id)
        form.add_field("files", data, filename=name, content_type="application/octet-stream")
        what = f"upload file {name!r}"
        raw = await self._request("POST", "/files", what, form=form, timeout=FILE_TIMEOUT_S)
        with _map_errors(what):
            body = decode_json(raw)
            infos = body.get("file_infos") if isinstance(body, dict) else None
            info = to_file_info(infos[0]) if isinstance(infos, list) and infos else None
        if info is None:
            raise TransportError(f"{what}: the response holds no file info")
        return info

    async def add_reaction(self, *, user_id: str, post_id: str, emoji_name: str) -> None:
        body = {"user_id": user_id, "post_id": post_id, "emoji_name": emoji_name}
        await self._request("POST", "/reactions", f"react to {post_id}", body=body)

    async def reactions(self, post_id: str) -> list[tuple[str, str]]:
        """``GET /posts/{id}/reactions``: (user id, emoji name) of each reaction."""
        what = f"list reactions of {post_id}"
        raw = await self._request("GET", f"/posts/{post_id}/reactions", what)
        data = decode_json(raw)
        found: list[tuple[str, str]] = []
        for item in data if isinstance(data, list) else []:
            if isinstance(item, dict):
                user_id, emoji = item.get("user_id"), item.get("emoji_name")
                if isinstance(user_id, str) and isinstance(emoji, str):
                    found.append((user_id, emoji))
        return found

    async def typing(self, *, user_id: str, channel_id: str, parent_id: str) -> None:
        """``POST /users/{user_id}/typing`` with the bot's own id (doc 2.6)."""
        body = {"channel_id": channel_id, "parent_id": parent_id}
        await self._request("POST", f"/users/{user_id}/typing", "typing", body=body)

    async def call(
        self,
        what: str,
        op: Callable[[], Awaitable[T]],
        *,
        forbidden: str = "",
        recheck: Callable[[], Awaitable[T | None]] | None = None,
    ) -> T:
        """Run ``op`` until it succeeds, retrying what can be retried (bridge.retry_delay).

        Raises :class:`AuthError` at once and other errors that retrying cannot fix.
        ``forbidden`` is logged on a 403 (e.g. which channel the bot must join). ``recheck``
        is consulted before re-sending after an answer-less failure older than the 30 s
        ``pending_post_id`` window: if it finds the result, that result is returned.
        """
        backoff = Backoff(initial=0.25, cap=10.0)
        started = time.monotonic()
        ambiguous = False
        while True:
            late = time.monotonic() - started > AMBIGUOUS_RECHECK_S
            if ambiguous and late and recheck is not None:
                found = await recheck()
                if found is not None:
                    return found
            try:
                return await op()
            except MattermostError as exc:
                delay = retry_delay(exc, backoff)
                if delay is None:
                    raise
                ambiguous = ambiguous or isinstance(exc, TransportError | ServerError)
                if isinstance(exc, ForbiddenError) and forbidden:
                    logger.error("mm.forbidden {}", forbidden, what=what, retry_s=delay)
                else:
                    logger.warning(
                        "mm.retry {}", exc, what=what, status=exc.status, retry_s=round(delay, 2)
                    )
                await asyncio.sleep(delay)

    # --- WebSocket -------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def websocket(self, connection_id: str, sequence_number: int) -> AsyncIterator[WebSocket]:
        """An open WebSocket, resuming ``connection_id`` at ``sequence_number`` if given."""
        ws_url = "ws" + self.url[len("http") :] if self.url.startswith("http") else self.url
        params = {"connection_id": connection_id, "sequence_number": str(sequence_number)}
        with _map_errors("websocket connect"):
            async with asyncio.timeout(WS_CONNECT_TIMEOUT_S):
                raw = await self._http().ws_connect(
                    f"{ws_url}/api/v4/websocket",
                    params=params,
                    heartbeat=WS_HEARTBEAT_S,
                    timeout=aiohttp.ClientWSTimeout(ws_close=1.0),
                    max_msg_size=16 * 1024 * 1024,
                )
        ws = WebSocket(raw)
        try:
            yield ws
        finally:
            await ws.aclose()


class RawSocket(Protocol):
    """What :class:`WebSocket` uses of aiohttp's ``ClientWebSocketResponse``."""

    @property
    def closed(self) -> bool: ...
    @property
    def close_code(self) -> int | None: ...
    async def receive(self) -> aiohttp.WSMessage: ...
    async def close(self) -> bool: ...


class WebSocket:
    """One open connection: frames in, decoded; the heartbeat runs inside aiohttp."""

    def __init__(self, raw: RawSocket) -> None:
        self._raw = raw

    def __repr__(self) -> str:
        return f"<WebSocket closed={self._raw.closed}>"

    async def receive(self) -> WsFrame | None:
        """The next frame; None for one that is not JSON (logged); raises when closed.

        No deadline of its own: the heartbeat closes a dead connection, which ends this.
        """
        with _map_errors("websocket receive"):
            msg = await self._raw.receive()
        if msg.type == aiohttp.WSMsgType.TEXT:
            try:
                frame = to_frame(decode_json(msg.data))
            except msgspec.DecodeError as exc:
                logger.warning("ws.bad_frame {}", exc, size=len(msg.data))
                return None
            if frame is None:
                logger.warning("ws.bad_frame not a JSON object", size=len(msg.data))
            return frame
        if msg.type == aiohttp.WSMsgType.BINARY:
            logger.warning("ws.bad_frame binary frame ignored", size=len(msg.data))
            return None
        reason = f"{msg.type.name} {msg.data!r}" if msg.type == aiohttp.WSMsgType.ERROR else ""
        raise WebSocketClosedError(f"websocket closed ({self._raw.close_code}) {reason}".strip())

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await self._raw.close()
