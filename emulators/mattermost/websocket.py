"""GET /api/v4/websocket: upgrade, authentication, client actions and the per-socket writer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import WSMsgType, web

from .auth import REQUEST_ID, request_token
from .errors import AppError
from .hub import Item, dumps, make_broadcast
from .ids import is_valid_id

if TYPE_CHECKING:
    from collections.abc import Callable

    from .faults import Faults
    from .hub import Hub, WebConn
    from .model import User
    from .stats import Counters
    from .store import Store

log = logging.getLogger(__name__)
MAX_FRAME_BYTES = 8192  # SetReadLimit(8192): a larger client frame kills the connection
# pingInterval = pongWaitTime * 6/10: the read deadline is 100/60 of the ping interval.
PONG_WAIT_FACTOR = 100 / 60
SERVER_VERSION = "10.11.0"
# Actions the real router registers that need nothing but an OK from us.
_QUIET_ACTIONS = {"presence", "user_update_active_status", "posted_notify_ack"}


class BadFrameError(Exception):
    """A client frame that the server cannot decode into a request; the socket is closed."""


@dataclass
class WsEnv:
    store: Store
    hub: Hub
    faults: Faults
    counters: Counters
    on_delivered: Callable[[str, str], None]  # (post_id, user_id) when a posted event is written
    auth_timeout_s: float = 5.0
    ping_interval_s: float = 60.0
    server_hostname: str = "mm-emulator"
    # Every upgraded socket, authenticated or not (for drops, garbage frames and shutdown).
    sessions: set[SocketSession] = field(default_factory=set)

    def hello_data(self) -> dict[str, Any]:
        return {
            "server_hostname": self.server_hostname,
            "server_version": f"{SERVER_VERSION}.0.emulator.false",
        }


def decode_request(msg_type: WSMsgType, payload: Any) -> tuple[int, str | None, dict[str, Any]]:
    """(seq, action, data) of a WebSocketRequest, or BadFrameError as Go's decoder would fail."""
    try:
        text = msg_type == WSMsgType.TEXT
        raw = json.loads(payload) if text else msgspec.msgpack.decode(payload)
    except (ValueError, msgspec.DecodeError) as exc:
        raise BadFrameError("frame is not valid JSON/msgpack") from exc
    if not isinstance(raw, dict):
        raise BadFrameError("request is not an object")
    seq, action, data = raw.get("seq", 0), raw.get("action"), raw.get("data")
    if isinstance(seq, bool) or not isinstance(seq, int) or not -(2**63) <= seq < 2**63:
        raise BadFrameError("seq is not an int64")
    if action is not None and not isinstance(action, str):
        raise BadFrameError("action is not a string")
    if data is not None and not isinstance(data, dict):
        raise BadFrameError("data is not an object")
    return seq, action or None, data or {}


def ok(seq: int, data: dict[str, Any] | None = None) -> Item:
    body: dict[str, Any] = {"status": "OK", "seq_reply": seq}
    if data is not None:
        body["data"] = data
    return Item("response", text=dumps(body))


def fail(seq: int, error: AppError) -> Item:
    body = {"status": "FAIL", "seq_reply": seq, "error": error.to_json(None)}
    return Item("response", text=dumps(body))


