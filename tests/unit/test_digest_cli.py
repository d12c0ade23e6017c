"""What ``notify digest`` prints: the progress bar, the summary, the clock it takes (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from digest_svc.cli import parse_as_of, progress_line, summary
from digest_svc.runs import Counts, Run
from notify_core.errors import InvalidArgument

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def run(status: str = "running", **counts: object) -> Run:
    return Run(
        id="r1",
        trigger="manual",
        status=status,
        as_of=T0,
        holder="node",
        attempts=1,
        counts=Counts(**counts),  # type: ignore[arg-type]
        error=None,
        created_at=T0,
        started_at=T0,
        finished_at=T0 + timedelta(seconds=12.5) if status != "running" else None,
    )


def test_the_bar_fills_with_the_users_processed() -> None:
    line = progress_line(run(due=10_000, processed=3_100, sent=3_000, skipped=90, failed=10), 10)
    assert line.startswith("[###.......]  31%  3,100/10,000 users  sent 3,000  skipped 90  ")
    assert "failed 10" in line


def test_a_run_with_nobody_due_is_full_and_a_queued_one_waits() -> None:
    assert progress_line(run("succeeded"), 4).startswith("[####] 100%  0/0 users")
    assert progress_line(run("queued")).startswith("queued (as of 2026-05-01T09:00:00")


def test_the_summary_names_reasons_largest_first_and_the_time_split() -> None:
    done = run(
        "succeeded",
        due=5,
        processed=5,
        sent=2,
        skipped=3,
        skipped_by_reason={"rate limited": 1, "nothing new": 2},
        timings={"query": 1.0, "render": 2.0, "send": 3.0, "record": 0.5},
    )
    text = summary(done)
    assert text.splitlines()[0] == (
        "run r1: succeeded (manual, as of 2026-05-01T09:00:00.000000Z, 1 attempt)"
    )
    assert text.index("skipped: nothing new: 2") < text.index("skipped: rate limited: 1")
    assert "12.5 s (query 1.00 s  render 2.00 s  send 3.00 s  record 0.50 s)" in text


def test_as_of_is_iso_8601_utc_by_default() -> None:
    assert parse_as_of(None) is None
    assert parse_as_of("2026-05-01T09:00:00Z") == T0
    assert parse_as_of("2026-05-01T11:00:00+02:00") == T0
    assert parse_as_of("2026-05-01T09:00:00") == T0
    with pytest.raises(InvalidArgument, match="--as-of"):
        parse_as_of("tomorrow")
