"""When a user's digest is due: pure functions of the schedule, the user's zone and a clock.

A schedule is "daily at HOUR" or "weekly on WEEKDAY at HOUR" (1 = Monday ... 7 = Sunday),
on the wall clock of the user's IANA zone. The instants it names are its **slots**: HOUR:00
of every day (or every WEEKDAY), resolved like quiet hours are
(:func:`router_svc.quiet_hours.local_instant`):

- in a spring-forward gap the slot moves later by the gap's length (02:00 in New York's
  02:00 → 03:00 gap is 03:00 EDT);
- in a fall-back overlap it is the first occurrence (01:00 EDT, not 01:00 EST).

So every local day has its slot: never none, never two.

Each slot belongs to a **period**, named by :func:`period_key`: the local day of a daily
schedule (``daily:2026-03-08``), the ISO week of a weekly one (``weekly:2026-W10``). One
digest per user per period is what the ``digests`` table holds to (unique user x period);
after downtime, :func:`due_slot` answers only the latest slot, so missed periods are
caught up by one digest, not one each.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from router_svc.api import local_instant

Frequency = Literal["daily", "weekly"]
_SEARCH_DAYS = 9
"""Local days looked at around a clock: a weekly slot is at most 7 days away, plus one day
each side for a slot that a DST gap at midnight moved onto the next date."""
_DIGEST_IDS = uuid.UUID("6f1c2a4e-8d0b-4c55-9a7e-3b2d1f0e9c18")
"""The namespace of :func:`digest_id` (uuid5)."""


@dataclass(frozen=True, slots=True)
class Schedule:
    frequency: Frequency
    hour: int
    """0 to 23, local."""
    weekday: int = 1
    """1 (Monday) to 7 (Sunday); weekly schedules only."""

    def __post_init__(self) -> None:
        if self.frequency not in ("daily", "weekly"):
            raise ValueError(f"frequency must be daily or weekly, not {self.frequency!r}")
        if not 0 <= self.hour <= 23:
            raise ValueError(f"hour must be 0 to 23, not {self.hour}")
        if not 1 <= self.weekday <= 7:
            raise ValueError(f"weekday must be 1 to 7, not {self.weekday}")

    def on(self, day: date) -> bool:
        """Whether ``day`` (a local date) has a slot."""
        return self.frequency == "daily" or day.isoweekday() == self.weekday


@dataclass(frozen=True, slots=True)
class Slot:
    at: datetime
    """The instant, in UTC."""
    day: date
    """The local date whose HOUR:00 it is (what names its period)."""


def _zone(tz: ZoneInfo | str) -> ZoneInfo:
    return tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value.astimezone(UTC)


def _slots(around: datetime, schedule: Schedule, zone: ZoneInfo, step: int) -> list[Slot]:
    """The slots of the local days around ``around``, in the order of ``step`` (+1: from
    the day before forwards; -1: from the day after backwards)."""
    today = around.astimezone(zone).date()
    first = today - timedelta(days=step)
    days = (first + timedelta(days=step * n) for n in range(_SEARCH_DAYS))
    at = time(schedule.hour)
    return [Slot(local_instant(d, at, zone), d) for d in days if schedule.on(d)]


def next_digest_at(previous: datetime, schedule: Schedule, tz: ZoneInfo | str) -> datetime:
    """The first slot strictly after ``previous`` (UTC)."""
    previous = _aware(previous, "previous")
    for slot in _slots(previous, schedule, _zone(tz), +1):
        if slot.at > previous:
            return slot.at
    raise AssertionError("a slot is always found within the days searched")  # pragma: no cover


def due_slot(now: datetime, schedule: Schedule, tz: ZoneInfo | str) -> Slot:
    """The latest slot at or before ``now``: the one a digest sent at ``now`` is for."""
    now = _aware(now, "now")
    for slot in _slots(now, schedule, _zone(tz), -1):
        if slot.at <= now:
            return slot
    raise AssertionError("a slot is always found within the days searched")  # pragma: no cover


def period_key(day: date, schedule: Schedule) -> str:
    """The period a slot of ``day`` belongs to: its day, or its ISO week."""
    if schedule.frequency == "daily":
        return f"daily:{day.isoformat()}"
    iso = day.isocalendar()
    return f"weekly:{iso.year}-W{iso.week:02d}"


def digest_id(user_id: str, period: str) -> str:
    """The id of a user's digest for a period: the same on every try, so its Message-ID
    and provider idempotency key are too."""
    return str(uuid.uuid5(_DIGEST_IDS, f"{user_id}\n{period}"))


def first_digest_at(
    changed_at: datetime,
    pending: datetime | None,
    schedule: Schedule,
    tz: ZoneInfo | str,
) -> datetime:
    """When a schedule that was set up or changed at ``changed_at`` is next due.

    ``pending`` is the time the user was due before the change, if they had a schedule:
    a slot not yet sent stays due (a changed e-mail address must not cost today's
    digest), so the answer is never later than the new schedule's first slot after it."""
    anchor = _aware(changed_at, "changed_at")
    if pending is not None:
        anchor = min(anchor, _aware(pending, "pending") - timedelta(microseconds=1))
    return next_digest_at(anchor, schedule, tz)
