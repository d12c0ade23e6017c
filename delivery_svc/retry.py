"""When to try a failed delivery again: a pure function of the attempt and a random draw.

The schedule is the original design's 1 min / 5 min / 15 min by default
(``NOTIFY_RETRY_SCHEDULE``): attempt 1 failing waits about 1 min, attempt 2 about 5 min,
attempt 3 about 15 min; when attempt 4 fails there is no step left and the delivery is
dead-lettered. Each wait is jittered by up to ``jitter`` of itself either way so that a
burst of failures does not come back as a burst. A provider's own ``Retry-After`` is
honoured when it asks for longer.
"""

from __future__ import annotations

from collections.abc import Sequence

from notify_core.config import RETRY_SCHEDULE

DEFAULT_SCHEDULE = RETRY_SCHEDULE.default
"""NOTIFY_RETRY_SCHEDULE's default, declared in notify_core/config.py."""
DEFAULT_JITTER = 0.2


def retry_delay(
    attempt: int,
    schedule: Sequence[float] = DEFAULT_SCHEDULE,
    *,
    draw: float,
    jitter: float = DEFAULT_JITTER,
    retry_after: float | None = None,
) -> float | None:
    """Seconds to wait after failed attempt number ``attempt`` (1-based), or ``None`` when
    the schedule is spent. ``draw`` is a uniform random number in [0, 1)."""
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    if attempt > len(schedule):
        return None
    base = schedule[attempt - 1]
    wait = base * (1.0 + jitter * (2.0 * draw - 1.0))
    if retry_after is not None and retry_after > wait:
        wait = retry_after
    return max(0.0, wait)


def max_attempts(schedule: Sequence[float] = DEFAULT_SCHEDULE) -> int:
    """Tries in all: the first one and one per step."""
    return len(schedule) + 1
