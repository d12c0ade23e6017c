"""Digest settings (``NOTIFY_DIGEST_*``), declared and parsed here from the same environment
as the core settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from notify_core.errors import ConfigError
from notify_core.settings_decl import Setting, SettingsGroup, duration, whole

INTERVAL = Setting(
    "NOTIFY_DIGEST_INTERVAL",
    duration(0.01, 3_600),
    30.0,
    "how often each node's DigestService looks for due users and requested runs, and renews "
    "the scheduler lease",
)
LEASE = Setting(
    "NOTIFY_DIGEST_LEASE",
    duration(0.1, 86_400),
    120.0,
    "how long the digest scheduler lease lasts unless renewed: after a crash another node "
    "takes over this long after the last renewal; longer than the interval",
    shown_default="`2m`, or twice the interval if that is longer",
)
PAGE = Setting("NOTIFY_DIGEST_PAGE", whole(1, 10_000), 1_000, "users read per page of a run")
BATCH = Setting(
    "NOTIFY_DIGEST_BATCH",
    whole(1, 10_000),
    100,
    "users whose digests are rendered, then recorded and queued for delivery "
    "(`deliver.digest.low`) in one transaction",
)
CONCURRENCY = Setting(
    "NOTIFY_DIGEST_CONCURRENCY",
    whole(1, 1_000),
    50,
    "digest emails in flight at once: the concurrency of the delivery service's digest worker",
)
RETRY = Setting(
    "NOTIFY_DIGEST_RETRY",
    duration(0, 86_400),
    300.0,
    "accepted and checked, no longer used: a digest whose send failed and may succeed later "
    "is retried by the delivery worker on `NOTIFY_RETRY_SCHEDULE`, as any email",
)

DIGEST = SettingsGroup(
    "digest_svc/config_digest.py", (INTERVAL, LEASE, PAGE, BATCH, CONCURRENCY, RETRY)
)


@dataclass(frozen=True, slots=True)
class DigestSettings:
    interval: float = INTERVAL.default
    lease: float = LEASE.default
    page: int = PAGE.default
    batch: int = BATCH.default
    concurrency: int = CONCURRENCY.default
    retry: float = RETRY.default


def digest_settings(env: Mapping[str, str]) -> DigestSettings:
    """Every ``NOTIFY_DIGEST_*`` setting, checked; the lease outlasts the interval."""
    interval = INTERVAL.read(env)
    lease = LEASE.read(env) if LEASE.is_set(env) else max(LEASE.default, 2 * interval)
    if lease <= interval:
        raise ConfigError(
            f"NOTIFY_DIGEST_LEASE ({lease:g}s) must be longer than NOTIFY_DIGEST_INTERVAL "
            f"({interval:g}s), or the lease runs out between two renewals"
        )
    return DigestSettings(
        interval=interval,
        lease=lease,
        page=PAGE.read(env),
        batch=BATCH.read(env),
        concurrency=CONCURRENCY.read(env),
        retry=RETRY.read(env),
    )
