"""The retry schedule and the circuit breaker, with a controlled draw and clock."""

from __future__ import annotations

import pytest

from delivery_svc.breaker import Breaker, State
from delivery_svc.retry import DEFAULT_SCHEDULE, max_attempts, retry_delay


@pytest.mark.parametrize(
    ("attempt", "draw", "expected"),
    [
        (1, 0.5, 60.0),  # the middle of the jitter: exactly the step
        (2, 0.5, 300.0),
        (3, 0.5, 900.0),
        (1, 0.0, 48.0),  # -20 %
        (1, 0.999999, 71.99997),  # just under +20 %
        (4, 0.5, None),  # spent: dead letter
    ],
)
def test_the_original_schedule_with_jitter(attempt: int, draw: float, expected: float | None):
    got = retry_delay(attempt, DEFAULT_SCHEDULE, draw=draw)
    assert got == (None if expected is None else pytest.approx(expected, rel=1e-6))


def test_retry_after_is_honoured_when_longer_only() -> None:
    assert retry_delay(1, draw=0.5, retry_after=120) == 120
    assert retry_delay(1, draw=0.5, retry_after=5) == 60
    assert max_attempts() == 4
    with pytest.raises(ValueError):
        retry_delay(0, draw=0.5)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_threshold_then_half_opens_and_closes() -> None:
    clock = Clock()
    b = Breaker("smtp", threshold=3, reset=30.0, clock=clock)
    for _ in range(2):
        assert b.allow()
        b.failure()
    assert b.state is State.CLOSED
    b.success()  # a success resets the run of failures
    for _ in range(3):
        assert b.allow()
        b.failure()
    assert b.state is State.OPEN and not b.allow() and b.opened == 1
    clock.now += 29.9
    assert not b.allow()
    clock.now += 0.2
    assert b.state is State.HALF_OPEN
    assert b.allow()  # one trial
    assert not b.allow()  # and only one at a time
    b.success()
    assert b.state is State.CLOSED and b.allow()


def test_a_failed_trial_opens_again_for_another_reset() -> None:
    clock = Clock()
    b = Breaker("ses", threshold=1, reset=10.0, clock=clock)
    b.failure()
    clock.now += 10
    assert b.allow()
    b.failure()
    assert b.state is State.OPEN and b.opened == 2
    clock.now += 9
    assert not b.allow()
    clock.now += 1
    assert b.allow()
    assert b.snapshot()["state"] == "half_open"
