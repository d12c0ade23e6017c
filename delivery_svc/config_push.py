"""Push, web push and SMS settings, parsed from the same environment as the core settings.

Each provider module declares and reads its own variables (``SETTINGS`` and
``read_settings``: FCM, APNs and web push are off while theirs are unset; DESIGN §9.3
names them). Here: what the channels share, declared once (:data:`PUSH`), and
:data:`GROUPS`, every push and SMS setting for the composition root.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from delivery_svc.providers.registry import PUSH_PROVIDERS, SMS_PROVIDERS
from delivery_svc.sms_text import DEFAULT_MAX_SEGMENTS, MAX_SEGMENTS
from notify_core.config import DELIVERY_CONCURRENCY
from notify_core.config_rules import concurrency
from notify_core.errors import ConfigError
from notify_core.settings_decl import Setting, SettingsGroup, choice, whole


def _concurrency(channel: str, what: str) -> Setting[Mapping[str, int]]:
    return Setting(
        f"NOTIFY_{channel}_CONCURRENCY",
        concurrency(DELIVERY_CONCURRENCY.default),
        DELIVERY_CONCURRENCY.default,
        f"{what} deliveries in flight per priority, as `NOTIFY_DELIVERY_CONCURRENCY`",
    )


PUSH_CONCURRENCY = _concurrency(
    "PUSH", "push (FCM, APNs); a push delivery sends to all of its user's devices at once:"
)
WEBPUSH_CONCURRENCY = _concurrency("WEBPUSH", "web push")
SMS_CONCURRENCY = _concurrency("SMS", "SMS")
DEVICE_STALE_DAYS: Setting[int] = Setting(
    "NOTIFY_DEVICE_STALE_DAYS",
    whole(1, 3650),
    270,
    "devices no provider took a push for in this many days are deactivated (checked "
    "hourly; FCM considers a token unused for 270 days expired)",
)
SMS_PROVIDER: Setting[str | None] = Setting(
    "NOTIFY_SMS_PROVIDER",
    choice(*SMS_PROVIDERS),
    None,
    f"who sends SMS: {', '.join(f'`{n}`' for n in SMS_PROVIDERS)}",
    shown_default="unset: SMS off (SMS deliveries fail saying so)",
)
SMS_FALLBACK: Setting[str | None] = Setting(
    "NOTIFY_SMS_FALLBACK",
    choice(*SMS_PROVIDERS),
    None,
    "a second SMS provider, used while the first one's breaker is open",
)
PUSH = SettingsGroup(
    "delivery_svc/config_push.py",
    (
        PUSH_CONCURRENCY,
        WEBPUSH_CONCURRENCY,
        SMS_CONCURRENCY,
        DEVICE_STALE_DAYS,
        SMS_PROVIDER,
        SMS_FALLBACK,
        MAX_SEGMENTS,
    ),
)
GROUPS: tuple[SettingsGroup, ...] = (
    PUSH,
    *(spec.settings for spec in PUSH_PROVIDERS.values()),
    *(spec.settings for spec in SMS_PROVIDERS.values()),
)
"""Every push and SMS setting, in the README's order."""


def _defaults() -> Mapping[str, int]:
    return MappingProxyType(dict(DELIVERY_CONCURRENCY.default))


@dataclass(frozen=True, slots=True)
class PushSettings:
    providers: Mapping[str, Any] = field(default_factory=dict)
    """Each configured push provider's settings by platform (``fcm``, ``apns``,
    ``webpush``), as its module's ``read_settings`` answered; absent: off."""
    push_concurrency: Mapping[str, int] = field(default_factory=_defaults)
    webpush_concurrency: Mapping[str, int] = field(default_factory=_defaults)
    sms_concurrency: Mapping[str, int] = field(default_factory=_defaults)
    device_stale_days: int = DEVICE_STALE_DAYS.default
    sms_provider: str | None = None
    sms_fallback: str | None = None
    sms: Mapping[str, Any] = field(default_factory=dict)
    """The SMS providers' settings by name, as their modules' ``read_settings`` answered."""
    sms_max_segments: int = DEFAULT_MAX_SEGMENTS


def push_settings(env: Mapping[str, str]) -> PushSettings:
    """The push and SMS settings, checked (:class:`ConfigError` names a bad variable)."""
    providers = {}
    for spec in PUSH_PROVIDERS.values():
        read = spec.read_settings(env)
        if read is not None:
            providers[spec.platform] = read
    provider, fallback = SMS_PROVIDER.read(env), SMS_FALLBACK.read(env)
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
        push_concurrency=PUSH_CONCURRENCY.read(env),
        webpush_concurrency=WEBPUSH_CONCURRENCY.read(env),
        sms_concurrency=SMS_CONCURRENCY.read(env),
        device_stale_days=DEVICE_STALE_DAYS.read(env),
        sms_provider=provider,
        sms_fallback=fallback,
        sms={name: read for name, read in sms.items() if read is not None},
        sms_max_segments=MAX_SEGMENTS.read(env),
    )
