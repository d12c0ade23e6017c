"""Quiet hours in the user's own time zone: a pure function of the window and a clock.

A window is a local start and end time in an IANA zone; ``start > end`` means it crosses
midnight (22:00-07:00). Local times are resolved with :mod:`zoneinfo`, so DST changes are
handled: a window edge that falls in a spring-forward gap moves later by the gap's length,
and one in a fall-back overlap is taken at its first occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: time
    end: time
    tz: str

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise ValueError("quiet hours start and end must differ")
        ZoneInfo(self.tz)  # raises ZoneInfoNotFoundError for an unknown zone


def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of wall-clock ``at`` on the local date ``day`` in ``zone``.

    ``fold=0`` gives the first occurrence in a fall-back overlap, and in a spring-forward
    gap it reads the wall time with the offset from before the gap, which moves it later
    by the gap's length (02:30 in a 02:00→03:00 gap becomes 03:30).
    """
    return datetime.combine(day, at).replace(tzinfo=zone, fold=0).astimezone(UTC)


def quiet_until(window: QuietHours | None, now: datetime) -> datetime | None:
    """When the quiet window that contains ``now`` ends (UTC), or ``None`` if ``now`` is
    outside every window."""
    if window is None:
        return None
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    zone = ZoneInfo(window.tz)
    local = now.astimezone(zone)
    # Check the window that started today and the one that started yesterday (for a
    # window crossing midnight); the first that contains now answers.
    for days_back in (0, 1):
        day = local - timedelta(days=days_back)
        start = local_instant(day.date(), window.start, zone)
        end_day = day if window.start < window.end else day + timedelta(days=1)
        end = local_instant(end_day.date(), window.end, zone)
        if start <= now.astimezone(UTC) < end:
            return end
    return None
