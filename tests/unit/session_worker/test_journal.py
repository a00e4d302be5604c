"""The SQLite journal: once-only inserts, ordering, committed transitions, recovery, meta."""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

import pytest

from session_worker.errors import JournalError, TransitionError
from session_worker.journal import Binding, Journal
from session_worker.states import Deliver, Finish, PromptRow, Requeue, Start, State

if TYPE_CHECKING:
    from pathlib import Path


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def row(post_id: str, create_at: int, text: str = "hi") -> PromptRow:
    return PromptRow(
        post_id=post_id, create_at=create_at, user_id="u", username="a", text=text, gateway_id="g"
    )


def test_insert_is_once_per_post_id(tmp_path: Path) -> None:
    """A repeated post id is not inserted again and does not change the stored text."""
    with Journal(tmp_path) as journal:
        assert journal.insert(row("p1", 5, "first"))
        assert not journal.insert(row("p1", 5, "edited"))
        stored = journal.get("p1")
        assert stored is not None
        assert (stored.text, stored.state) == ("first", State.QUEUED)


def test_queue_order_is_create_at_then_post_id(tmp_path: Path) -> None:
    """Prompts run in (create_at, post_id) order whatever order they arrived in."""
    with Journal(tmp_path) as journal:
        for post_id, create_at in [("c", 20), ("b", 10), ("a", 10), ("d", 5)]:
            journal.insert(row(post_id, create_at))
        assert [r.post_id for r in journal.rows(State.QUEUED)] == ["d", "a", "b", "c"]
        head = journal.next_queued()
        assert head is not None
        assert head.post_id == "d"
        journal.apply("d", Start())
        head = journal.next_queued()
        assert head is not None
        assert head.post_id == "a"
        assert journal.count(State.QUEUED, State.RUNNING) == 4
        assert journal.high_water() == 20


def test_transitions_are_committed_and_survive_reopen(tmp_path: Path) -> None:
    """Every applied transition is on disk when apply returns."""
    with Journal(tmp_path) as journal:
        journal.insert(row("p1", 1))
        journal.apply("p1", Start())
        journal.apply("p1", Finish("answer", is_error=True))
    with Journal(tmp_path) as journal:
        stored = journal.get("p1")
        assert stored is not None
        assert (stored.state, stored.answer, stored.is_error, stored.tries) == (
            State.ANSWERED, "answer", True, 1,
        )  # fmt: skip
        journal.apply("p1", Deliver(("r1", "r2")))
    with Journal(tmp_path) as journal:
        stored = journal.get("p1")
        assert stored is not None
        assert stored.reply_ids == ("r1", "r2")


def test_refused_transition_changes_nothing(tmp_path: Path) -> None:
    """A forbidden event raises and leaves the row as it was; unknown ids raise too."""
    with Journal(tmp_path) as journal:
        journal.insert(row("p1", 1))
        with pytest.raises(TransitionError):
            journal.apply("p1", Deliver(("r",)))
        stored = journal.get("p1")
        assert stored is not None
        assert stored.state is State.QUEUED
        with pytest.raises(JournalError):
            journal.apply("nope", Start())


def test_recover_requeues_running_rows(tmp_path: Path) -> None:
    """After a crash, running rows are queued again with their tries; answered stay."""
    with Journal(tmp_path) as journal:
        for post_id in ("p1", "p2"):
            journal.insert(row(post_id, 1))
            journal.apply(post_id, Start())
        journal.apply("p2", Finish("done", is_error=False))
    with Journal(tmp_path) as journal:
        recovered = journal.recover()
        assert [(r.post_id, r.state, r.tries) for r in recovered] == [("p1", State.QUEUED, 1)]
        assert [r.post_id for r in journal.rows(State.ANSWERED)] == ["p2"]
        journal.apply("p1", Start())
        journal.apply("p1", Requeue(refund=True))
        again = journal.get("p1")
        assert again is not None
        assert again.tries == 1


def test_binding_is_kept_forever_and_token_is_stable(tmp_path: Path) -> None:
    """The first bound thread wins; the bind token is generated once and kept."""
    with Journal(tmp_path) as journal:
        first = journal.binding()
        assert first.thread_id == ""
        assert len(first.bind_token) >= 16
        assert journal.bind("t1", "c1").thread_id == "t1"
        assert journal.bind("t2", "c2").thread_id == "t1"
        journal.session_id = "sid-1"
    with Journal(tmp_path) as journal:
        binding = journal.binding()
        assert (binding.thread_id, binding.channel_id) == ("t1", "c1")
        assert binding.bind_token == first.bind_token
        assert journal.session_id == "sid-1"
        journal.session_id = None
        assert journal.session_id is None


def test_a_binding_keeps_its_floor_until_it_is_replaced(tmp_path: Path) -> None:
    """The floor (the thread's history ends there) comes with a new binding only: a repeat
    of the same thread, or another thread not configured, leaves it as it was."""
    with Journal(tmp_path) as journal:
        assert journal.binding().floor == 0
        assert journal.bind("t1", "c1", floor=100).floor == 100
        assert journal.bind("t1", "c1", replace=True, floor=900).floor == 100
        assert journal.bind("t2", "c2", floor=900).floor == 100
        assert journal.bind("t2", "c2", replace=True, floor=2**64).floor == 2**53
    with Journal(tmp_path) as journal:
        assert journal.binding().floor == 2**53


def test_configured_thread_replaces_the_binding(tmp_path: Path) -> None:
    """replace=True (an operator-configured thread) rebinds; the token stays the same."""
    with Journal(tmp_path) as journal:
        token = journal.binding().bind_token
        assert journal.bind("t1", "c1", replace=True).thread_id == "t1"
        assert journal.bind("t2", "c2").thread_id == "t1"
        assert journal.bind("t2", "c2", replace=True) == Binding("t2", "c2", token)
        with pytest.raises(JournalError):
            journal.bind("", "c3", replace=True)
    with Journal(tmp_path) as journal:
        assert journal.binding() == Binding("t2", "c2", token)


def test_wal_mode(tmp_path: Path) -> None:
    """The journal runs in WAL mode so that a crash keeps every commit."""
    with Journal(tmp_path) as journal:
        (mode,) = journal._db.execute("PRAGMA journal_mode").fetchone()
        assert mode == "wal"


def test_journal_files_are_private(tmp_path: Path) -> None:
    """worker.sqlite and its -wal/-shm files are 0600 whatever the umask, old ones tightened."""
    old_umask = os.umask(0o022)
    try:
        with Journal(tmp_path) as journal:
            journal.insert(row("p1", 1))
            names = ["worker.sqlite", "worker.sqlite-wal", "worker.sqlite-shm"]
            assert {n: mode(tmp_path / n) for n in names} == dict.fromkeys(names, 0o600)
        (tmp_path / "worker.sqlite").chmod(0o644)
        with Journal(tmp_path):
            assert mode(tmp_path / "worker.sqlite") == 0o600
    finally:
        os.umask(old_umask)


def test_busy_timeout_stays_short(tmp_path: Path) -> None:
    """A locked database blocks the event loop: wait 2 s at most, not the heartbeat limit."""
    with Journal(tmp_path) as journal:
        (timeout_ms,) = journal._db.execute("PRAGMA busy_timeout").fetchone()
        assert timeout_ms == 2000
