"""Sliding-window rate-limit arithmetic (pure)."""

from __future__ import annotations

import pytest

from notify_core.ratelimit import DEFAULT_LIMITS, Limit, check

RULE = Limit(3, 60.0)


@pytest.mark.parametrize(
    ("sent", "now", "allowed", "retry_after", "remaining"),
    [
        ([], 100.0, True, 0.0, 2),
        ([90.0], 100.0, True, 0.0, 1),
        ([80.0, 90.0], 100.0, True, 0.0, 0),
        ([70.0, 80.0, 90.0], 100.0, False, 30.0, 0),  # 70 leaves at 130
        ([40.0, 80.0, 90.0], 100.0, True, 0.0, 0),  # exactly 60 s old: outside
        ([40.01, 80.0, 90.0], 100.0, False, 0.01, 0),
        ([10.0, 20.0, 95.0, 96.0, 97.0], 100.0, False, 55.0, 0),
        ([99.0, 98.0, 97.0, 96.0], 100.0, False, 57.0, 0),  # unordered, over the limit
    ],
)
def test_sliding_window(
    sent: list[float], now: float, allowed: bool, retry_after: float, remaining: int
) -> None:
    verdict = check(sent, now, RULE)
    assert verdict.allowed is allowed
    assert verdict.retry_after == pytest.approx(retry_after)
    assert verdict.remaining == remaining


def test_original_design_defaults() -> None:
    assert DEFAULT_LIMITS["email"] == Limit(10, 3600.0)
    assert DEFAULT_LIMITS["sms"] == Limit(5, 3600.0)
    assert DEFAULT_LIMITS["push"] == Limit(50, 3600.0)
    assert DEFAULT_LIMITS["inapp"] == Limit(100, 60.0)


@pytest.mark.parametrize(("limit", "window"), [(0, 60.0), (1, 0.0), (1, -1.0)])
def test_bad_rules_are_refused(limit: int, window: float) -> None:
    with pytest.raises(ValueError):
        Limit(limit, window)
