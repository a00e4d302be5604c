"""In-memory stand-ins for the gateway's seams, for unit tests of the service without sockets
or an emulator: ``FakeMattermost`` (a :class:`gateway.mattermost.MattermostApi` holding one
server's posts), ``MemoryBus`` (a :class:`gateway.bus.WorkerBus` recording what goes to the
worker) and ``ManualClock`` (a clock that moves only when told)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from gateway.errors import NotFoundError, TransportError
from gateway.models import FileInfo, Post, PostList, User

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence

    from gateway.mattermost import WebSocket
    from protocol import GatewayHeartbeat, ToGateway, ToWorker

__all__ = ["FakeMattermost", "ManualClock", "MemoryBus"]

T = TypeVar("T")


class ManualClock:
    """Monotonic seconds that advance only through :meth:`advance`."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class MemoryBus:
    """The worker's side of the bus in memory: what the gateway sent, and an inbox to it."""

    def __init__(self) -> None:
        self.sent: list[ToWorker] = []
        self.beats: list[GatewayHeartbeat] = []
        self.inbox: asyncio.Queue[ToGateway] = asyncio.Queue()

    def send(self, message: ToWorker) -> bool:
        self.sent.append(message)
        return True

    def heartbeat(self, message: GatewayHeartbeat) -> None:
        self.beats.append(message)

    async def receive(self, timeout: float) -> ToGateway | None:
        try:
            async with asyncio.timeout(timeout):
                return await self.inbox.get()
        except TimeoutError:
            return None

    def of(self, kind: type[Any]) -> list[Any]:
        """What was sent of one message type, in order."""
        return [m for m in self.sent if isinstance(m, kind)]


class FakeMattermost:
    """One server's posts, users and reactions in memory. Calls succeed at once (``call``
    runs its operation once); the WebSocket never connects (the tests hand the service its
    events); ``thread_gate`` holds every thread read while it is clear."""

    def __init__(self, bot: User, users: Sequence[User] = ()) -> None:
        self.server_ms = 0
        self.bot = bot
        self.users = {u.id: u for u in (bot, *users)}
        self.posts: dict[str, Post] = {}
        self.created: list[Post] = []  # posts made through create_post, in order
        self.reactions_of: dict[str, list[tuple[str, str]]] = {}
        self.typings = 0
        self.thread_gate = asyncio.Event()
        self.thread_gate.set()
        self._pending: dict[str, Post] = {}
        self._ids = itertools.count(1)
        self._clock = itertools.count(10_000)

    def add(self, post: Post) -> Post:
        """Put a post on the server (made by someone else)."""
        self.posts[post.id] = post
        return post

    async def get_me(self) -> User:
        return self.bot

    async def get_user(self, user_id: str) -> User:
        if user_id not in self.users:
            raise NotFoundError(f"user {user_id}", status=404)
        return self.users[user_id]

    async def user_by_username(self, username: str) -> User:
        for user in self.users.values():
            if user.username == username:
                return user
        raise NotFoundError(f"user @{username}", status=404)

    async def users_by_usernames(self, names: list[str]) -> list[User]:
        return [u for u in self.users.values() if u.username in names]

    async def get_post(self, post_id: str) -> Post:
        if post_id not in self.posts:
            raise NotFoundError(f"post {post_id}", status=404)
        return self.posts[post_id]

    async def thread_after(
        self, thread_id: str, create_at: int, *, forbidden: str = ""
    ) -> AsyncIterator[list[Post]]:
        await self.thread_gate.wait()
        replies = [
            p for p in self.posts.values() if p.root_id == thread_id and p.create_at > create_at
        ]
        if replies:
            yield sorted(replies, key=lambda p: (p.create_at, p.id))

    async def channel_page(self, channel_id: str, *, page: int, per_page: int = 200) -> PostList:
        posts = [p for p in self.posts.values() if p.channel_id == channel_id]
        posts.sort(key=lambda p: -p.create_at)
        chunk = posts[page * per_page : (page + 1) * per_page]
        return PostList(order=[p.id for p in chunk], posts={p.id: p for p in chunk})

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
        if pending_post_id and pending_post_id in self._pending:
            return self._pending[pending_post_id]
        post = Post(
            id=f"p{next(self._ids):025d}",
            create_at=next(self._clock),
            user_id=self.bot.id,
            channel_id=channel_id,
            root_id=root_id,
            message=message,
            props=dict(props or {}),
            file_ids=tuple(file_ids),
        )
        self.posts[post.id] = post
        self.created.append(post)
        if pending_post_id:
            self._pending[pending_post_id] = post
        return post

    async def patch_post(
        self, post_id: str, *, message: str, props: Mapping[str, object] | None = None
    ) -> Post:
        post = await self.get_post(post_id)
        post = msgspec.structs.replace(post, message=message)
        if props is not None:
            post = msgspec.structs.replace(post, props=dict(props))
        self.posts[post_id] = post
        return post

    async def get_file_info(self, file_id: str) -> FileInfo:
        raise NotFoundError(f"file {file_id}", status=404)

    async def get_file(self, file_id: str, *, limit: int | None = None) -> bytes:
        raise NotFoundError(f"file {file_id}", status=404)

    async def upload_file(self, *, channel_id: str, name: str, data: bytes) -> FileInfo:
        return FileInfo(id=f"f{next(self._ids):025d}", name=name, size=len(data))

    async def add_reaction(self, *, user_id: str, post_id: str, emoji_name: str) -> None:
        self.reactions_of.setdefault(post_id, []).append((user_id, emoji_name))

    async def reactions(self, post_id: str) -> list[tuple[str, str]]:
        return list(self.reactions_of.get(post_id, []))

    async def typing(self, *, user_id: str, channel_id: str, parent_id: str) -> None:
        self.typings += 1

    async def call(
        self,
        what: str,
        op: Callable[[], Awaitable[T]],
        *,
        forbidden: str = "",
        recheck: Callable[[], Awaitable[T | None]] | None = None,
    ) -> T:
        return await op()

    def websocket(
        self, connection_id: str, sequence_number: int
    ) -> contextlib.AbstractAsyncContextManager[WebSocket]:
        return _NoWebSocket()


class _NoWebSocket(contextlib.AbstractAsyncContextManager["WebSocket"]):
    async def __aenter__(self) -> WebSocket:
        raise TransportError("the fake server has no WebSocket")

    async def __aexit__(self, *exc: object) -> None:
        return None
