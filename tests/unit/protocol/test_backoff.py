"""The one backoff rule: exponential to a cap, jitter within its bounds, no overflow."""

from __future__ import annotations

import pytest

from protocol.backoff import Backoff, backoff_delay


def test_delays_double_to_the_cap() -> None:
    delays = [backoff_delay(n, initial=0.1, cap=1.0) for n in range(7)]
    assert [round(d, 3) for d in delays] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]


def test_another_factor() -> None:
    assert backoff_delay(2, initial=1.0, cap=100.0, factor=3.0) == 9.0


@pytest.mark.parametrize(("rand", "expected"), [(0.0, 0.8), (0.5, 1.0), (0.999999, 1.2)])
def test_jitter_stays_within_its_bounds(rand: float, expected: float) -> None:
    delay = backoff_delay(0, initial=1.0, cap=10.0, jitter=0.2, rand=rand)
    assert delay == pytest.approx(expected, abs=1e-5)


def test_no_overflow_however_many_attempts() -> None:
    assert backoff_delay(10**9, initial=0.5, cap=30.0) == 30.0


def test_the_counter_grows_and_resets() -> None:
    backoff = Backoff(initial=1.0, cap=4.0, rng=lambda: 0.5)
    assert [backoff.next() for _ in range(4)] == [1.0, 2.0, 4.0, 4.0]
    backoff.reset()
    assert backoff.next() == 1.0