class SocketSession:
    """One upgraded socket; it may (after auth) own a hub WebConn."""

    def __init__(self, env: WsEnv, request: web.Request, ws: web.WebSocketResponse) -> None:
        self.env = env
        self.request = request
        self.ws = ws
        self.conn: WebConn | None = None
        self.user: User | None = None
        self._wakeup = asyncio.Event()
        self._last_pong = time.monotonic()  # the read deadline counts from the upgrade

    def __repr__(self) -> str:
        return f"<SocketSession user={self.user.username if self.user else None} conn={self.conn}>"

    # SocketLike
    def wake(self) -> None:
        self._wakeup.set()

    def abort(self) -> None:
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def run(self, user: User | None, connection_id: str, sequence: int) -> None:
        if user is not None:
            self._attach(user, connection_id, sequence)
        async with asyncio.TaskGroup() as tg:
            writer = tg.create_task(self._writer())
            pinger = tg.create_task(self._pinger())
            try:
                await self._reader()
            finally:
                if self.conn is not None:
                    self.env.hub.detach(self.conn, self)
                writer.cancel()
                pinger.cancel()
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.close()

    def _attach(
        self, user: User, connection_id: str, sequence: int, *, fresh: bool = False
    ) -> None:
        self.user = user
        hub = self.env.hub
        if fresh or not connection_id:
            self.conn = hub.register(user.id, self)
        else:
            self.conn = hub.resume(user.id, connection_id, sequence, self)
        self.wake()

    async def _reader(self) -> None:
        deadline = time.monotonic() + self.env.auth_timeout_s
        while True:
            timeout = None if self.user else max(0.0, deadline - time.monotonic())
            try:
                msg = await self.ws.receive(timeout=timeout)
            except TimeoutError:
                self.env.counters.ws_auth_failures += 1
                return  # unauthenticated for too long: the auth ticker closes it
            if msg.type == WSMsgType.PING:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await self.ws.pong(msg.data)
                continue
            if msg.type == WSMsgType.PONG:
                self._last_pong = time.monotonic()  # only PONGs extend the read deadline
                continue
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                return  # CLOSE, CLOSING, CLOSED or ERROR (e.g. frame over 8192 bytes)
            try:
                seq, action, data = decode_request(msg.type, msg.data)
            except BadFrameError:
                # The real readPump just errors out: no close frame, the TCP link drops.
                self.abort()
                return
            if not await self._handle(seq, action, data):
                return

    async def _handle(self, seq: int, action: str | None, data: dict[str, Any]) -> bool:
        """Serve one request; False closes the socket."""
        if self.user is None:
            # Errors are only delivered to registered connections: silence until then.
            if seq <= 0 or action != "authentication_challenge":
                return True
            token = data.get("token")
            user = self.env.store.user_by_token(token) if isinstance(token, str) else None
            if user is None:
                self.env.counters.ws_auth_failures += 1
                return False
            # Challenge auth has no session at upgrade time, so it always starts fresh.
            self._attach(user, "", 0, fresh=True)
            self._respond(ok(seq))
            return True
        if seq <= 0:
            self._respond(fail(seq, AppError("api.web_socket_router.bad_seq.app_error", 400)))
        elif action is None:
            self._respond(fail(seq, AppError("api.web_socket_router.no_action.app_error", 400)))
        elif action == "authentication_challenge" or action.startswith("custom_"):
            pass  # already authenticated: ignored; custom_ actions belong to plugins
        elif action == "ping":
            now_ms = int(time.time() * 1000)
            pong = {"text": "pong", "version": SERVER_VERSION, "server_time": now_ms, "node_id": ""}
            self._respond(ok(seq, pong))
        elif action == "user_typing":
            self._respond(self._user_typing(seq, data))
        elif action in _QUIET_ACTIONS:
            self._respond(ok(seq))
        elif action == "get_statuses":
            self._respond(ok(seq, dict.fromkeys(self.env.store.users, "online")))
        elif action == "get_statuses_by_ids":
            wanted = data.get("user_ids")
            if not isinstance(wanted, list) or not wanted:
                invalid = "api.websocket_handler.invalid_param.app_error"
                self._respond(fail(seq, AppError(invalid, 400, name="user_ids")))
            else:
                known = self.env.store.users
                found = [i for i in wanted if isinstance(i, str) and i in known]
                self._respond(ok(seq, dict.fromkeys(found, "online")))
        else:
            self._respond(fail(seq, AppError("api.web_socket_router.bad_action.app_error", 500)))
        return True

    def _user_typing(self, seq: int, data: dict[str, Any]) -> Item:
        assert self.user is not None
        channel_id, parent_id = data.get("channel_id"), data.get("parent_id", "")
        channels = self.env.store.channels
        channel = channels.get(channel_id) if isinstance(channel_id, str) else None
        invalid = "api.websocket_handler.invalid_param.app_error"
        if channel is None or self.user.id not in channel.members:
            return fail(seq, AppError(invalid, 400, name="channel_id"))
        if not isinstance(parent_id, str):
            return fail(seq, AppError(invalid, 400, name="parent_id"))
        publish_typing(self.env.hub, self.user.id, channel.id, parent_id)
        return ok(seq)

    def _respond(self, item: Item) -> None:
        if self.conn is not None:
            self.env.hub.enqueue(self.conn, item)

    async def _pinger(self) -> None:
        """PING every interval whatever else flows; drop a peer whose PONGs stop."""
        interval = self.env.ping_interval_s
        pong_wait = interval * PONG_WAIT_FACTOR
        next_ping = time.monotonic() + interval
        while True:
            now = time.monotonic()
            deadline = self._last_pong + pong_wait
            if now >= deadline:
                self.abort()  # read deadline passed: the real readPump errors out
                return
            if now >= next_ping:
                try:
                    await self.ws.ping()
                except (ConnectionError, RuntimeError):
                    return
                next_ping += interval
                continue
            await asyncio.sleep(min(next_ping, deadline) - now)

    async def _writer(self) -> None:
        hello = self.env.hello_data()
        while True:
            conn = self.conn
            while conn is not None and conn.socket is self and conn.outbox:
                item = conn.outbox.popleft()
                # render() assigns the seq and stores the frame in the dead queue *before*
                # the write, so a frame lost to a failing socket is still replayable.
                text = conn.render(item, hello)
                try:
                    await self.ws.send_str(text)
                except (ConnectionError, RuntimeError):
                    self.abort()
                    return
                if item.kind != "response":
                    self.env.counters.events_sent += 1
                if item.event == "posted" and item.post_id:
                    self.env.on_delivered(item.post_id, conn.user_id)
            self._wakeup.clear()
            await self._wakeup.wait()


