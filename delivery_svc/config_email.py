"""Email settings: who sends (``NOTIFY_EMAIL_PROVIDER``, ``NOTIFY_EMAIL_FALLBACK``), from
whom (``NOTIFY_EMAIL_FROM``), and each provider's own settings, which its module declares
and reads (``SETTINGS`` and ``read_settings`` in :mod:`delivery_svc.providers`) and which
:class:`EmailSettings` holds by provider name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from email import policy as email_policy

from delivery_svc.providers.registry import EMAIL_PROVIDERS
from notify_core.constants import EMAIL_DEFAULT_FROM
from notify_core.errors import ConfigError
from notify_core.settings_decl import Parser, Setting, SettingsGroup, choice


def _sender(raw: str, name: str) -> str:
    value = raw.strip()
    problem = f"{name} must be one address like 'Notify <no-reply@example.com>', got {value!r}"
    if "\r" in value or "\n" in value:
        raise ConfigError(problem)
    try:
        header = email_policy.SMTP.header_factory("From", value)
        addresses = header.addresses
    except Exception:
        raise ConfigError(problem) from None
    if header.defects or len(addresses) != 1 or not addresses[0].domain:
        raise ConfigError(problem)
    return value


_PROVIDER = choice(*EMAIL_PROVIDERS)

PROVIDER = Setting("NOTIFY_EMAIL_PROVIDER", _PROVIDER, "smtp", "who sends email")
FALLBACK: Setting[str | None] = Setting(
    "NOTIFY_EMAIL_FALLBACK",
    _PROVIDER,
    None,
    "a second provider, used while the first one's breaker is open",
)
FROM = Setting(
    "NOTIFY_EMAIL_FROM",
    Parser(_sender),
    EMAIL_DEFAULT_FROM,
    "the From of every email (one address)",
)

EMAIL = SettingsGroup("delivery_svc/config_email.py", (PROVIDER, FALLBACK, FROM))
"""The email settings that are no one provider's."""

GROUPS = (EMAIL, *(spec.settings for spec in EMAIL_PROVIDERS.values()))
"""Every email setting: the ones above, then each provider's, in the registry's order."""


@dataclass(frozen=True, slots=True)
class EmailSettings:
    """The email settings of a node. ``providers`` holds each provider's own settings by
    its name, as its module declares them; read one with ``spec.settings_of(email)``
    (:class:`~delivery_svc.providers.base.EmailProviderSpec`), which answers the
    provider's defaults when it has none here."""

    provider: str = PROVIDER.default
    fallback: str | None = FALLBACK.default
    sender: str = FROM.default
    providers: Mapping[str, object] = field(default_factory=dict)


def email_settings(env: Mapping[str, str]) -> EmailSettings:
    """Every email setting, checked; a provider in use without what it needs raises
    :class:`ConfigError` naming the missing variable."""
    provider = PROVIDER.read(env)
    fallback = FALLBACK.read(env)
    if fallback == provider:
        raise ConfigError("NOTIFY_EMAIL_FALLBACK must differ from NOTIFY_EMAIL_PROVIDER")
    providers = {
        name: spec.read_settings(env, name in (provider, fallback))
        for name, spec in EMAIL_PROVIDERS.items()
    }
    return EmailSettings(provider, fallback, FROM.read(env), providers)
