"""Every ``NOTIFY_*`` setting Notify reads, declared once.

The parsers (``notify_core/config.py``, and each service's own beside it:
``delivery_svc/config_email.py``, ``delivery_svc/config_webhook.py``,
``digest_svc/config_digest.py``) read the environment through :class:`DeclaredEnv`, which
refuses a name not declared here, so the list cannot drift from what the code reads; the
names are data, so the core declares every service's without importing it. Start-up
refuses a ``NOTIFY_*`` name in the environment or ``.env`` that is not declared here (a
typo), naming the nearest known one. The README's configuration table is checked against
:data:`KNOWN` by the tests.

A new setting: add its name to the group of the module that parses it (or a new group),
then to the README's configuration table.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping

from notify_core.errors import ConfigError

PREFIX = "NOTIFY_"
NOT_SETTINGS = ("NOTIFY_TEST_",)
"""Prefixes of ``NOTIFY_*`` names that are not settings of the service (the test suite's)."""

CORE = (
    "NOTIFY_DATABASE_URL",
    "NOTIFY_REDIS_URL",
    "NOTIFY_AMQP_URL",
    "NOTIFY_HTTP_PORT",
    "NOTIFY_GRPC_PORT",
    "NOTIFY_HOST",
    "NOTIFY_API_KEYS",
    "NOTIFY_JWT_SECRET",
    "NOTIFY_NAMESPACE",
    "NOTIFY_INGEST_TARGET",
    "NOTIFY_LOG_LEVEL",
    "NOTIFY_WS_SEND_QUEUE",
    "NOTIFY_WS_PING_INTERVAL",
    "NOTIFY_SQLITE_SYNCHRONOUS",
    "NOTIFY_RATE_LIMITS",
    "NOTIFY_OVER_LIMIT",
    "NOTIFY_DEDUP_WINDOW",
    "NOTIFY_SCHEDULER_INTERVAL",
    "NOTIFY_SIGNING_SECRET",
    "NOTIFY_PUBLIC_URL",
    "NOTIFY_RETRY_SCHEDULE",
    "NOTIFY_SEND_LEASE",
    "NOTIFY_HTTP_HEADER_TIMEOUT",
    "NOTIFY_HTTP_IDLE_TIMEOUT",
    "NOTIFY_DELIVERY_CONCURRENCY",
    "NOTIFY_BREAKER_THRESHOLD",
    "NOTIFY_BREAKER_RESET",
    "NOTIFY_EDGE_PROCESSES",
    "NOTIFY_MAX_CONNECTIONS",
    "NOTIFY_MAX_CONNECTIONS_PER_USER",
    "NOTIFY_SHUTDOWN_GRACE",
    "NOTIFY_PRESENCE_TTL",
)
"""Parsed in ``notify_core/config.py``."""

EMAIL = (
    "NOTIFY_EMAIL_PROVIDER",
    "NOTIFY_EMAIL_FALLBACK",
    "NOTIFY_EMAIL_FROM",
    "NOTIFY_SMTP_HOST",
    "NOTIFY_SMTP_PORT",
    "NOTIFY_SMTP_USERNAME",
    "NOTIFY_SMTP_PASSWORD",
    "NOTIFY_SMTP_STARTTLS",
    "NOTIFY_SMTP_POOL",
    "NOTIFY_SES_REGION",
    "NOTIFY_SES_ENDPOINT_URL",
    "NOTIFY_SES_SNS_TOPIC_ARNS",
    "NOTIFY_SENDGRID_API_KEY",
    "NOTIFY_SENDGRID_BASE_URL",
    "NOTIFY_SENDGRID_WEBHOOK_PUBLIC_KEY",
)
"""Parsed in ``delivery_svc/config_email.py``."""

WEBHOOK = (
    "NOTIFY_WEBHOOK_SECRET",
    "NOTIFY_WEBHOOK_TIMEOUT",
    "NOTIFY_WEBHOOK_ALLOW_PRIVATE",
    "NOTIFY_WEBHOOK_ALLOWED_HOSTS",
    "NOTIFY_WEBHOOK_ALLOW_HTTP",
)
"""Parsed in ``delivery_svc/config_webhook.py``."""

DIGEST = (
    "NOTIFY_DIGEST_INTERVAL",
    "NOTIFY_DIGEST_LEASE",
    "NOTIFY_DIGEST_PAGE",
    "NOTIFY_DIGEST_BATCH",
    "NOTIFY_DIGEST_CONCURRENCY",
    "NOTIFY_DIGEST_RETRY",
)
"""Parsed in ``digest_svc/config_digest.py``."""

PUSH = (
    "NOTIFY_PUSH_CONCURRENCY",
    "NOTIFY_WEBPUSH_CONCURRENCY",
    "NOTIFY_SMS_CONCURRENCY",
    "NOTIFY_DEVICE_STALE_DAYS",
    "NOTIFY_FCM_CREDENTIALS",
    "NOTIFY_FCM_ENDPOINT",
    "NOTIFY_APNS_KEY_FILE",
    "NOTIFY_APNS_KEY_ID",
    "NOTIFY_APNS_TEAM_ID",
    "NOTIFY_APNS_TOPIC",
    "NOTIFY_APNS_ENDPOINT",
    "NOTIFY_VAPID_PRIVATE_KEY",
    "NOTIFY_VAPID_SUBJECT",
    "NOTIFY_SMS_PROVIDER",
    "NOTIFY_SMS_FALLBACK",
    "NOTIFY_SMS_MAX_SEGMENTS",
    "NOTIFY_TWILIO_ACCOUNT_SID",
    "NOTIFY_TWILIO_AUTH_TOKEN",
    "NOTIFY_TWILIO_FROM",
    "NOTIFY_TWILIO_BASE_URL",
    "NOTIFY_SNS_REGION",
    "NOTIFY_SNS_ENDPOINT_URL",
)
"""Parsed in ``delivery_svc/config_push.py`` and the push and SMS provider modules."""

KNOWN: frozenset[str] = frozenset((*CORE, *EMAIL, *WEBHOOK, *DIGEST, *PUSH))
"""Every setting Notify reads."""


def is_setting_name(name: str) -> bool:
    """Whether ``name`` is in the settings' namespace (``NOTIFY_*``, not the test suite's)."""
    return name.startswith(PREFIX) and not name.startswith(NOT_SETTINGS)


def nearest(name: str) -> str:
    """The known setting whose name is most like ``name``."""
    return difflib.get_close_matches(name, sorted(KNOWN), n=1, cutoff=0.0)[0]


def check_known(env: Mapping[str, str]) -> None:
    """:class:`ConfigError` naming the first ``NOTIFY_*`` name of ``env`` that is not a
    setting, and the known one it most resembles."""
    for name in sorted(env):
        if is_setting_name(name) and name not in KNOWN:
            raise ConfigError(f"{name} is not a setting of Notify; did you mean {nearest(name)}?")


class DeclaredEnv(Mapping[str, str]):
    """The environment as the parsers see it: reading a name not in :data:`KNOWN` raises
    ``LookupError`` (a setting read but not declared is a bug, found by any test)."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def _declared(self, name: str) -> str:
        if name not in KNOWN:
            raise LookupError(f"{name} is read but not declared in notify_core/config_names.py")
        return name

    def __getitem__(self, name: str) -> str:
        return self._values[self._declared(name)]  # Mapping.get and `in` come through here

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)