def publish_typing(hub: Hub, user_id: str, channel_id: str, parent_id: str) -> None:
    hub.broadcast(
        "typing",
        {"parent_id": parent_id, "user_id": user_id},
        make_broadcast(channel_id=channel_id, omit_users={user_id: True}),
    )


async def handle_websocket(env: WsEnv, request: web.Request) -> web.StreamResponse:
    """The upgrade route; pre-upgrade failures raise AppError (rendered by the middleware)."""
    if env.faults.refusing():
        env.counters.ws_refused += 1
        raise AppError("api.web_socket.connect.upgrade.app_error", 503)
    token = request_token(request)  # may raise the query-token 401 before the upgrade
    # A bad token is no HTTP error: the socket is upgraded but stays unauthenticated.
    user = env.store.user_by_token(token) if token else None
    connection_id = request.query.get("connection_id", "")
    raw_seq = request.query.get("sequence_number")
    sequence: int | None = 0
    if connection_id:
        try:
            sequence = int(raw_seq) if raw_seq is not None else None
        except ValueError:
            sequence = None
        if not is_valid_id(connection_id):
            sequence = None
    # aiohttp refuses payloads >= max_msg_size, gorilla only those > the limit: hence +1.
    # Pings are ours (SocketSession._pinger): aiohttp's heartbeat pauses while data flows.
    ws = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES + 1, autoping=False)
    request_id = request.get(REQUEST_ID)
    if request_id:
        ws.headers["X-Request-Id"] = request_id
    await ws.prepare(request)
    env.counters.ws_connects += 1
    if sequence is None:
        # Bad resumption parameters: logged and closed right after the upgrade, no hello.
        await ws.close()
        return ws
    session = SocketSession(env, request, ws)
    env.sessions.add(session)
    try:
        await session.run(user, connection_id, sequence)
    except Exception:
        # Past the upgrade no HTTP answer is possible: log it and cut this socket only.
        log.exception("websocket session failed")
        session.abort()
    finally:
        env.sessions.discard(session)
    return ws
