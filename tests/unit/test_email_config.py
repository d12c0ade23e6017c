"""Email provider settings and choosing providers by configuration."""

from __future__ import annotations

import pytest

from delivery_svc.providers.registry import create_email_providers
from delivery_svc.providers.sendgrid import PROVIDER as SENDGRID
from delivery_svc.providers.sendgrid import SendGridProvider
from delivery_svc.providers.ses import SesProvider
from delivery_svc.providers.smtp import PROVIDER as SMTP
from delivery_svc.providers.smtp import SmtpProvider
from notify_app.settings import load_settings
from notify_core.errors import ConfigError

SG_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHB"
    "cepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA=="
)


def _load(**env: str) -> object:
    return load_settings(env, env_file=None)


def test_defaults_are_smtp_on_localhost() -> None:
    email = load_settings({}, env_file=None).email
    assert (email.provider, email.fallback) == ("smtp", None)
    smtp = SMTP.settings_of(email)
    assert (smtp.host, smtp.port, smtp.pool) == ("localhost", 25, 16)
    assert smtp.starttls == "auto"
    assert email.sender == "Notify <no-reply@localhost>"
    assert SENDGRID.settings_of(email).base_url == "https://api.sendgrid.com"
    assert load_settings({}, env_file=None).email_from == "Notify <no-reply@localhost>"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"NOTIFY_EMAIL_PROVIDER": "ses"}, "NOTIFY_SES_REGION"),
        ({"NOTIFY_EMAIL_PROVIDER": "sendgrid"}, "NOTIFY_SENDGRID_API_KEY"),
        ({"NOTIFY_EMAIL_FALLBACK": "sendgrid"}, "NOTIFY_SENDGRID_API_KEY"),
        ({"NOTIFY_EMAIL_PROVIDER": "mailgun"}, "NOTIFY_EMAIL_PROVIDER"),
        ({"NOTIFY_EMAIL_FALLBACK": "smtp"}, "NOTIFY_EMAIL_FALLBACK"),
        ({"NOTIFY_SMTP_USERNAME": "u"}, "NOTIFY_SMTP_PASSWORD"),
        ({"NOTIFY_SMTP_PASSWORD": "p"}, "NOTIFY_SMTP_USERNAME"),
        ({"NOTIFY_SMTP_STARTTLS": "sometimes"}, "NOTIFY_SMTP_STARTTLS"),
        ({"NOTIFY_SMTP_PORT": "70000"}, "NOTIFY_SMTP_PORT"),
        ({"NOTIFY_SMTP_POOL": "0"}, "NOTIFY_SMTP_POOL"),
        ({"NOTIFY_EMAIL_FROM": "nobody"}, "NOTIFY_EMAIL_FROM"),
        ({"NOTIFY_SES_REGION": "Frankfurt"}, "NOTIFY_SES_REGION"),
        ({"NOTIFY_SES_ENDPOINT_URL": "localhost:5000"}, "NOTIFY_SES_ENDPOINT_URL"),
        (
            {"NOTIFY_SENDGRID_WEBHOOK_PUBLIC_KEY": "bm90IGEga2V5"},
            "NOTIFY_SENDGRID_WEBHOOK_PUBLIC_KEY",
        ),
    ],
)
def test_a_missing_or_malformed_setting_is_named(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        _load(**env)


def test_secrets_stay_out_of_repr() -> None:
    settings = load_settings(
        {
            "NOTIFY_SMTP_USERNAME": "user",
            "NOTIFY_SMTP_PASSWORD": "smtp-secret-value",
            "NOTIFY_SENDGRID_API_KEY": "SG.secret-value",
        },
        env_file=None,
    )
    assert "smtp-secret-value" not in repr(settings)
    assert "SG.secret-value" not in repr(settings)


async def test_providers_are_chosen_by_configuration() -> None:
    settings = load_settings(
        {
            "NOTIFY_EMAIL_PROVIDER": "sendgrid",
            "NOTIFY_EMAIL_FALLBACK": "ses",
            "NOTIFY_SENDGRID_API_KEY": "SG.key",
            "NOTIFY_SENDGRID_BASE_URL": "http://127.0.0.1:9/",
            "NOTIFY_SENDGRID_WEBHOOK_PUBLIC_KEY": SG_KEY,
            "NOTIFY_SES_REGION": "eu-west-1",
        },
        env_file=None,
    )
    primary, fallback = create_email_providers(settings.email)
    try:
        assert isinstance(primary, SendGridProvider)
        assert primary.base_url == "http://127.0.0.1:9"
        assert isinstance(fallback, SesProvider)
    finally:
        await primary.close()
        if fallback is not None:
            await fallback.close()

    smtp_settings = load_settings(
        {
            "NOTIFY_SMTP_HOST": "mail.example.com",
            "NOTIFY_SMTP_PORT": "587",
            "NOTIFY_SMTP_POOL": "2",
        },
        env_file=None,
    )
    smtp, none = create_email_providers(smtp_settings.email)
    assert none is None
    assert isinstance(smtp, SmtpProvider)
    assert (smtp.host, smtp.port, smtp.pool_size) == ("mail.example.com", 587, 2)
    await smtp.close()
