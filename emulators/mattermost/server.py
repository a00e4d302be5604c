"""MattermostEmulator: the seeded server, its aiohttp app and the in-process control surface."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .admin import admin_routes
from .core import Core
from .faults import Faults, PostFailure, RateLimiter
from .hub import Hub
from .ids import IdGenerator, MillisClock
from .model import Team
from .rest import RestApi, make_middleware
from .stats import Counters
from .store import PostPatch, Store
from .webapp import web_routes
from .websocket import WsEnv, handle_websocket

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from .stats import EmulatorStats, PostTiming

GARBAGE_FRAME = "}this is not JSON{"


@dataclass(frozen=True, kw_only=True)
class EmulatorOptions:
    """Knobs of one emulator; the defaults are the real server's values."""

    host: str = "127.0.0.1"
    port: int = 0
    seed: int | None = None
    resume_window_s: float = 300.0  # inactive connections are reaped after this
    ping_interval_s: float = 60.0  # server PING frames; no PONG for 100/60 of it drops the peer
    auth_timeout_s: float = 5.0  # unauthenticated sockets are closed after this
    dedup_ttl_s: float = 30.0  # pending_post_id cache lifetime
    post_create_delay_s: float = 0.0  # time a create spends "in progress"
    send_queue_size: int = 256
    dead_queue_size: int = 128
    server_hostname: str = "mm-emulator"


@dataclass(frozen=True)
class SeedUser:
    id: str
    username: str
    token: str
    is_bot: bool = False


@dataclass(frozen=True)
class SeedChannel:
    id: str
    name: str
    display_name: str
    type: str


@dataclass(frozen=True)
class SeedTeam:
    id: str
    name: str
    display_name: str


