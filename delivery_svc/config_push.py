"""Push, web push and SMS settings, parsed from the same environment as the core settings.

Each provider module reads and checks its own variables (``read_settings``: FCM, APNs and
web push are off while theirs are unset; DESIGN §9.3 names them). Here: what the channels
share.

``NOTIFY_PUSH_CONCURRENCY``, ``NOTIFY_WEBPUSH_CONCURRENCY``, ``NOTIFY_SMS_CONCURRENCY``
    Deliveries in flight per priority on each channel's queues, as
    ``NOTIFY_DELIVERY_CONCURRENCY`` (``high=50,normal=30,low=20``; any subset). A push
    delivery sends to every device of its user at once.
``NOTIFY_DEVICE_STALE_DAYS`` (270)
    Devices no provider took a push for in this many days are deactivated (FCM considers
    a token unused for 270 days expired).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from delivery_svc.config_values import whole
from notify_core.config import DELIVERY_CONCURRENCY, concurrency

DEVICE_STALE_DAYS = 270


def _defaults() -> Mapping[str, int]:
    return MappingProxyType(dict(DELIVERY_CONCURRENCY))


@dataclass(frozen=True, slots=True)
class PushSettings:
    providers: Mapping[str, Any] = field(default_factory=dict)
    """Each configured push provider's settings by platform (``fcm``, ``apns``,
    ``webpush``), as its module's ``read_settings`` answered; absent: off."""
    push_concurrency: Mapping[str, int] = field(default_factory=_defaults)
    webpush_concurrency: Mapping[str, int] = field(default_factory=_defaults)
    sms_concurrency: Mapping[str, int] = field(default_factory=_defaults)
    device_stale_days: int = DEVICE_STALE_DAYS


def push_settings(env: Mapping[str, str]) -> PushSettings:
    """The push settings, checked (:class:`ConfigError` names a bad variable)."""
    from delivery_svc.providers.registry import PUSH_PROVIDERS

    providers = {}
    for spec in PUSH_PROVIDERS.values():
        read = spec.read_settings(env)
        if read is not None:
            providers[spec.platform] = read
    return PushSettings(
        providers=providers,
        push_concurrency=concurrency(env, "NOTIFY_PUSH_CONCURRENCY"),
        webpush_concurrency=concurrency(env, "NOTIFY_WEBPUSH_CONCURRENCY"),
        sms_concurrency=concurrency(env, "NOTIFY_SMS_CONCURRENCY"),
        device_stale_days=whole(env, "NOTIFY_DEVICE_STALE_DAYS", DEVICE_STALE_DAYS, 1, 3650),
    )
