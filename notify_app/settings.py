"""A node's settings: the core's, and each service's own, parsed from one environment.

Every ``NOTIFY_*`` setting is declared once, beside the code that parses it
(:mod:`notify_core.settings_decl`): the core's in :mod:`notify_core.config`, each service's
in its own package. Here the groups come together, once, at start: :data:`GROUPS` is every
declared setting (a ``NOTIFY_*`` name outside it is refused as a typo, and the README's
configuration table is generated from it: ``scripts/settings_table.py``), and a malformed
value of any of them stops the process before anything runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from delivery_svc.config_email import GROUPS as EMAIL_GROUPS
from delivery_svc.config_email import EmailSettings, email_settings
from delivery_svc.config_push import GROUPS as PUSH_GROUPS
from delivery_svc.config_push import PushSettings, push_settings
from delivery_svc.config_webhook import WEBHOOK, WebhookSettings, webhook_settings
from digest_svc.config_digest import DIGEST, DigestSettings, digest_settings
from notify_core.config import CORE, Settings, core_settings, read_environment
from notify_core.settings_decl import SettingsGroup

GROUPS: tuple[SettingsGroup, ...] = (CORE, *EMAIL_GROUPS, WEBHOOK, DIGEST, *PUSH_GROUPS)
"""Every setting of Notify, in the README's order."""

KNOWN: frozenset[str] = frozenset(name for group in GROUPS for name in group.names)
"""The name of every setting Notify reads."""


@dataclass(frozen=True)
class NodeSettings(Settings):
    """The core settings, and the settings of the services that have their own."""

    webhook: WebhookSettings = field(default_factory=WebhookSettings)
    """NOTIFY_WEBHOOK_*: outgoing webhooks (delivery_svc/config_webhook.py)."""
    email: EmailSettings = field(default_factory=EmailSettings)
    """NOTIFY_EMAIL_* and each email provider's (delivery_svc/config_email.py)."""
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
    env = read_environment(environ, env_file, KNOWN)
    return NodeSettings(
        **vars(core_settings(env)),
        webhook=webhook_settings(env),
        email=email_settings(env),
        digest=digest_settings(env),
        push=push_settings(env),
    )


def dump(
    environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
) -> dict[str, str]:
    """Every setting's value as it may be shown (secrets ``***``, URL passwords redacted)."""
    env = read_environment(environ, env_file, KNOWN)
    return {name: shown for group in GROUPS for name, shown in group.dump(env).items()}
