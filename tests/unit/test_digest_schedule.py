"""When digests are due: tables across time zones and DST transitions (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from digest_svc.schedule import (
    Schedule,
    digest_id,
    due_slot,
    first_digest_at,
    next_digest_at,
    period_key,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


DAILY_9 = Schedule("daily", 9)


@pytest.mark.parametrize(
    ("schedule", "tz", "previous", "expected"),
    [
        # UTC: later today, or tomorrow once today's slot is reached (strictly after)
        (DAILY_9, "UTC", utc(2026, 5, 1, 8, 0), utc(2026, 5, 1, 9, 0)),
        (DAILY_9, "UTC", utc(2026, 5, 1, 9, 0), utc(2026, 5, 2, 9, 0)),
        (DAILY_9, "UTC", utc(2026, 5, 1, 8, 59, 59), utc(2026, 5, 1, 9, 0)),
        # Paris in summer (CEST, +2): 09:00 local is 07:00 UTC
        (DAILY_9, "Europe/Paris", utc(2026, 5, 1, 6, 0), utc(2026, 5, 1, 7, 0)),
        # ... in winter (CET, +1): 08:00 UTC
        (DAILY_9, "Europe/Paris", utc(2026, 1, 15, 12, 0), utc(2026, 1, 16, 8, 0)),
        # New York, spring forward 2026-03-08 02:00 EST -> 03:00 EDT: 02:00 does not
        # exist, the slot is 03:00 EDT (07:00 UTC) ...
        (Schedule("daily", 2), "America/New_York", utc(2026, 3, 8, 5, 0), utc(2026, 3, 8, 7, 0)),
        # ... and the next day's 02:00 EDT is 06:00 UTC
        (Schedule("daily", 2), "America/New_York", utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 0)),
        # an hour untouched by the change moves by the offset: 09:00 EST, then 09:00 EDT
        (DAILY_9, "America/New_York", utc(2026, 3, 7, 14, 0), utc(2026, 3, 8, 13, 0)),
        # New York, fall back 2026-11-01 02:00 EDT -> 01:00 EST: 01:00 happens twice; the
        # slot is the first (01:00 EDT, 05:00 UTC) ...
        (Schedule("daily", 1), "America/New_York", utc(2026, 11, 1, 4, 0), utc(2026, 11, 1, 5, 0)),
        # ... and the second 01:00 (EST, 06:00 UTC) is not another slot: next day
        (Schedule("daily", 1), "America/New_York", utc(2026, 11, 1, 5, 0), utc(2026, 11, 2, 6, 0)),
        # London, spring forward 2026-03-29 01:00 GMT -> 02:00 BST: 01:00 is 02:00 BST
        (Schedule("daily", 1), "Europe/London", utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 1, 0)),
        # half- and three-quarter-hour offsets
        (DAILY_9, "Asia/Kolkata", utc(2026, 1, 1, 0, 0), utc(2026, 1, 1, 3, 30)),
        (Schedule("daily", 0), "Asia/Kathmandu", utc(2026, 1, 1, 0, 0), utc(2026, 1, 1, 18, 15)),
        # Lord Howe moves by 30 minutes: 2026-10-04 02:00 (+10:30) -> 02:30 (+11)
        (
            Schedule("daily", 2),
            "Australia/Lord_Howe",
            utc(2026, 10, 3, 12, 0),
            utc(2026, 10, 3, 15, 30),
        ),
        # Sydney, fall back 2026-04-05 03:00 AEDT -> 02:00 AEST: first 02:00 (AEDT) ...
        (Schedule("daily", 2), "Australia/Sydney", utc(2026, 4, 4, 12, 0), utc(2026, 4, 4, 15, 0)),
        # ... then 02:00 AEST on the 6th
        (Schedule("daily", 2), "Australia/Sydney", utc(2026, 4, 4, 15, 0), utc(2026, 4, 5, 16, 0)),
        # the far side of the date line: Kiritimati is +14, Pago Pago -11
        (DAILY_9, "Pacific/Kiritimati", utc(2026, 6, 1, 0, 0), utc(2026, 6, 1, 19, 0)),
        (DAILY_9, "Pacific/Pago_Pago", utc(2026, 6, 1, 0, 0), utc(2026, 6, 1, 20, 0)),
        # Samoa skipped 2011-12-30 (from -10 to +14): the 30th's 09:00 reads as the
        # 31st's, one slot for both days, never two
        (DAILY_9, "Pacific/Apia", utc(2011, 12, 29, 19, 0), utc(2011, 12, 30, 19, 0)),
        (DAILY_9, "Pacific/Apia", utc(2011, 12, 30, 19, 0), utc(2011, 12, 31, 19, 0)),
        # weekly: Monday 08:00 in Auckland (NZDT, +13) is Sunday 19:00 UTC
        (
            Schedule("weekly", 8, weekday=1),
            "Pacific/Auckland",
            utc(2026, 1, 1, 0, 0),
            utc(2026, 1, 4, 19, 0),
        ),
        # weekly: Sunday 23:00 in Los Angeles (PST, -8) is Monday 07:00 UTC; then a week on
        (
            Schedule("weekly", 23, weekday=7),
            "America/Los_Angeles",
            utc(2026, 1, 5, 6, 59),
            utc(2026, 1, 5, 7, 0),
        ),
        (
            Schedule("weekly", 23, weekday=7),
            "America/Los_Angeles",
            utc(2026, 1, 5, 7, 0),
            utc(2026, 1, 12, 7, 0),
        ),
        # weekly on the spring-forward Sunday itself, in the gap
        (
            Schedule("weekly", 2, weekday=7),
            "America/New_York",
            utc(2026, 3, 2, 0, 0),
            utc(2026, 3, 8, 7, 0),
        ),
        # weekly on the fall-back Sunday, in the overlap: the first 01:00
        (
            Schedule("weekly", 1, weekday=7),
            "America/New_York",
            utc(2026, 10, 26, 0, 0),
            utc(2026, 11, 1, 5, 0),
        ),
        # previous given in another zone is the same instant
        (
            DAILY_9,
            "UTC",
            utc(2026, 5, 1, 10, 0).astimezone(ZoneInfo("Asia/Tokyo")),
            utc(2026, 5, 2, 9, 0),
        ),
    ],
)
def test_next_digest_at(
    schedule: Schedule, tz: str, previous: datetime, expected: datetime
) -> None:
    assert next_digest_at(previous, schedule, tz) == expected


@pytest.mark.parametrize(
    ("schedule", "tz", "now", "at", "day"),
    [
        # after downtime only the latest slot is due: one digest, not one per missed day
        (DAILY_9, "UTC", utc(2026, 5, 4, 10, 0), utc(2026, 5, 4, 9, 0), date(2026, 5, 4)),
        (DAILY_9, "UTC", utc(2026, 5, 4, 8, 59), utc(2026, 5, 3, 9, 0), date(2026, 5, 3)),
        (DAILY_9, "UTC", utc(2026, 5, 4, 9, 0), utc(2026, 5, 4, 9, 0), date(2026, 5, 4)),
        # weekly on Mondays: a Wednesday answers that week's Monday
        (
            Schedule("weekly", 9, weekday=1),
            "UTC",
            utc(2026, 5, 6, 12, 0),
            utc(2026, 5, 4, 9, 0),
            date(2026, 5, 4),
        ),
        # New York fall back: during the second 01:00 the due slot is the first one
        (
            Schedule("daily", 1),
            "America/New_York",
            utc(2026, 11, 1, 6, 30),
            utc(2026, 11, 1, 5, 0),
            date(2026, 11, 1),
        ),
        # Samoa's missing day: the instant both days name belongs to the 31st
        (
            DAILY_9,
            "Pacific/Apia",
            utc(2011, 12, 30, 20, 0),
            utc(2011, 12, 30, 19, 0),
            date(2011, 12, 31),
        ),
        # Tokyo at 08:00 local on the 2nd: yesterday's 09:00
        (DAILY_9, "Asia/Tokyo", utc(2026, 5, 1, 23, 0), utc(2026, 5, 1, 0, 0), date(2026, 5, 1)),
    ],
)
def test_due_slot_is_the_latest_slot_reached(
    schedule: Schedule, tz: str, now: datetime, at: datetime, day: date
) -> None:
    slot = due_slot(now, schedule, tz)
    assert (slot.at, slot.day) == (at, day)


ZONES = [
    "UTC",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Australia/Sydney",
    "Asia/Kathmandu",
    "America/Santiago",
    "Pacific/Chatham",
]


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize(
    "schedule", [Schedule("daily", 0), Schedule("daily", 2), Schedule("weekly", 1, weekday=7)]
)
@pytest.mark.parametrize("start", [utc(2026, 3, 5), utc(2026, 9, 24), utc(2026, 10, 29)])
def test_slots_are_consistent_every_half_hour_of_a_dst_season(
    tz: str, schedule: Schedule, start: datetime
) -> None:
    """Over 12 days around a DST change, every half hour: the next slot is after the
    clock and is its own due slot; the due slot is not after the clock; one slot per
    period, and periods never repeat."""
    seen: dict[str, datetime] = {}
    for step in range(12 * 48):
        now = start + timedelta(minutes=30 * step)
        nxt = next_digest_at(now, schedule, tz)
        assert nxt > now
        assert nxt - now <= timedelta(days=7, hours=2)
        assert due_slot(nxt, schedule, tz).at == nxt
        slot = due_slot(now, schedule, tz)
        assert slot.at <= now < next_digest_at(slot.at, schedule, tz)
        key = period_key(slot.day, schedule)
        assert seen.setdefault(key, slot.at) == slot.at


@pytest.mark.parametrize(
    ("day", "schedule", "key"),
    [
        (date(2026, 3, 8), DAILY_9, "daily:2026-03-08"),
        (date(2026, 3, 8), Schedule("weekly", 9, 7), "weekly:2026-W10"),
        (date(2026, 1, 1), Schedule("weekly", 9, 4), "weekly:2026-W01"),
        # ISO weeks: 2027-01-01 (a Friday) is in 2026's week 53
        (date(2027, 1, 1), Schedule("weekly", 9, 5), "weekly:2026-W53"),
        (date(2024, 12, 30), Schedule("weekly", 9, 1), "weekly:2025-W01"),
    ],
)
def test_period_key(day: date, schedule: Schedule, key: str) -> None:
    assert period_key(day, schedule) == key


def test_digest_id_is_stable_per_user_and_period() -> None:
    a = digest_id("alice", "daily:2026-03-08")
    assert a == digest_id("alice", "daily:2026-03-08")
    assert a != digest_id("alice", "daily:2026-03-09")
    assert a != digest_id("bob", "daily:2026-03-08")
    # no separator games: ("a\nb", "c") and ("a", "b\nc") would collide only if both
    # parts could hold the separator; periods never do
    assert digest_id("a:b", "daily:1") != digest_id("a", "b:daily:1")


def test_first_digest_after_set_up_is_the_next_slot() -> None:
    assert first_digest_at(utc(2026, 5, 1, 12), None, DAILY_9, "UTC") == utc(2026, 5, 2, 9)


def test_a_change_keeps_a_slot_that_was_due_and_not_sent() -> None:
    # due at 09:00, not sent yet (the scheduler lags), the address changes at 09:05:
    # the 09:00 slot stays due
    pending = utc(2026, 5, 1, 9)
    assert first_digest_at(utc(2026, 5, 1, 9, 5), pending, DAILY_9, "UTC") == pending
    # long overdue (the scheduler was down): still due, once
    old = utc(2026, 4, 1, 9)
    assert first_digest_at(utc(2026, 5, 1, 12), old, DAILY_9, "UTC") == old


def test_a_change_of_hour_moves_the_next_slot() -> None:
    # sent at 09:00 (next due tomorrow 09:00); at 09:30 the hour becomes 10: today 10:00
    # (the digests table then finds today's period sent and moves on)
    pending = utc(2026, 5, 2, 9)
    later = Schedule("daily", 10)
    assert first_digest_at(utc(2026, 5, 1, 9, 30), pending, later, "UTC") == utc(2026, 5, 1, 10)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("hourly", 9), "frequency"),
        (("daily", 24), "hour"),
        (("weekly", 9, 0), "weekday"),
    ],
)
def test_bad_schedules_are_refused(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Schedule(*args)  # type: ignore[arg-type]


def test_naive_clocks_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_digest_at(datetime(2026, 1, 1), DAILY_9, "UTC")
