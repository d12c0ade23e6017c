"""A node's settings: the core's, and each service's own, parsed from one environment.

The core parses what it and several services share (:mod:`notify_core.config`); each
service parses its own beside its code. Here they come together, once, at start: a
malformed value of any of them stops the process before anything runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from delivery_svc.config_email import EmailSettings, email_settings
from delivery_svc.config_push import PushSettings, push_settings
from delivery_svc.config_webhook import WebhookSettings, webhook_settings
from digest_svc.config_digest import DigestSettings, digest_settings
from notify_core.config import Settings, core_settings, read_environment


@dataclass(frozen=True)
class NodeSettings(Settings):
    """The core settings, and the settings of the services that have their own."""

    webhook: WebhookSettings = field(default_factory=WebhookSettings)
    """NOTIFY_WEBHOOK_*: outgoing webhooks (delivery_svc/config_webhook.py)."""
    email: EmailSettings = field(default_factory=EmailSettings)
    """NOTIFY_EMAIL_*, _SMTP_*, _SES_*, _SENDGRID_*: email providers
    (delivery_svc/config_email.py)."""
    digest: DigestSettings = field(default_factory=DigestSettings)
    """NOTIFY_DIGEST_*: digest runs (digest_svc/config_digest.py)."""
    push: PushSettings = field(default_factory=PushSettings)
    """Push, web push and SMS: providers, concurrency, device lifecycle
    (delivery_svc/config_push.py)."""

    @property
    def email_from(self) -> str:
        """NOTIFY_EMAIL_FROM: the From of every email."""
        return self.email.sender


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
) -> NodeSettings:
    """Every setting of ``environ`` (default ``os.environ``) over an optional ``.env`` file;
    a ``NOTIFY_*`` name that is not a setting, or a malformed value, raises ConfigError."""
    env = read_environment(environ, env_file)
    core = core_settings(env)
    return NodeSettings(
        **vars(core),
        webhook=webhook_settings(env),
        email=email_settings(env),
        digest=digest_settings(env),
        push=push_settings(env),
    )
