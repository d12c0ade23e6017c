"""Quiet hours across midnight and DST, in several time zones (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfoNotFoundError

import pytest

from router_svc.quiet_hours import QuietHours, quiet_until


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


NIGHT_UTC = QuietHours(time(22), time(7), "UTC")


@pytest.mark.parametrize(
    ("window", "now", "until"),
    [
        # crossing midnight, UTC
        (NIGHT_UTC, utc(2026, 5, 1, 23, 30), utc(2026, 5, 2, 7)),
        (NIGHT_UTC, utc(2026, 5, 1, 22, 0), utc(2026, 5, 2, 7)),
        (NIGHT_UTC, utc(2026, 5, 2, 6, 59), utc(2026, 5, 2, 7)),
        (NIGHT_UTC, utc(2026, 5, 2, 7, 0), None),
        (NIGHT_UTC, utc(2026, 5, 2, 21, 59), None),
        # within one day
        (QuietHours(time(13), time(14), "UTC"), utc(2026, 5, 1, 13, 30), utc(2026, 5, 1, 14)),
        (QuietHours(time(13), time(14), "UTC"), utc(2026, 5, 1, 12, 0), None),
        # New York, the night DST starts (2026-03-08 02:00 EST -> 03:00 EDT)
        (
            QuietHours(time(22), time(7), "America/New_York"),
            utc(2026, 3, 8, 5, 0),  # 00:00 EST
            utc(2026, 3, 8, 11, 0),  # 07:00 EDT
        ),
        # New York, the night DST ends (2026-11-01 02:00 EDT -> 01:00 EST)
        (
            QuietHours(time(22), time(7), "America/New_York"),
            utc(2026, 11, 1, 4, 0),  # 00:00 EDT
            utc(2026, 11, 1, 12, 0),  # 07:00 EST
        ),
        # an end inside the fall-back overlap: its first occurrence (01:30 EDT)
        (
            QuietHours(time(0), time(1, 30), "America/New_York"),
            utc(2026, 11, 1, 5, 10),  # 01:10 EDT
            utc(2026, 11, 1, 5, 30),
        ),
        # an end inside the spring-forward gap moves later by the gap (01:30 -> 02:30 BST)
        (
            QuietHours(time(0, 30), time(1, 30), "Europe/London"),
            utc(2026, 3, 29, 0, 45),
            utc(2026, 3, 29, 1, 30),
        ),
        # half-hour offset
        (
            QuietHours(time(22), time(6), "Asia/Kolkata"),
            utc(2026, 1, 1, 17, 0),  # 22:30 IST
            utc(2026, 1, 2, 0, 30),  # 06:00 IST
        ),
        (QuietHours(time(22), time(6), "Asia/Kolkata"), utc(2026, 1, 1, 16, 0), None),
        # southern hemisphere winter
        (
            QuietHours(time(21), time(8), "Australia/Sydney"),
            utc(2026, 7, 1, 12, 0),  # 22:00 AEST
            utc(2026, 7, 1, 22, 0),  # 08:00 AEST next day
        ),
        (None, utc(2026, 7, 1, 12, 0), None),
    ],
)
def test_quiet_until(window: QuietHours | None, now: datetime, until: datetime | None) -> None:
    assert quiet_until(window, now) == until


def test_bad_windows_are_refused() -> None:
    with pytest.raises(ValueError):
        QuietHours(time(7), time(7), "UTC")
    with pytest.raises(ZoneInfoNotFoundError):
        QuietHours(time(22), time(7), "Mars/Olympus_Mons")


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError):
        quiet_until(NIGHT_UTC, datetime(2026, 1, 1))
