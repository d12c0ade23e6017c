"""Email provider settings (``NOTIFY_EMAIL_*``, ``NOTIFY_SMTP_*``, ``NOTIFY_SES_*``,
``NOTIFY_SENDGRID_*``), parsed from the same environment as the core settings.

``NOTIFY_EMAIL_PROVIDER`` (smtp)
    ``smtp``, ``ses`` or ``sendgrid``: who sends email.
``NOTIFY_EMAIL_FALLBACK`` (unset)
    A second provider, used while the first one's circuit is open.
``NOTIFY_EMAIL_FROM`` (``Notify <no-reply@localhost>``)
    The From of every email.
``NOTIFY_SMTP_HOST`` (localhost), ``NOTIFY_SMTP_PORT`` (25)
``NOTIFY_SMTP_USERNAME``, ``NOTIFY_SMTP_PASSWORD`` (unset: no AUTH; set both or neither)
``NOTIFY_SMTP_STARTTLS`` (auto)
    ``auto`` upgrades when the server offers STARTTLS, ``always`` requires it, ``never``
    stays in plain text.
``NOTIFY_SMTP_POOL`` (4)
    Connections kept open to the SMTP server and shared by every send.
``NOTIFY_SES_REGION`` (required for ses), ``NOTIFY_SES_ENDPOINT_URL`` (unset: AWS's)
    Credentials come from the usual AWS chain (``AWS_ACCESS_KEY_ID``..., profile, role).
``NOTIFY_SES_SNS_TOPIC_ARNS`` (unset)
    Comma-separated ARNs of the SNS topics SES publishes its events to: ``/webhooks/ses``
    accepts (and confirms subscriptions of) these topics only. Unset turns the endpoint
    off (404).
``NOTIFY_SENDGRID_API_KEY`` (required for sendgrid),
``NOTIFY_SENDGRID_BASE_URL`` (``https://api.sendgrid.com``)
``NOTIFY_SENDGRID_WEBHOOK_PUBLIC_KEY`` (unset)
    The Signed Event Webhook's verification key (base64, as SendGrid shows it, or PEM).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from email import policy as email_policy

from delivery_svc.config_values import text
from delivery_svc.providers.registry import EMAIL_PROVIDERS
from notify_core.constants import (
    EMAIL_DEFAULT_FROM,
    SENDGRID_DEFAULT_BASE_URL,
    SMTP_POOL_DEFAULT,
)
from notify_core.errors import ConfigError


@dataclass(frozen=True, slots=True)
class EmailSettings:
    """The email settings of a node; each provider's fields are read and checked by its
    module (``read_settings`` in :mod:`delivery_svc.providers`)."""

    provider: str = "smtp"
    fallback: str | None = None
    sender: str = EMAIL_DEFAULT_FROM
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_starttls: str = "auto"
    smtp_pool: int = SMTP_POOL_DEFAULT
    ses_region: str | None = None
    ses_endpoint_url: str | None = None
    ses_sns_topic_arns: tuple[str, ...] = ()
    sendgrid_api_key: str | None = field(default=None, repr=False)
    sendgrid_base_url: str = SENDGRID_DEFAULT_BASE_URL
    sendgrid_webhook_public_key: str | None = None


def _choice(env: Mapping[str, str], name: str, default: str | None) -> str | None:
    raw = (text(env, name) or default or "").lower() or None
    if raw is not None and raw not in EMAIL_PROVIDERS:
        raise ConfigError(f"{name} must be one of {', '.join(EMAIL_PROVIDERS)}, got {raw!r}")
    return raw


def _sender(env: Mapping[str, str]) -> str:
    name = "NOTIFY_EMAIL_FROM"
    raw = text(env, name) or EMAIL_DEFAULT_FROM
    problem = f"{name} must be one address like 'Notify <no-reply@example.com>', got {raw!r}"
    if "\r" in raw or "\n" in raw:
        raise ConfigError(problem)
    try:
        header = email_policy.SMTP.header_factory("From", raw)
        addresses = header.addresses
    except Exception:
        raise ConfigError(problem) from None
    if header.defects or len(addresses) != 1 or not addresses[0].domain:
        raise ConfigError(problem)
    return raw


def email_settings(env: Mapping[str, str]) -> EmailSettings:
    """Every email provider setting, checked; a provider in use without what it needs
    raises :class:`ConfigError` naming the missing variable."""
    provider = _choice(env, "NOTIFY_EMAIL_PROVIDER", "smtp") or "smtp"
    fallback = _choice(env, "NOTIFY_EMAIL_FALLBACK", None)
    if fallback == provider:
        raise ConfigError("NOTIFY_EMAIL_FALLBACK must differ from NOTIFY_EMAIL_PROVIDER")
    fields = {}
    for name, spec in EMAIL_PROVIDERS.items():
        fields.update(spec.read_settings(env, name in (provider, fallback)))
    return EmailSettings(provider=provider, fallback=fallback, sender=_sender(env), **fields)
