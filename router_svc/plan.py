"""The routing plan: a pure function of the notification (and, later, preferences,
presence, history, rate limits and a clock).

Today the plan decides the in-app channel: a notification goes to the user's inbox and
live connections unless the producer named channels without ``inapp``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    SEND = "send"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Decision:
    channel: str
    action: Action
    reason: str


@dataclass(frozen=True, slots=True)
class Plan:
    decisions: tuple[Decision, ...]

    def sends(self, channel: str) -> bool:
        return any(d.channel == channel and d.action is Action.SEND for d in self.decisions)


def plan(requested_channels: Sequence[str] | None) -> Plan:
    """Decide the in-app channel for a notification that asked for ``requested_channels``
    (``None``: any channel)."""
    if requested_channels is None or "inapp" in requested_channels:
        inapp = Decision("inapp", Action.SEND, "in-app inbox and live connections")
    else:
        inapp = Decision("inapp", Action.SKIP, "producer did not ask for inapp")
    return Plan((inapp,))
