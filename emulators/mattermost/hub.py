"""The WebSocket hub: logical connections, per-connection seq, send and dead queues, resumption.

A WebConn outlives its socket (section 1.6): while away it stays registered as inactive and
keeps queueing broadcasts, so a reconnect with its connection_id can replay or continue.
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

    from .ids import IdGenerator
    from .stats import Counters


def dumps(value: Any) -> str:
    """Go's json.Marshal: compact, raw UTF-8."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def make_broadcast(
    *,
    user_id: str = "",
    channel_id: str = "",
    omit_users: dict[str, bool] | None = None,
    sanitized: bool = False,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "omit_users": omit_users,
        "user_id": user_id,
        "channel_id": channel_id,
        "team_id": "",
        "connection_id": "",
        "omit_connection_id": "",
    }
    if sanitized:
        body["contains_sanitized_data"] = True
    return body


class SocketLike(Protocol):
    """What the hub needs from the socket currently attached to a WebConn."""

    def wake(self) -> None: ...

    def abort(self) -> None: ...


@dataclass
class Item:
    """One entry of a send queue: an event (gets a seq when written), a response or raw text."""

    kind: Literal["event", "hello", "response", "raw"]
    event: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    broadcast: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    # Broadcast events are "precomputed" (spaces after colons); hooked ones use json.Encoder.
    precomputed: bool = True
    post_id: str = ""


@dataclass
class WebConn:
    id: str
    user_id: str
    dead_queue_size: int
    sequence: int = 0  # seq of the next event written
    outbox: deque[Item] = field(default_factory=deque)
    dead: deque[tuple[int, str]] = field(default_factory=deque)
    socket: SocketLike | None = None
    inactive_since: float = 0.0
    reuse_count: int = 0

    def __repr__(self) -> str:
        state = "active" if self.socket else "inactive"
        return (
            f"<WebConn {self.id} user={self.user_id} {state} seq={self.sequence} "
            f"queued={len(self.outbox)} dead={len(self.dead)}>"
        )

    def render(self, item: Item, hello_data: dict[str, Any]) -> str:
        """Frame text for `item`; events take the next seq and enter the dead queue."""
        if item.kind in ("response", "raw"):
            return item.text
        data = {**hello_data, "connection_id": self.id} if item.kind == "hello" else item.data
        seq = self.sequence
        self.sequence += 1
        data = dict(sorted(data.items()))  # Go maps serialize with sorted keys
        if item.precomputed and item.kind == "event":
            text = (
                f'{{"event": {dumps(item.event)}, "data": {dumps(data)}, '
                f'"broadcast": {dumps(item.broadcast)}, "seq": {seq}}}'
            )
        else:
            envelope = {"event": item.event, "data": data, "broadcast": item.broadcast, "seq": seq}
            text = dumps(envelope) + "\n"
        self.dead.append((seq, text))
        while len(self.dead) > self.dead_queue_size:
            self.dead.popleft()
        return text


