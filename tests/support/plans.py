"""What the routing tables share: a fixed clock and a user who can be reached everywhere."""

from __future__ import annotations

from datetime import UTC, datetime

from notify_core.domain import CHANNELS
from router_svc.plan import Preferences

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
EVERYTHING = Preferences(
    switches={c: True for c in CHANNELS},
    email="a@example.com",
    phone="+14155550100",
    webhook_url="https://hooks.example.com/x",
    has_push_device=True,
    has_webpush_subscription=True,
)
"""Every channel on, with a contact point for each."""
