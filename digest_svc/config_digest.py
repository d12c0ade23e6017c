"""Digest settings (``NOTIFY_DIGEST_*``), parsed from the same environment as the core settings.

``NOTIFY_DIGEST_INTERVAL`` (30s)
    How often each node's DigestService looks for due users and requested runs, and the
    scheduler lease is renewed.
``NOTIFY_DIGEST_LEASE`` (2m)
    How long the scheduler lease lasts unless renewed: after a crash, another node (or
    the restarted one) takes over this long after the last renewal. More than the
    interval.
``NOTIFY_DIGEST_PAGE`` (1000)
    Users read per page of a run.
``NOTIFY_DIGEST_BATCH`` (100)
    Users whose digests are sent, then recorded in one transaction. A crash can resend
    at most the batch being recorded and the one being sent (same Message-ID).
``NOTIFY_DIGEST_CONCURRENCY`` (50)
    Digest emails in flight at once.
``NOTIFY_DIGEST_RETRY`` (5m)
    After a send failed and may succeed later (a timeout, a 4xx, every circuit open),
    how long before the user is tried again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from notify_core.config import parse_duration
from notify_core.errors import ConfigError


@dataclass(frozen=True, slots=True)
class DigestSettings:
    interval: float = 30.0
    lease: float = 120.0
    page: int = 1_000
    batch: int = 100
    concurrency: int = 50
    retry: float = 300.0


def _seconds(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    value = parse_duration(raw, name)
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo:g}s and {hi:g}s, got {raw!r}")
    return value


def _count(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise ConfigError(f"{name} must be a whole number from {lo} to {hi}, got {raw!r}")
    return int(raw)


def digest_settings(env: Mapping[str, str]) -> DigestSettings:
    interval = _seconds(env, "NOTIFY_DIGEST_INTERVAL", 30.0, 0.01, 3_600.0)
    lease = _seconds(env, "NOTIFY_DIGEST_LEASE", max(120.0, 2 * interval), 0.1, 86_400.0)
    if lease <= interval:
        raise ConfigError(
            f"NOTIFY_DIGEST_LEASE ({lease:g}s) must be longer than NOTIFY_DIGEST_INTERVAL "
            f"({interval:g}s), or the lease runs out between two renewals"
        )
    return DigestSettings(
        interval=interval,
        lease=lease,
        page=_count(env, "NOTIFY_DIGEST_PAGE", 1_000, 1, 10_000),
        batch=_count(env, "NOTIFY_DIGEST_BATCH", 100, 1, 10_000),
        concurrency=_count(env, "NOTIFY_DIGEST_CONCURRENCY", 50, 1, 1_000),
        retry=_seconds(env, "NOTIFY_DIGEST_RETRY", 300.0, 0.0, 86_400.0),
    )
