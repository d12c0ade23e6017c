"""Every email provider by its ``NOTIFY_EMAIL_PROVIDER`` name.

A provider is one module declaring ``PROVIDER`` (an
:class:`~delivery_svc.providers.base.EmailProviderSpec`: its settings, how to build it and,
when it has them, its event webhook); adding one is that module and one line here. The
settings (:mod:`delivery_svc.config_email`), the factory below and the event routes
(:mod:`delivery_svc.provider_event_routes`) all go through this dict.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from delivery_svc.providers import apns, fcm, sendgrid, ses, smtp, sns_sms, twilio, webpush
from delivery_svc.providers.base import (
    EmailProvider,
    EmailProviderSpec,
    PushProviderSpec,
    SmsProviderSpec,
)
from notify_core.errors import ConfigError

if TYPE_CHECKING:
    from delivery_svc.config_email import EmailSettings

EMAIL_PROVIDERS: dict[str, EmailProviderSpec[Any]] = {
    "smtp": smtp.PROVIDER,
    "ses": ses.PROVIDER,
    "sendgrid": sendgrid.PROVIDER,
}

PUSH_PROVIDERS: dict[str, PushProviderSpec] = {
    "fcm": fcm.PROVIDER,
    "apns": apns.PROVIDER,
    "webpush": webpush.PROVIDER,
}
"""Push providers by platform (``fcm``, ``apns``, ``webpush``)."""
SMS_PROVIDERS: dict[str, SmsProviderSpec] = {
    "twilio": twilio.PROVIDER,
    "sns": sns_sms.PROVIDER,
}
"""SMS providers by their ``NOTIFY_SMS_PROVIDER`` name."""


def create_email_provider(name: str, email: EmailSettings) -> EmailProvider:
    """One provider by name from the email settings."""
    spec = EMAIL_PROVIDERS.get(name)
    if spec is None:
        raise ConfigError(f"NOTIFY_EMAIL_PROVIDER: unknown email provider {name!r}")
    return spec.build(spec.settings_of(email))


def create_email_providers(email: EmailSettings) -> tuple[EmailProvider, EmailProvider | None]:
    """``(primary, fallback or None)``; close both when the node stops."""
    primary = create_email_provider(email.provider, email)
    fallback = create_email_provider(email.fallback, email) if email.fallback else None
    return primary, fallback
