"""The push, web push (and SMS) workers of a node, and the sweep of unused devices."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime

from delivery_svc.config_push import PushSettings
from delivery_svc.failover import Failover
from delivery_svc.providers.base import PushMessage
from delivery_svc.providers.registry import PUSH_PROVIDERS
from delivery_svc.push import PLATFORMS, PushChannel, own_text, template_text
from delivery_svc.worker import DeliveryWorker
from notify_core.config import Settings
from notify_core.db.engine import Database
from notify_core.domain import Channel
from notify_core.errors import NotifyError
from notify_core.parts import Closer
from notify_core.queue.base import WorkQueue
from preference_svc.device_lifecycle import deactivate_stale
from preference_svc.store import PreferenceStore
from template_svc.templates import Templates

log = logging.getLogger(__name__)

SWEEP_INTERVAL_SECONDS = 3600.0
"""How often unused devices are looked for."""


def push_providers(settings: Settings, push: PushSettings) -> dict[str, Failover[PushMessage]]:
    """The configured push providers by platform, each behind its breaker."""
    out: dict[str, Failover[PushMessage]] = {}
    for spec in PUSH_PROVIDERS.values():
        if spec.platform in push.providers:
            out[spec.platform] = Failover(
                spec.build(push.providers[spec.platform]),
                threshold=settings.breaker_threshold,
                reset=settings.breaker_reset,
                channel=spec.platform,
            )
    return out


def push_workers(
    settings: Settings,
    push: PushSettings,
    database: Database,
    queue: WorkQueue,
    preferences: PreferenceStore,
    templates: Templates | None = None,
) -> tuple[list[DeliveryWorker], list[Closer]]:
    """One worker for ``push`` (FCM, APNs) and one for ``webpush``; each runs even when no
    provider of its platforms is configured, and fails those sends saying so."""
    providers = push_providers(settings, push)
    concurrency: dict[str, Mapping[str, int]] = {
        Channel.PUSH: push.push_concurrency,
        Channel.WEBPUSH: push.webpush_concurrency,
    }
    workers = [
        DeliveryWorker(
            database,
            queue,
            PushChannel(
                name,
                database,
                preferences,
                {p: f for p, f in providers.items() if p in platforms},
                text=own_text if templates is None else template_text(templates),
            ),
            concurrency=concurrency[name],
            schedule=settings.retry_schedule,
            lease=settings.send_lease,
        )
        for name, platforms in PLATFORMS.items()
    ]
    return workers, list(providers.values())


async def sweep_devices(database: Database, preferences: PreferenceStore, days: int) -> None:
    """Deactivate devices unused for ``days`` days, now and every hour."""
    while True:
        try:
            count = await deactivate_stale(database, preferences, datetime.now(UTC), days)
            if count:
                log.info("deactivated %d devices unused for %d days", count, days)
        except NotifyError as exc:
            log.warning("device sweep failed (%s); trying again later", exc)
        await asyncio.sleep(SWEEP_INTERVAL_SECONDS)
