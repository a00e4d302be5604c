"""The SQLite journal: once-only inserts, ordering, committed transitions, recovery, meta."""

from __future__ import annotations

import os
import stat
import tempfile
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from session_worker.errors import JournalError, TransitionError
from session_worker.journal import MAX_STREAK, Binding, Journal
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


def by(user_id: str, post_id: str, create_at: int) -> PromptRow:
    return PromptRow(
        post_id=post_id, create_at=create_at, user_id=user_id, username=user_id, text="hi",
        gateway_id="g",
    )  # fmt: skip


def run_all(journal: Journal) -> list[str]:
    """Run the queue to the end (each turn answered at once); the post ids in turn order."""
    order: list[str] = []
    while (head := journal.next_queued()) is not None:
        journal.apply(head.post_id, Start())
        journal.apply(head.post_id, Finish("ok", is_error=False))
        order.append(head.post_id)
    return order


def test_one_user_cannot_bury_another(tmp_path: Path) -> None:
    """80 posts of alice made before bob's one: bob's runs after MAX_STREAK of alice's, not
    81st."""
    with Journal(tmp_path) as journal:
        for i in range(80):
            journal.insert(by("alice", f"a{i:02}", 1000 + i))
        journal.insert(by("bob", "b0", 1100))
        order = run_all(journal)
    assert order.index("b0") == MAX_STREAK
    assert [p for p in order if p.startswith("a")] == [f"a{i:02}" for i in range(80)]


def test_fair_order_survives_a_reopen(tmp_path: Path) -> None:
    """Who was served last is in the journal: a restarted worker picks the same next turn."""
    with Journal(tmp_path) as journal:
        for i in range(12):
            journal.insert(by("alice", f"a{i:02}", 1000 + i))
        journal.insert(by("bob", "b0", 1100))
        journal.insert(by("bob", "b1", 1101))
        first = run_all_but_stop_after(journal, MAX_STREAK - 1)
    with Journal(tmp_path) as journal:
        order = first + run_all(journal)
    alice = [f"a{i:02}" for i in range(12)]
    streak = MAX_STREAK
    assert order == [*alice[:streak], "b0", *alice[streak : 2 * streak], "b1", *alice[2 * streak :]]


def run_all_but_stop_after(journal: Journal, turns: int) -> list[str]:
    order: list[str] = []
    for _ in range(turns):
        head = journal.next_queued()
        assert head is not None
        journal.apply(head.post_id, Start())
        journal.apply(head.post_id, Finish("ok", is_error=False))
        order.append(head.post_id)
    return order


def test_one_user_or_users_taking_turns_keep_the_order_of_posts(tmp_path: Path) -> None:
    """Alone, or alternating with others, the turns are exactly in the order of the posts."""
    with Journal(tmp_path / "one") as journal:
        for post_id, create_at in [("c", 20), ("b", 10), ("a", 10), ("d", 5)]:
            journal.insert(by("alice", post_id, create_at))
        assert run_all(journal) == ["d", "a", "b", "c"]
    with Journal(tmp_path / "turns") as journal:
        users = ["alice", "bob", "carol"]
        posts = [(users[i % 3], f"p{i:02}", 100 + i) for i in range(12)]
        for user, post_id, create_at in reversed(posts):
            journal.insert(by(user, post_id, create_at))
        assert run_all(journal) == [p for _, p, _ in posts]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 50)), max_size=30))
def test_each_users_posts_run_in_their_order(posts: list[tuple[str, int]]) -> None:
    """Whatever the mix, every user's own prompts run in (create_at, post_id) order, each once."""
    with tempfile.TemporaryDirectory() as tmp, Journal(tmp) as journal:
        for i, (user, create_at) in enumerate(posts):
            journal.insert(by(user, f"{user}{i:03}", create_at))
        order = run_all(journal)
        assert sorted(order) == sorted(f"{u}{i:03}" for i, (u, _) in enumerate(posts))
        for user in "abc":
            mine = [p for p in order if p.startswith(user)]
            keys = [(posts[int(p[1:])][1], p) for p in mine]
            assert keys == sorted(keys)


def test_refused_prompt_is_stored_answered_once(tmp_path: Path) -> None:
    """A refusal is an answer like any other: stored once, never run, re-sent until delivered."""
    with Journal(tmp_path) as journal:
        assert journal.insert(by("alice", "p1", 1), refusal="too many")
        assert not journal.insert(by("alice", "p1", 1))
        stored = journal.get("p1")
        assert stored is not None
        assert (stored.state, stored.answer, stored.is_error) == (State.ANSWERED, "too many", True)
        assert journal.next_queued() is None
        journal.insert(by("alice", "p2", 2))
        journal.insert(by("bob", "p3", 3))
        assert (journal.queued_of("alice"), journal.queued_of("bob")) == (1, 1)
        assert journal.known("p1")
        assert not journal.known("p9")
