"""The email providers a node uses, chosen by configuration (``NOTIFY_EMAIL_PROVIDER`` and
``NOTIFY_EMAIL_FALLBACK``; see :mod:`delivery_svc.config_email`)."""

from __future__ import annotations

from typing import cast

from delivery_svc.config_email import EmailSettings
from delivery_svc.providers.base import EmailProvider
from delivery_svc.providers.events import SendGridWebhookVerifier
from delivery_svc.providers.sendgrid import SendGridProvider
from delivery_svc.providers.ses import SesProvider
from delivery_svc.providers.smtp import SmtpProvider, StartTls
from notify_core.errors import ConfigError


def create_email_provider(name: str, email: EmailSettings) -> EmailProvider:
    """One provider by name (``smtp``, ``ses``, ``sendgrid``) from the email settings."""
    if name == "smtp":
        return SmtpProvider(
            host=email.smtp_host,
            port=email.smtp_port,
            username=email.smtp_username,
            password=email.smtp_password,
            starttls=cast(StartTls, email.smtp_starttls),
            pool_size=email.smtp_pool,
        )
    if name == "ses":
        if email.ses_region is None:
            raise ConfigError("NOTIFY_SES_REGION is required for the ses email provider")
        return SesProvider(region=email.ses_region, endpoint_url=email.ses_endpoint_url)
    if name == "sendgrid":
        if email.sendgrid_api_key is None:
            raise ConfigError("NOTIFY_SENDGRID_API_KEY is required for the sendgrid provider")
        return SendGridProvider(api_key=email.sendgrid_api_key, base_url=email.sendgrid_base_url)
    raise ConfigError(f"NOTIFY_EMAIL_PROVIDER: unknown email provider {name!r}")


def create_email_providers(email: EmailSettings) -> tuple[EmailProvider, EmailProvider | None]:
    """``(primary, fallback or None)``; close both when the node stops."""
    primary = create_email_provider(email.provider, email)
    fallback = create_email_provider(email.fallback, email) if email.fallback else None
    return primary, fallback


def create_sendgrid_webhook_verifier(email: EmailSettings) -> SendGridWebhookVerifier | None:
    """The verifier of SendGrid's signed event webhook, when its key is configured."""
    key = email.sendgrid_webhook_public_key
    return SendGridWebhookVerifier(key) if key else None
