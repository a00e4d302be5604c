"""The worker's only durable store: ``<state dir>/worker.sqlite`` (WAL).

Every accepted prompt is one row keyed by its post id; its state changes go through
:func:`session_worker.states.transition`, and every method commits before it returns, so
the caller may acknowledge right after. ``meta`` holds the bound thread, the bind token, the
claude session id, whether the next answer must say that the earlier context was lost, and
which user was given the last turns and how many in a row (``served.user``,
``served.streak``): the fair choice of the next turn is made from the journal alone, so it
survives a restart.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from session_worker.approvals import Approval
from session_worker.errors import JournalError
from session_worker.states import PromptEvent, PromptRow, Recover, Start, State, transition

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["MAX_STREAK", "Binding", "Journal"]

MAX_STREAK = 5  # turns in a row one user may have while another user waits

_SCHEMA = """
CREATE TABLE IF NOT EXISTS prompts (
    post_id    TEXT PRIMARY KEY,
    create_at  INTEGER NOT NULL,
    user_id    TEXT NOT NULL,
    username   TEXT NOT NULL,
    text       TEXT NOT NULL,
    gateway_id TEXT NOT NULL,
    state      TEXT NOT NULL,
    tries      INTEGER NOT NULL DEFAULT 0,
    answer     TEXT,
    is_error   INTEGER NOT NULL DEFAULT 0,
    reply_ids  TEXT NOT NULL DEFAULT '[]',
    accepted_at REAL NOT NULL,
    updated_at  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS prompts_by_state ON prompts (state, create_at, post_id);
CREATE INDEX IF NOT EXISTS prompts_by_user ON prompts (state, user_id, create_at, post_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS approvals (
    request_id TEXT PRIMARY KEY,
    post_id    TEXT NOT NULL,
    state      TEXT NOT NULL,
    shown      TEXT NOT NULL DEFAULT '',
    data       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS approvals_by_state ON approvals (state);
"""

_COLUMNS = (
    "post_id, create_at, user_id, username, text, gateway_id, state, tries, answer, "
    "is_error, reply_ids"
)


# How long a statement waits for a lock held by another connection. The worker is the only
# writer (worker.lock), and this wait blocks the event loop: keep it well under the
# supervisor's heartbeat limit.
BUSY_TIMEOUT = 2.0

_ids = msgspec.json.Decoder(tuple[str, ...])
_approval = msgspec.json.Decoder(Approval)
_json = msgspec.json.Encoder()


class Binding(msgspec.Struct, frozen=True):
    """The thread this worker serves ("" while none is bound) and the token kept forever."""

    thread_id: str
    channel_id: str
    bind_token: str
    floor: int = 0  # posts of the thread made at or before this create_at (ms) are history


def _row(values: tuple[object, ...]) -> PromptRow:
    (post_id, create_at, user_id, username, text, gateway_id, state, tries, answer, is_error,
     reply_ids) = values  # fmt: skip
    return PromptRow(
        post_id=str(post_id),
        create_at=int(str(create_at)),
        user_id=str(user_id),
        username=str(username),
        text=str(text),
        gateway_id=str(gateway_id),
        state=State(str(state)),
        tries=int(str(tries)),
        answer=None if answer is None else str(answer),
        is_error=bool(is_error),
        reply_ids=_ids.decode(str(reply_ids)),
    )


def _private(path: Path) -> None:
    """Create the database file 0600 before SQLite opens it, and tighten existing files.

    SQLite gives the -wal and -shm files the mode of the database file, so they follow.
    """
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if stat.S_IMODE(name.stat().st_mode) != 0o600:
                name.chmod(0o600)
        except FileNotFoundError:
            continue


class Journal:
    """SQLite access; one connection, used from the event loop thread only."""

    def __init__(self, state_dir: Path | str) -> None:
        path = Path(state_dir) / "worker.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = path
        _private(path)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so "committed" is explicit.
        self._db = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a process crash (SIGKILL) with every commit kept; only a
        # power loss may drop the last transactions.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        if self.meta("bind_token") is None:
            self.set_meta("bind_token", secrets.token_hex(16))

    # --- meta ---------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str | None) -> None:
        if value is None:
            self._db.execute("DELETE FROM meta WHERE key = ?", (key,))
        else:
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    @property
    def session_id(self) -> str | None:
        return self.meta("session_id")

    @session_id.setter
    def session_id(self, value: str | None) -> None:
        self.set_meta("session_id", value)

    def binding(self) -> Binding:
        return Binding(
            thread_id=self.meta("thread_id") or "",
            channel_id=self.meta("channel_id") or "",
            bind_token=self.meta("bind_token") or "",
            floor=int(self.meta("floor") or 0),
        )

    def bind(
        self, thread_id: str, channel_id: str, *, replace: bool = False, floor: int = 0
    ) -> Binding:
        """Keep the first binding, unless ``replace`` (the operator configured this thread);
        return the binding actually in force. A new binding keeps ``floor``: the thread's
        posts up to that create_at are its history, never run."""
        if not thread_id:
            raise JournalError("cannot bind an empty thread id")
        current = self.binding()
        if current.thread_id and (not replace or current.thread_id == thread_id):
            return current
        with self._transaction():
            self.set_meta("thread_id", thread_id)
            self.set_meta("channel_id", channel_id)
            self.set_meta("bound_at", str(time.time()))
            self.set_meta("floor", str(min(max(0, floor), 2**53)))
        return self.binding()

    # --- prompts ------------------------------------------------------------------------

    def insert(self, row: PromptRow, *, refusal: str | None = None) -> bool:
        """Store a new prompt as queued; False (and nothing changed) if the post id is known.

        With ``refusal`` the prompt is stored already answered with that text (it will not
        run): the refusal then travels, and is posted once, like any answer.
        """
        now = time.time()
        state, answer = (State.QUEUED, None) if refusal is None else (State.ANSWERED, refusal)
        cursor = self._db.execute(
            f"INSERT OR IGNORE INTO prompts ({_COLUMNS}, accepted_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.post_id, row.create_at, row.user_id, row.username, row.text,
                row.gateway_id, state.value, 0, answer, int(refusal is not None), "[]", now, now,
            ),
        )  # fmt: skip
        return cursor.rowcount == 1

    def known(self, post_id: str) -> bool:
        return (
            self._db.execute("SELECT 1 FROM prompts WHERE post_id = ?", (post_id,)).fetchone()
            is not None
        )

    def queued_of(self, user_id: str) -> int:
        """How many prompts of this user wait for their turn (the running one not counted)."""
        (n,) = self._db.execute(
            "SELECT COUNT(*) FROM prompts WHERE state = ? AND user_id = ?",
            (State.QUEUED.value, user_id),
        ).fetchone()
        return int(n)

    def insert_answered(self, row: PromptRow, answer: str, *, is_error: bool = False) -> bool:
        """Store a post answered at once (a command, ``!file``): never queued, so never run by
        claude; False (and nothing changed) if the post id is known."""
        now = time.time()
        cursor = self._db.execute(
            f"INSERT OR IGNORE INTO prompts ({_COLUMNS}, accepted_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.post_id, row.create_at, row.user_id, row.username, row.text,
                row.gateway_id, State.ANSWERED.value, 0, answer, int(is_error), "[]", now, now,
            ),
        )  # fmt: skip
        return cursor.rowcount == 1

    def transaction(self) -> _Transaction:
        """One atomic unit of several writes (a command's effects and its journal row)."""
        return _Transaction(self._db)

    # --- approvals ----------------------------------------------------------------------

    def put_approval(self, approval: Approval) -> None:
        """Insert or update one approval request (committed on return)."""
        self._db.execute(
            "INSERT INTO approvals (request_id, post_id, state, shown, data) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (request_id) DO UPDATE SET "
            "state = excluded.state, shown = excluded.shown, data = excluded.data",
            (approval.request_id, approval.post_id, approval.state, approval.shown,
             _json.encode(approval).decode()),
        )  # fmt: skip

    def approval(self, request_id: str) -> Approval | None:
        row = self._db.execute(
            "SELECT data FROM approvals WHERE request_id = ?", (request_id,)
        ).fetchone()
        return None if row is None else _approval.decode(str(row[0]))

    def approvals(
        self, *, pending_only: bool = False, unshown_only: bool = False
    ) -> list[Approval]:
        """Approvals oldest first; only pending ones, or only those a gateway has not yet
        confirmed in their current state."""
        where = "WHERE state = 'pending'" if pending_only else ""
        if unshown_only:
            where += " AND state != shown" if where else "WHERE state != shown"
        rows = self._db.execute(f"SELECT data FROM approvals {where} ORDER BY rowid").fetchall()
        return [_approval.decode(str(r[0])) for r in rows]

    def get(self, post_id: str) -> PromptRow | None:
        values = self._db.execute(
            f"SELECT {_COLUMNS} FROM prompts WHERE post_id = ?", (post_id,)
        ).fetchone()
        return None if values is None else _row(values)

    def apply(self, post_id: str, event: PromptEvent) -> PromptRow:
        """Apply one transition and commit it; raises TransitionError/JournalError."""
        with self._transaction():
            row = self.get(post_id)
            if row is None:
                raise JournalError(f"no prompt {post_id} in the journal")
            new = transition(row, event)
            if new != row:
                self._store(new)
            if isinstance(event, Start):
                self._served(row.user_id)
        return new

    def _served(self, user_id: str) -> None:
        """Record that ``user_id`` was just given a turn (inside the Start's transaction)."""
        streak = int(self.meta("served.streak") or 0)
        same = self.meta("served.user") == user_id
        self.set_meta("served.user", user_id)
        self.set_meta("served.streak", str(streak + 1 if same else 1))

    def recover(self) -> list[PromptRow]:
        """At start: rows a dead worker left running are queued again; returns those rows."""
        recovered: list[PromptRow] = []
        with self._transaction():
            for row in self.rows(State.RUNNING):
                new = transition(row, Recover())
                self._store(new)
                recovered.append(new)
        return recovered

    def rows(self, *states: State) -> list[PromptRow]:
        """Rows in these states, in (create_at, post_id) order."""
        marks = ", ".join("?" for _ in states)
        cursor = self._db.execute(
            f"SELECT {_COLUMNS} FROM prompts WHERE state IN ({marks}) ORDER BY create_at, post_id",
            tuple(s.value for s in states),
        )
        return [_row(v) for v in cursor.fetchall()]

    def next_queued(self) -> PromptRow | None:
        """The prompt to run next: the oldest queued, in (create_at, post_id) order, unless
        its user has just had :data:`MAX_STREAK` turns in a row while another user waits;
        then that other user's oldest prompt goes first.

        So the turns follow the order of the posts (the contract), and a user who posts
        eighty at once delays another user's one post by at most MAX_STREAK turns, not by
        eighty. Each user's own prompts always run in their order.
        """
        oldest = self._first_queued("", ())
        if oldest is None:
            return None
        last = self.meta("served.user")
        if last != oldest.user_id or int(self.meta("served.streak") or 0) < MAX_STREAK:
            return oldest
        return self._first_queued("AND user_id != ?", (last,)) or oldest

    def _first_queued(self, where: str, args: tuple[str, ...]) -> PromptRow | None:
        values = self._db.execute(
            f"SELECT {_COLUMNS} FROM prompts WHERE state = ? {where} "
            "ORDER BY create_at, post_id LIMIT 1",
            (State.QUEUED.value, *args),
        ).fetchone()
        return None if values is None else _row(values)

    def count(self, *states: State) -> int:
        marks = ", ".join("?" for _ in states)
        (n,) = self._db.execute(
            f"SELECT COUNT(*) FROM prompts WHERE state IN ({marks})",
            tuple(s.value for s in states),
        ).fetchone()
        return int(n)

    def high_water(self) -> int:
        """The newest create_at (ms) in the journal, 0 when empty: where catch-up starts."""
        (value,) = self._db.execute("SELECT MAX(create_at) FROM prompts").fetchone()
        return int(value or 0)

    def _store(self, row: PromptRow) -> None:
        self._db.execute(
            "UPDATE prompts SET state = ?, tries = ?, answer = ?, is_error = ?, reply_ids = ?, "
            "updated_at = ? WHERE post_id = ?",
            (
                row.state.value, row.tries, row.answer, int(row.is_error),
                _json.encode(row.reply_ids).decode(), time.time(), row.post_id,
            ),
        )  # fmt: skip

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Journal {self.path}>"


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