@dataclass
class Hub:
    ids: IdGenerator
    counters: Counters
    is_member: Callable[[str, str], bool]
    resume_window_s: float = 300.0
    send_queue_size: int = 256
    dead_queue_size: int = 128
    conns: dict[str, WebConn] = field(default_factory=dict)

    def __repr__(self) -> str:
        active = sum(1 for c in self.conns.values() if c.socket)
        return f"<Hub conns={len(self.conns)} active={active}>"

    # --- lifecycle ----------------------------------------------------------------------

    def register(self, user_id: str, socket: SocketLike) -> WebConn:
        """A fresh registration: new connection_id, hello as seq 0."""
        conn = WebConn(self.ids.new_id(), user_id, self.dead_queue_size, socket=socket)
        conn.outbox.append(self._hello(user_id))
        self.conns[conn.id] = conn
        self.counters.fresh_connections += 1
        return conn

    def resume(
        self, user_id: str, connection_id: str, sequence: int, socket: SocketLike
    ) -> WebConn:
        """Adopt an inactive connection (replay / lossless / loss) or register a fresh one."""
        self.reap()
        conn = self.conns.get(connection_id)
        if conn is None or conn.socket is not None or conn.user_id != user_id:
            return self.register(user_id, socket)
        self.counters.resumes += 1
        conn.socket = socket
        conn.reuse_count += 1
        if sequence == 0:
            # The server skips every check for sequence_number=0 and just continues.
            return conn
        seqs = [seq for seq, _ in conn.dead]
        if sequence in seqs:
            start = seqs.index(sequence)
            replay = [Item("raw", text=text) for _, text in list(conn.dead)[start:]]
            conn.outbox.extendleft(reversed(replay))
            self.counters.resumes_replayed += 1
        elif seqs and seqs[-1] == sequence - 1:
            self.counters.resumes_lossless += 1
        else:
            # Too far behind (or ahead): new identity, seq restarts with a new hello.
            conn.dead.clear()
            del self.conns[conn.id]
            conn.id = self.ids.new_id()
            self.conns[conn.id] = conn
            conn.sequence = 0
            # A hello still unsent from the first registration would now be a second one.
            conn.outbox = deque(i for i in conn.outbox if i.kind != "hello")
            conn.outbox.appendleft(self._hello(user_id))
            self.counters.resumes_lost += 1
        return conn

    def detach(self, conn: WebConn, socket: SocketLike) -> None:
        """The socket ended: keep the connection as inactive (resumable) if still owned."""
        if conn.socket is socket:
            conn.socket = None
            conn.inactive_since = time.monotonic()

    def reap(self) -> None:
        """Forget inactive connections older than the resume window (the 5-minute reaper)."""
        deadline = time.monotonic() - self.resume_window_s
        for conn in [c for c in self.conns.values() if c.socket is None]:
            if conn.inactive_since <= deadline:
                del self.conns[conn.id]

    def drop_all(self) -> int:
        """Cut every socket as a network failure would; connections stay resumable."""
        dropped = 0
        for conn in list(self.conns.values()):
            socket = conn.socket
            if socket is not None:
                self.detach(conn, socket)
                socket.abort()
                dropped += 1
        return dropped

    def forget_all(self) -> None:
        """A server restart: drop every socket and lose all resumption state."""
        self.drop_all()
        self.conns.clear()

    def active(self) -> list[WebConn]:
        return [c for c in self.conns.values() if c.socket is not None]

    # --- sending ------------------------------------------------------------------------

    def enqueue(self, conn: WebConn, item: Item) -> None:
        if len(conn.outbox) >= self.send_queue_size:
            # A full send queue (slow reader or away too long) removes the connection.
            self.counters.connections_overflowed += 1
            self.conns.pop(conn.id, None)
            if conn.socket is not None:
                socket, conn.socket = conn.socket, None
                socket.abort()
            return
        conn.outbox.append(item)
        if conn.socket is not None:
            conn.socket.wake()

    def broadcast(
        self,
        event: str,
        data: dict[str, Any],
        broadcast: dict[str, Any],
        *,
        hook: Callable[[str], dict[str, Any]] | None = None,
        post_id: str = "",
    ) -> None:
        """Queue `event` for every matching connection, active or inactive."""
        self.reap()
        omit = broadcast.get("omit_users") or {}
        for conn in list(self.conns.values()):
            if conn.user_id in omit:
                continue
            if broadcast["user_id"] and conn.user_id != broadcast["user_id"]:
                continue
            if broadcast["channel_id"] and not self.is_member(
                conn.user_id, broadcast["channel_id"]
            ):
                continue
            if event == "typing" and len(conn.outbox) >= self.send_queue_size // 2:
                continue  # typing is dropped for slow connections
            extra = hook(conn.user_id) if hook else {}
            item = Item(
                "event",
                event=event,
                data={**data, **extra},
                broadcast=broadcast,
                precomputed=not extra,
                post_id=post_id,
            )
            self.enqueue(conn, item)

    def _hello(self, user_id: str) -> Item:
        return Item(
            "hello", event="hello", broadcast=make_broadcast(user_id=user_id), precomputed=False
        )
