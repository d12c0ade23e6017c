"""Sliding-window rate-limit arithmetic, pure. The in-memory limiter calls it; the Redis
limiter's Lua script (``notify_core.cache.redis``) does the same sums, and one contract
suite holds both to it.

The window holds the instants of the sends it allowed. A new send is allowed while fewer
than ``limit`` fall within the last ``window`` seconds; otherwise the answer says when the
oldest one leaves the window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Limit:
    limit: int
    window: float  # seconds

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError("limit must be at least 1")
        if self.window <= 0:
            raise ValueError("window must be positive")


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    retry_after: float  # seconds; 0 when allowed
    remaining: int  # sends still allowed in the window after this one


DEFAULT_LIMITS = {
    "email": Limit(10, 3600.0),
    "sms": Limit(5, 3600.0),
    "push": Limit(50, 3600.0),
    "inapp": Limit(100, 60.0),
}
"""The original design's defaults; other channels default to 20 per hour."""
FALLBACK_LIMIT = Limit(20, 3600.0)


@dataclass(frozen=True, slots=True)
class RateRules:
    """The limit of each channel, and per (type, channel) where a type has its own.

    A per-type rule is counted in its own window (scope = the type) on top of the channel's
    limit for every type (scope "all"): a type's own rule can only be stricter in effect.
    """

    channels: Mapping[str, Limit] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    by_type: Mapping[tuple[str, str], Limit] = field(default_factory=dict)

    def channel(self, channel: str) -> Limit:
        return self.channels.get(channel, FALLBACK_LIMIT)

    def of_type(self, type_: str, channel: str) -> Limit | None:
        return self.by_type.get((type_, channel))


def check(sent_at: Sequence[float], now: float, rule: Limit) -> Verdict:
    """Whether one more send at ``now`` fits, given the instants of earlier sends."""
    horizon = now - rule.window
    inside = sorted(t for t in sent_at if t > horizon)
    if len(inside) < rule.limit:
        return Verdict(True, 0.0, rule.limit - len(inside) - 1)
    # The send can happen once enough of the oldest ones have left the window.
    oldest_to_leave = inside[len(inside) - rule.limit]
    return Verdict(False, max(0.0, oldest_to_leave + rule.window - now), 0)
