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

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from email import policy as email_policy

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from notify_core.constants import (
    EMAIL_DEFAULT_FROM,
    EMAIL_PROVIDERS,
    SENDGRID_DEFAULT_BASE_URL,
    SMTP_POOL_DEFAULT,
    SMTP_POOL_MAX,
    SMTP_STARTTLS_MODES,
)
from notify_core.errors import ConfigError
from notify_core.redact import redact_url

_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_TOPIC_ARN_RE = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]{1,256}$")


@dataclass(frozen=True, slots=True)
class EmailSettings:
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


def _text(env: Mapping[str, str], name: str) -> str | None:
    raw = (env.get(name) or "").strip()
    return raw or None


def _choice(env: Mapping[str, str], name: str, default: str | None) -> str | None:
    raw = (_text(env, name) or default or "").lower() or None
    if raw is not None and raw not in EMAIL_PROVIDERS:
        raise ConfigError(f"{name} must be one of {', '.join(EMAIL_PROVIDERS)}, got {raw!r}")
    return raw


def _whole(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def _http_url(env: Mapping[str, str], name: str) -> str | None:
    raw = _text(env, name)
    if raw is not None and not raw.startswith(("http://", "https://")):
        raise ConfigError(f"{name} must start with http:// or https://; got {redact_url(raw)!r}")
    return raw.rstrip("/") if raw else None


def _sender(env: Mapping[str, str]) -> str:
    name = "NOTIFY_EMAIL_FROM"
    raw = _text(env, name) or EMAIL_DEFAULT_FROM
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


def _topic_arns(env: Mapping[str, str]) -> tuple[str, ...]:
    name = "NOTIFY_SES_SNS_TOPIC_ARNS"
    arns = tuple(a.strip() for a in (_text(env, name) or "").split(",") if a.strip())
    for arn in arns:
        if not _TOPIC_ARN_RE.match(arn):
            raise ConfigError(
                f"{name} must be SNS topic ARNs like arn:aws:sns:eu-west-1:123456789012:ses, "
                f"got {arn!r}"
            )
    return arns


def _sendgrid_public_key(env: Mapping[str, str]) -> str | None:
    name = "NOTIFY_SENDGRID_WEBHOOK_PUBLIC_KEY"
    raw = _text(env, name)
    if raw is None:
        return None
    try:
        if "-----BEGIN" in raw:
            key = serialization.load_pem_public_key(raw.encode())
        else:
            key = serialization.load_der_public_key(
                base64.b64decode("".join(raw.split()), validate=True)
            )
    except (ValueError, binascii.Error):
        raise ConfigError(f"{name} is not a public key (base64 DER or PEM)") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ConfigError(f"{name} must be an ECDSA P-256 key, as SendGrid gives it")
    return raw


def email_settings(env: Mapping[str, str]) -> EmailSettings:
    """Every email provider setting, checked; a provider in use without what it needs
    raises :class:`ConfigError` naming the missing variable."""
    provider = _choice(env, "NOTIFY_EMAIL_PROVIDER", "smtp") or "smtp"
    fallback = _choice(env, "NOTIFY_EMAIL_FALLBACK", None)
    if fallback == provider:
        raise ConfigError("NOTIFY_EMAIL_FALLBACK must differ from NOTIFY_EMAIL_PROVIDER")
    in_use = {provider, fallback}
    which = "NOTIFY_EMAIL_PROVIDER or NOTIFY_EMAIL_FALLBACK"

    username = _text(env, "NOTIFY_SMTP_USERNAME")
    password = env.get("NOTIFY_SMTP_PASSWORD") or None
    if username and not password:
        raise ConfigError("NOTIFY_SMTP_PASSWORD is required when NOTIFY_SMTP_USERNAME is set")
    if password and not username:
        raise ConfigError("NOTIFY_SMTP_USERNAME is required when NOTIFY_SMTP_PASSWORD is set")
    starttls = (_text(env, "NOTIFY_SMTP_STARTTLS") or "auto").lower()
    if starttls not in SMTP_STARTTLS_MODES:
        raise ConfigError(
            f"NOTIFY_SMTP_STARTTLS must be one of {', '.join(SMTP_STARTTLS_MODES)}, "
            f"got {starttls!r}"
        )

    region = _text(env, "NOTIFY_SES_REGION")
    if region is not None and not _REGION_RE.match(region):
        raise ConfigError(f"NOTIFY_SES_REGION must be an AWS region like eu-west-1, got {region!r}")
    if "ses" in in_use and region is None:
        raise ConfigError(f"NOTIFY_SES_REGION is required when {which} is ses")

    api_key = _text(env, "NOTIFY_SENDGRID_API_KEY")
    if "sendgrid" in in_use and api_key is None:
        raise ConfigError(f"NOTIFY_SENDGRID_API_KEY is required when {which} is sendgrid")

    return EmailSettings(
        provider=provider,
        fallback=fallback,
        sender=_sender(env),
        smtp_host=_text(env, "NOTIFY_SMTP_HOST") or "localhost",
        smtp_port=_whole(env, "NOTIFY_SMTP_PORT", 25, 1, 65535),
        smtp_username=username,
        smtp_password=password,
        smtp_starttls=starttls,
        smtp_pool=_whole(env, "NOTIFY_SMTP_POOL", SMTP_POOL_DEFAULT, 1, SMTP_POOL_MAX),
        ses_region=region,
        ses_endpoint_url=_http_url(env, "NOTIFY_SES_ENDPOINT_URL"),
        ses_sns_topic_arns=_topic_arns(env),
        sendgrid_api_key=api_key,
        sendgrid_base_url=_http_url(env, "NOTIFY_SENDGRID_BASE_URL") or SENDGRID_DEFAULT_BASE_URL,
        sendgrid_webhook_public_key=_sendgrid_public_key(env),
    )
