"""Pure pieces of the Mattermost emulator: ids, GCRA, dedup cache, hub decisions, seeding."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from emulators.mattermost import MattermostEmulator, dedup
from emulators.mattermost import hub as hub_module
from emulators.mattermost.dedup import PENDING, PendingPostCache
from emulators.mattermost.faults import RateLimiter
from emulators.mattermost.hub import Hub, Item
from emulators.mattermost.ids import ID_ALPHABET, IdGenerator, is_valid_id
from emulators.mattermost.stats import Counters

if TYPE_CHECKING:
    import pytest


class FakeTime:
    """Stands in for the ``time`` module of an emulator module: a clock moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


class FakeSocket:
    def __init__(self) -> None:
        self.aborted = False

    def wake(self) -> None:
        pass

    def abort(self) -> None:
        self.aborted = True


def make_hub(**kw: float) -> Hub:
    return Hub(IdGenerator(1), Counters(), lambda user, channel: True, **kw)  # type: ignore[arg-type]


def drain(hub: Hub, conn_id: str) -> list[dict[str, object]]:
    conn = hub.conns[conn_id]
    frames = []
    while conn.outbox:
        frames.append(json.loads(conn.render(conn.outbox.popleft(), {})))
    return frames


def test_ids_use_the_alphabet_and_seed_reproduces_them() -> None:
    """Ids are 26 chars of the NewId alphabet; one seed gives one sequence."""
    first, second = IdGenerator(3), IdGenerator(3)
    ids = [first.new_id() for _ in range(5)]
    assert ids == [second.new_id() for _ in range(5)]
    assert all(len(i) == 26 and set(i) <= set(ID_ALPHABET) and is_valid_id(i) for i in ids)
    assert not is_valid_id("A" * 26)
    assert not is_valid_id(None)


def test_seeded_emulators_share_ids() -> None:
    """Two emulators with the same seed have the same seeded ids and tokens."""
    one, two = MattermostEmulator(seed=5), MattermostEmulator(seed=5)
    assert one.bot == two.bot
    assert one.channel == two.channel
    assert one.users == two.users
    assert MattermostEmulator(seed=6).bot != one.bot


def test_gcra_allows_burst_plus_one_then_refills_at_rate() -> None:
    """throttled's GCRA: limit = burst+1 at once, then one more per 1/per_sec."""
    limiter = RateLimiter(per_sec=10, burst=2)
    decisions = [limiter.check("k", now=100.0) for _ in range(4)]
    assert [d.limited for d in decisions] == [False, False, False, True]
    assert [d.remaining for d in decisions[:3]] == [2, 1, 0]
    assert decisions[0].limit == 3
    assert 0 < decisions[3].retry_after_s <= 0.1 + 1e-9
    assert not limiter.check("k", now=100.1 + 1e-6).limited
    assert not limiter.check("other", now=100.0).limited


def test_dedup_cache_states_and_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys go pending → created, are forgotten on failure, and expire after the TTL."""
    clock = FakeTime()
    monkeypatch.setattr(dedup, "time", clock)
    cache = PendingPostCache(ttl_s=0.05)
    cache.mark_pending("a")
    assert cache.lookup("a") == PENDING
    cache.mark_created("a", "post1")
    assert cache.lookup("a") == "post1"
    cache.forget("a")
    assert cache.lookup("a") is None
    cache.mark_created("b", "post2")
    clock.now += 0.04
    assert cache.lookup("b") == "post2"
    clock.now += 0.02
    assert cache.lookup("b") is None


def test_hub_replay_lossless_and_loss_decisions() -> None:
    """resume() replays from the dead queue, continues losslessly, or re-hellos when behind."""
    hub = make_hub(dead_queue_size=3)
    socket = FakeSocket()
    conn = hub.register("u1", socket)
    conn_id = conn.id
    for i in range(4):
        conn.outbox.append(Item("event", event="posted", data={"n": i}))
    frames = drain(hub, conn_id)
    assert [f["seq"] for f in frames] == [0, 1, 2, 3, 4]
    hub.detach(conn, socket)
    # seq 3 is in the dead queue (2, 3, 4): replay 3 and 4
    again = hub.resume("u1", conn_id, 3, FakeSocket())
    assert [f["seq"] for f in drain(hub, conn_id)] == [3, 4]
    hub.detach(again, again.socket)  # type: ignore[arg-type]
    hub.resume("u1", conn_id, 5, FakeSocket())  # newest is 4: lossless
    assert drain(hub, conn_id) == []
    hub.detach(again, again.socket)  # type: ignore[arg-type]
    behind = hub.resume("u1", conn_id, 1, FakeSocket())
    assert behind.id != conn_id
    hello = drain(hub, behind.id)
    assert hello[0]["event"] == "hello"
    assert hello[0]["seq"] == 0


def test_hub_overflow_removes_and_aborts_the_connection() -> None:
    """A full send queue removes the connection and aborts its socket."""
    hub = make_hub(send_queue_size=2)
    socket = FakeSocket()
    conn = hub.register("u1", socket)  # the hello is item 1
    hub.enqueue(conn, Item("event", event="posted"))
    hub.enqueue(conn, Item("event", event="posted"))
    assert conn.id not in hub.conns
    assert socket.aborted


def test_hub_reaps_inactive_connections_after_the_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Inactive connections older than resume_window_s are forgotten."""
    clock = FakeTime()
    monkeypatch.setattr(hub_module, "time", clock)
    the_hub = make_hub(resume_window_s=0.01)
    socket = FakeSocket()
    conn = the_hub.register("u1", socket)
    the_hub.detach(conn, socket)
    clock.now += 0.005
    the_hub.reap()
    assert conn.id in the_hub.conns
    clock.now += 0.01
    the_hub.reap()
    assert the_hub.conns == {}
