"""Small, bounded aiohttp clients for driving the emulator from tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp

from .ids import is_valid_id
from .server import open_emulator

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Coroutine, Mapping

    from multidict import CIMultiDictProxy

    from .server import MattermostEmulator


def run(coro: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
    """asyncio.run with a deadline, for sync test functions."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


@dataclass
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


class RestClient:
    """REST calls as one user; `token=None` sends no credentials."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str | None) -> None:
        self.session = session
        self.url = url
        self.token = token

    def _headers(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        headers.update(extra or {})
        return headers

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
        raw: bytes | None = None,
        timeout: float = 10.0,
    ) -> Reply:
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        async with self.session.request(
            method,
            self.url + path,
            data=data,
            headers=self._headers(headers),
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            reply = Reply(response.status, response.headers, await response.text())
        if path.startswith("/api/"):
            # Every API response, success or error, carries a 26-char X-Request-Id.
            request_id = reply.headers.get("X-Request-Id", "")
            assert is_valid_id(request_id), f"bad X-Request-Id {request_id!r} on {path}"
        return reply

    async def get(self, path: str, **kw: Any) -> Reply:
        return await self.call("GET", path, **kw)

    async def post(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return await self.call("POST", path, body, **kw)

    async def put(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return await self.call("PUT", path, body, **kw)

    async def delete(self, path: str, **kw: Any) -> Reply:
        return await self.call("DELETE", path, **kw)


class WsProbe:
    """One client socket with bounded reads; frames are parsed JSON objects."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    @classmethod
    async def connect(
        cls,
        session: aiohttp.ClientSession,
        url: str,
        token: str | None,
        query: str = "",
        *,
        autoping: bool = True,
    ) -> WsProbe:
        ws_url = url.replace("http://", "ws://", 1) + "/api/v4/websocket" + query
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        ws = await session.ws_connect(
            ws_url, headers=headers, autoping=autoping, timeout=aiohttp.ClientWSTimeout(ws_close=2)
        )
        return cls(ws)

    async def raw(self, timeout: float = 2.0) -> aiohttp.WSMessage:
        return await self.ws.receive(timeout=timeout)

    async def next(self, timeout: float = 2.0) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=timeout)
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise AssertionError(f"expected a text frame, got {msg.type!r} {msg.data!r}")
        frame = json.loads(msg.data)
        assert isinstance(frame, dict)
        return frame

    async def next_event(self, name: str, timeout: float = 2.0) -> dict[str, Any]:
        """Skip frames until event `name` (bounded by `timeout` overall)."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.next(timeout)
                if frame.get("event") == name:
                    return frame

    async def silent(self, timeout: float = 0.2) -> bool:
        """True when nothing arrives for `timeout` seconds."""
        try:
            msg = await self.ws.receive(timeout=timeout)
        except TimeoutError:
            return True
        raise AssertionError(f"expected silence, got {msg.type!r} {msg.data!r}")

    async def closed(self, timeout: float = 2.0) -> bool:
        """True once the server ends the socket (any close/error) within `timeout`."""
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.ws.receive()
                if msg.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.CLOSING,
                    aiohttp.WSMsgType.ERROR,
                ):
                    return True

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(frame))

    async def close(self) -> None:
        await self.ws.close()


@dataclass
class Harness:
    """An emulator plus one client session; `rest`/`ws` act as a seeded user."""

    mm: MattermostEmulator
    session: aiohttp.ClientSession

    def token(self, username: str) -> str:
        if username == self.mm.bot.username:
            return self.mm.bot.token
        return self.mm.users[username].token

    def rest(self, username: str | None = "claudebot") -> RestClient:
        token = self.token(username) if username else None
        return RestClient(self.session, self.mm.url, token)

    async def ws(self, username: str | None = "claudebot", query: str = "", **kw: Any) -> WsProbe:
        token = self.token(username) if username else None
        return await WsProbe.connect(self.session, self.mm.url, token, query, **kw)


@contextlib.asynccontextmanager
async def open_harness(**options: Any) -> AsyncIterator[Harness]:
    async with open_emulator(**options) as mm, aiohttp.ClientSession() as session:
        yield Harness(mm, session)
