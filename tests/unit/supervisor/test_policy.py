"""The restart policy over a matrix of exit causes and timings, with an injected clock."""

from __future__ import annotations

import random

import pytest

from supervisor.policy import ChildHistory, GiveUp, Restart, RestartPolicy

NO_JITTER = RestartPolicy(jitter=0.0)


def rng() -> random.Random:
    return random.Random(1)


@pytest.mark.parametrize("exit_code", [-9, -15, 0, 1, 2, 139, None])
def test_first_crash_restarts_quickly_whatever_the_cause(exit_code: int | None) -> None:
    """One death, whatever its exit status, is restarted after the base delay."""
    history = ChildHistory()
    decision = history.decide(NO_JITTER, now=100.0, started_at=99.0, exit_code=exit_code, rng=rng())
    assert decision == Restart(delay=0.1, attempt=1)
    assert history.last_exit == exit_code


def test_crash_loop_backs_off_exponentially() -> None:
    """Quick successive deaths get 0.1, 0.2, 0.4, 0.8 s delays."""
    policy = RestartPolicy(jitter=0.0, max_restarts=100)
    history = ChildHistory()
    now, delays = 0.0, []
    for _ in range(4):
        decision = history.decide(policy, now=now, started_at=now - 0.5, exit_code=1, rng=rng())
        assert isinstance(decision, Restart)
        delays.append(round(decision.delay, 3))
        now += decision.delay + 0.5
    assert delays == [0.1, 0.2, 0.4, 0.8]


def test_backoff_resets_after_a_stable_run() -> None:
    """A child that ran longer than stable_after restarts at the base delay again."""
    policy = RestartPolicy(jitter=0.0, max_restarts=100)
    history = ChildHistory()
    for i in range(3):
        history.decide(policy, now=float(i), started_at=i - 0.1, exit_code=1, rng=rng())
    decision = history.decide(policy, now=100.0, started_at=50.0, exit_code=-9, rng=rng())
    assert decision == Restart(delay=0.1, attempt=1)


def test_intensity_exceeded_gives_up() -> None:
    """The sixth restart within 60 s is refused (default 5 in 60 s)."""
    history = ChildHistory()
    decisions = [
        history.decide(NO_JITTER, now=float(i), started_at=i - 0.2, exit_code=3, rng=rng())
        for i in range(6)
    ]
    assert all(isinstance(d, Restart) for d in decisions[:5])
    assert decisions[5] == GiveUp(restarts=6, period=60.0)


def test_old_restarts_fall_out_of_the_window() -> None:
    """Restarts older than the period do not count toward the intensity."""
    history = ChildHistory()
    for i in range(5):
        history.decide(NO_JITTER, now=float(i), started_at=i - 0.2, exit_code=1, rng=rng())
    decision = history.decide(NO_JITTER, now=70.0, started_at=69.0, exit_code=1, rng=rng())
    assert isinstance(decision, Restart)


def test_jitter_stays_within_bounds() -> None:
    """Jitter moves the delay by at most the configured fraction."""
    policy = RestartPolicy(jitter=0.2, max_restarts=1000)
    seen = set()
    generator = random.Random(7)
    for i in range(200):
        history = ChildHistory()
        d = history.decide(policy, now=float(i), started_at=i - 0.1, exit_code=1, rng=generator)
        assert isinstance(d, Restart)
        assert 0.08 <= d.delay <= 0.12
        seen.add(round(d.delay, 4))
    assert len(seen) > 10


def test_deaths_after_a_stable_run_never_exhaust_the_intensity() -> None:
    """A child killed many times, each after running longer than stable_after (3 s), is
    always restarted after the base delay: only quick deaths count toward the limit, and the
    backoff does not climb for a process killed while it worked."""
    history = ChildHistory()
    for i in range(20):
        now = 4.0 * (i + 1)
        decision = history.decide(NO_JITTER, now=now, started_at=now - 3.5, exit_code=-9, rng=rng())
        assert decision == Restart(delay=0.1, attempt=1)


def test_custom_intensity() -> None:
    """max_restarts and period are honoured (here 2 in 10 s)."""
    policy = RestartPolicy(jitter=0.0, max_restarts=2, period=10.0)
    history = ChildHistory()
    assert isinstance(history.decide(policy, now=0, started_at=0, exit_code=1, rng=rng()), Restart)
    assert isinstance(history.decide(policy, now=1, started_at=1, exit_code=1, rng=rng()), Restart)
    assert isinstance(history.decide(policy, now=2, started_at=2, exit_code=1, rng=rng()), GiveUp)
    assert history.total == 2
