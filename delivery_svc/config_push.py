"""Push, web push and SMS settings, parsed from the same environment as the core settings.

Each provider module reads and checks its own variables (``read_settings``: FCM, APNs and
web push are off while theirs are unset; DESIGN §9.3 names them). Here: what the channels
share.

``NOTIFY_PUSH_CONCURRENCY``, ``NOTIFY_WEBPUSH_CONCURRENCY``, ``NOTIFY_SMS_CONCURRENCY``
    Deliveries in flight per priority on each channel's queues, as
    ``NOTIFY_DELIVERY_CONCURRENCY`` (``high=50,normal=30,low=20``; any subset). A push
    delivery sends to every device of its user at once.
``NOTIFY_SMS_PROVIDER``, ``NOTIFY_SMS_FALLBACK`` (unset: SMS off)
    ``twilio`` or ``sns``; the fallback is used while the provider's breaker is open.
``NOTIFY_SMS_MAX_SEGMENTS`` (3)
    Longer texts are cut, with an ellipsis, to fit this many segments.
``NOTIFY_DEVICE_STALE_DAYS`` (270)
    Devices no provider took a push for in this many days are deactivated (FCM considers
    a token unused for 270 days expired).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from delivery_svc.config_values import text, whole
from delivery_svc.sms_text import DEFAULT_MAX_SEGMENTS, max_segments
from notify_core.config import DELIVERY_CONCURRENCY, concurrency
from notify_core.errors import ConfigError

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
    sms_provider: str | None = None
    sms_fallback: str | None = None
    sms: Mapping[str, Any] = field(default_factory=dict)
    """The SMS providers' settings by name, as their modules' ``read_settings`` answered."""
    sms_max_segments: int = DEFAULT_MAX_SEGMENTS


def push_settings(env: Mapping[str, str]) -> PushSettings:
    """The push settings, checked (:class:`ConfigError` names a bad variable)."""
    from delivery_svc.providers.registry import PUSH_PROVIDERS, SMS_PROVIDERS

    providers = {}
    for spec in PUSH_PROVIDERS.values():
        read = spec.read_settings(env)
        if read is not None:
            providers[spec.platform] = read
    provider = _sms_choice(env, "NOTIFY_SMS_PROVIDER", SMS_PROVIDERS)
    fallback = _sms_choice(env, "NOTIFY_SMS_FALLBACK", SMS_PROVIDERS)
    if fallback is not None and provider is None:
        raise ConfigError("NOTIFY_SMS_FALLBACK needs NOTIFY_SMS_PROVIDER")
    if fallback is not None and fallback == provider:
        raise ConfigError("NOTIFY_SMS_FALLBACK must differ from NOTIFY_SMS_PROVIDER")
    sms = {
        name: spec.read_settings(env, name in (provider, fallback))
        for name, spec in SMS_PROVIDERS.items()
    }
    return PushSettings(
        providers=providers,
        sms_provider=provider,
        sms_fallback=fallback,
        sms={name: read for name, read in sms.items() if read is not None},
        sms_max_segments=max_segments(env),
        push_concurrency=concurrency(env, "NOTIFY_PUSH_CONCURRENCY"),
        webpush_concurrency=concurrency(env, "NOTIFY_WEBPUSH_CONCURRENCY"),
        sms_concurrency=concurrency(env, "NOTIFY_SMS_CONCURRENCY"),
        device_stale_days=whole(env, "NOTIFY_DEVICE_STALE_DAYS", DEVICE_STALE_DAYS, 1, 3650),
    )


def _sms_choice(env: Mapping[str, str], name: str, known: Mapping[str, Any]) -> str | None:
    raw = (text(env, name) or "").lower() or None
    if raw is not None and raw not in known:
        raise ConfigError(f"{name} must be one of {', '.join(known)}, got {raw!r}")
    return raw