class MattermostEmulator:
    """One emulated server; use `open_emulator()` or `start()`/`aclose()`."""

    def __init__(self, options: EmulatorOptions | None = None, **overrides: Any) -> None:
        self.options = replace(options or EmulatorOptions(), **overrides)
        opts = self.options
        ids = IdGenerator(opts.seed)
        clock = MillisClock()
        team = Team(ids.new_id(), "mmclaude", "MMClaude")
        self._store = store = Store(ids=ids, clock=clock, team=team)
        bot = store.add_user("claudebot", first_name="Claude Bot", is_bot=True)
        humans = [store.add_user(n, first_name=n.title()) for n in ("alice", "bob", "mallory")]
        outsider = store.add_user("outsider", first_name="Outsider")
        otherbot = store.add_user("otherbot", first_name="Other Bot", is_bot=True)
        main = store.add_channel("town-square", "Town Square", "O", [bot, *humans, otherbot])
        other = store.add_channel("bot-lab", "Bot Lab", "P", [bot, humans[0]])
        self._counters = Counters()
        self._faults = Faults()

        def is_member(user_id: str, channel_id: str) -> bool:
            channel = store.channels.get(channel_id)
            return channel is not None and user_id in channel.members

        self._hub = Hub(
            ids,
            self._counters,
            is_member,
            resume_window_s=opts.resume_window_s,
            send_queue_size=opts.send_queue_size,
            dead_queue_size=opts.dead_queue_size,
        )
        self._core = Core(
            store,
            self._hub,
            self._faults,
            self._counters,
            dedup_ttl_s=opts.dedup_ttl_s,
            post_create_delay_s=opts.post_create_delay_s,
        )
        self._ws = WsEnv(
            store,
            self._hub,
            self._faults,
            self._counters,
            self._core.on_delivered,
            auth_timeout_s=opts.auth_timeout_s,
            ping_interval_s=opts.ping_interval_s,
            server_hostname=opts.server_hostname,
        )
        self.bot = _seed_user(bot)
        self.users = {u.username: _seed_user(u) for u in (*humans, outsider, otherbot)}
        self.team = SeedTeam(team.id, team.name, team.display_name)
        self.channel = SeedChannel(main.id, main.name, main.display_name, main.type)
        self.other_channel = SeedChannel(other.id, other.name, other.display_name, other.type)
        self._ids = ids
        self._clock = clock
        self._runner: web.AppRunner | None = None
        self._pending_ms = 0
        self.url = ""

    def __repr__(self) -> str:
        where = self.url or "stopped"
        return f"<MattermostEmulator {where} posts={len(self._store.posts)} {self._hub!r}>"

    # --- lifecycle ----------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[make_middleware(self._core, self._ids)])
        app.add_routes(RestApi(self._core).routes())

        async def websocket(request: web.Request) -> web.StreamResponse:
            return await handle_websocket(self._ws, request)

        app.add_routes([web.get(r"/api/v4/{ws:websocket/?}", websocket)])
        app.add_routes(admin_routes(self))
        app.add_routes(web_routes(self))
        return app

    async def start(self) -> None:
        runner = web.AppRunner(self.make_app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.options.host, self.options.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def aclose(self) -> None:
        """Cut every socket, then stop the HTTP server (always releases the port)."""
        self._hub.forget_all()
        for session in list(self._ws.sessions):
            session.abort()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # --- seed and state -----------------------------------------------------------------

    def seed_info(self) -> dict[str, Any]:
        def user(u: SeedUser) -> dict[str, Any]:
            return {"id": u.id, "username": u.username, "token": u.token, "is_bot": u.is_bot}

        def channel(c: SeedChannel) -> dict[str, Any]:
            return {"id": c.id, "name": c.name, "display_name": c.display_name, "type": c.type}

        return {
            "url": self.url,
            "ws_url": self.url.replace("http://", "ws://", 1) + "/api/v4/websocket",
            "team": {
                "id": self.team.id,
                "name": self.team.name,
                "display_name": self.team.display_name,
            },
            "channel": channel(self.channel),
            "other_channel": channel(self.other_channel),
            "bot": user(self.bot),
            "users": {name: user(u) for name, u in self.users.items()},
        }

    @property
    def stats(self) -> EmulatorStats:
        return self.statistics()

    def statistics(self) -> EmulatorStats:
        return self._counters.snapshot(sockets_open=len(self._ws.sessions))

    @property
    def post_timings(self) -> dict[str, PostTiming]:
        """Per post id: monotonic created/broadcast times and first delivery per user."""
        return self._core.timings

    def posts(
        self,
        root_id: str | None = None,
        channel_id: str | None = None,
        include_deleted: bool = False,
    ) -> list[dict[str, Any]]:
        """Posts in create order (edit-history rows only with include_deleted)."""
        out = []
        for post in self._store.posts_in_create_order():
            if post.delete_at and not include_deleted:
                continue
            if root_id is not None and root_id not in (post.root_id, post.id):
                continue
            if channel_id is not None and post.channel_id != channel_id:
                continue
            out.append(self._store.render(post))
        return out

    async def wait_for_post(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> dict[str, Any]:
        return await self._core.wait_for_post(predicate, timeout)

    # --- acting as users ----------------------------------------------------------------

    def _user(self, username: str) -> Any:
        user = self._store.user_by_name(username)
        if user is None:
            raise KeyError(f"no seeded user named {username!r}")
        return user

    async def post_as(
        self,
        username: str,
        message: str,
        root_id: str = "",
        channel_id: str | None = None,
        props: dict[str, Any] | None = None,
        file_ids: list[str] | None = None,
    ) -> dict[str, Any]:
        """Create a post as `username` (like the webapp would) and broadcast `posted`."""
        user = self._user(username)
        if channel_id is None:
            root = self._store.posts.get(root_id) if root_id else None
            channel_id = root.channel_id if root is not None else self.channel.id
        body = {
            "channel_id": channel_id,
            "message": message,
            "root_id": root_id,
            "props": props or {},
            "file_ids": list(file_ids or []),
            "pending_post_id": f"{user.id}:{self._next_pending_ms()}",
        }
        return await self._core.create_post(user, body, inject_faults=False)

    def upload_as(
        self, username: str, name: str, data: bytes, channel_id: str | None = None
    ) -> dict[str, Any]:
        """Upload a file as `username` (POST /files); returns its FileInfo JSON."""
        user = self._user(username)
        info = self._store.upload_file(user, channel_id or self.channel.id, name, data)
        return info.to_json()

    def file_bytes(self, file_id: str) -> bytes:
        return self._store.files[file_id].data

    def set_max_file_size(self, size: int) -> None:
        """FileSettings.MaxFileSize: larger uploads are refused with 413."""
        self._store.max_file_size = size

    def _next_pending_ms(self) -> int:
        # The webapp's "<user_id>:<Date.now()>", kept unique: two posts in one ms must
        # not be taken for a retry of each other.
        self._pending_ms = max(self._pending_ms + 1, int(time.time() * 1000))
        return self._pending_ms

    async def patch_as(self, username: str, post_id: str, message: str) -> dict[str, Any]:
        return self._core.patch_post(self._user(username), post_id, PostPatch(message=message))

    async def delete_as(self, username: str, post_id: str) -> None:
        self._core.delete_post(self._user(username), post_id)

    async def react_as(self, username: str, post_id: str, emoji_name: str) -> dict[str, Any]:
        user = self._user(username)
        body = {"user_id": user.id, "post_id": post_id, "emoji_name": emoji_name}
        return self._core.add_reaction(user, body)

    # --- faults -------------------------------------------------------------------------

    def drop_sockets(self) -> int:
        """Cut every socket like a network failure; connections stay resumable."""
        dropped = self._hub.drop_all()
        for session in list(self._ws.sessions):
            if session.conn is None:
                session.abort()
                dropped += 1
        return dropped

    def restart_sockets(self) -> None:
        """Like a server restart: cut every socket and forget all resumption state."""
        self._hub.forget_all()
        for session in list(self._ws.sessions):
            session.abort()

    def refuse_sockets(self, seconds: float) -> None:
        """Answer WebSocket upgrades with 503 for `seconds` (0 stops refusing)."""
        self._faults.refuse_until = time.monotonic() + seconds

    def fail_posts(
        self, n: int, status: int = 500, retry_after: float = 1.0, after_create: bool = False
    ) -> None:
        """Fail the next `n` POST /posts: 500 AppError or 429 plain text with Retry-After."""
        if status not in (429, 500, 502, 503, 504):
            raise ValueError("status must be 429 or a 5xx")
        failure = PostFailure(status, retry_after, after_create)
        self._faults.post_failures.extend([failure] * n)

    def fail_route(self, method: str, route: str, status: int, n: int | None = None) -> None:
        """Answer the next `n` requests (all while `n` is None; `n=0` stops) to `method` and
        `route` (as registered, e.g. "/api/v4/users/usernames" or
        "/api/v4/channels/{channel_id}") with `status` and an AppError body."""
        key = (method.upper(), route)
        if n == 0:
            self._faults.route_failures.pop(key, None)
        else:
            self._faults.route_failures[key] = [status, n]

    def add_user(self, username: str, channel_ids: tuple[str, ...] = ()) -> SeedUser:
        """Create a user after start (member of the team and of `channel_ids`)."""
        user = self._store.add_user(username, first_name=username.title())
        for channel_id in channel_ids:
            self._store.channels[channel_id].members.add(user.id)
        return _seed_user(user)

    def rename_user(self, user_id: str, username: str) -> None:
        """Rename a user (as users may rename themselves); later posts carry the new name."""
        self._store.rename_user(user_id, username)

    def advance_clock(self, seconds: float) -> None:
        """Move the server's clock (create_at/update_at of what comes next) forward."""
        self._clock.offset_ms += int(seconds * 1000)

    @property
    def rest_in_flight(self) -> int:
        """REST requests being served right now (a test waits for 0: nothing still lands)."""
        return self._core.rest_in_flight

    def expire_pending_posts(self) -> None:
        """End the `pending_post_id` window of every post now, as if its TTL had passed."""
        self._core.dedup.expire_all()

    def set_latency(self, seconds: float) -> None:
        """Delay every REST request (not socket frames) by `seconds`."""
        self._faults.latency_s = max(0.0, seconds)

    def set_rate_limit(self, enabled: bool, per_sec: float = 10.0, burst: int = 100) -> None:
        self._faults.rate_limiter = RateLimiter(per_sec, burst) if enabled else None

    async def send_garbage_frame(self, text: str = GARBAGE_FRAME) -> int:
        """Write a non-JSON text frame to every open socket; returns how many got it."""
        sent = 0
        for session in list(self._ws.sessions):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await session.ws.send_str(text)
                sent += 1
        return sent


def _seed_user(user: Any) -> SeedUser:
    return SeedUser(user.id, user.username, user.token, user.is_bot)


@contextlib.asynccontextmanager
async def open_emulator(port: int = 0, **options: Any) -> AsyncIterator[MattermostEmulator]:
    """Start an emulator on 127.0.0.1 (port 0 = a free port) and stop it on exit.

    `options` are EmulatorOptions fields (resume_window_s, ping_interval_s, seed, ...).
    """
    emulator = MattermostEmulator(port=port, **options)
    await emulator.start()
    try:
        yield emulator
    finally:
        await emulator.aclose()
