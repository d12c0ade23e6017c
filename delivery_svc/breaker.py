"""A circuit breaker per provider: closed → open → half-open → closed.

* **closed**: calls go through; ``threshold`` failures in a row open it.
* **open**: calls are refused (the caller fails over, or retries later) for ``reset``
  seconds.
* **half-open**: after ``reset``, one trial call at a time goes through; its success
  closes the breaker, its failure opens it again for another ``reset``.

Only failures that say something about the provider count (timeouts, 5xx, connection
errors — transient ones); a refused address is the message's fault, not the provider's.
The clock is given, so tests drive it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from notify_core.config import BREAKER_RESET, BREAKER_THRESHOLD


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class Breaker:
    name: str
    threshold: int = BREAKER_THRESHOLD.default
    reset: float = BREAKER_RESET.default
    clock: Callable[[], float] = time.monotonic
    _state: State = State.CLOSED
    _failures: int = 0
    _opened_at: float = 0.0
    _trial: bool = False
    opened: int = field(default=0)
    """How many times it opened (a counter for operators)."""

    @property
    def state(self) -> State:
        if self._state is State.OPEN and self.clock() - self._opened_at >= self.reset:
            return State.HALF_OPEN
        return self._state

    def allow(self) -> bool:
        """Whether a call may go to the provider now (a half-open breaker lets one through)."""
        state = self.state
        if state is State.CLOSED:
            return True
        if state is State.HALF_OPEN and not self._trial:
            self._state = State.HALF_OPEN
            self._trial = True
            return True
        return False

    def success(self) -> None:
        self._state = State.CLOSED
        self._failures = 0
        self._trial = False

    def failure(self) -> None:
        if self._state is State.HALF_OPEN or self._trial:
            self._open()
            return
        self._failures += 1
        if self._failures >= self.threshold:
            self._open()

    def _open(self) -> None:
        self._state = State.OPEN
        self._opened_at = self.clock()
        self._failures = 0
        self._trial = False
        self.opened += 1

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def snapshot(self) -> dict[str, object]:
        return {
            "provider": self.name,
            "state": self.state.value,
            "consecutive_failures": self._failures,
            "opened": self.opened,
        }
