"""The push, web push and SMS workers of a node, and the sweep of unused devices."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime

from delivery_svc.config_push import PushSettings
from delivery_svc.failover import Failover
from delivery_svc.providers.base import PushMessage, SmsMessage
from delivery_svc.providers.registry import PUSH_PROVIDERS, SMS_PROVIDERS
from delivery_svc.providers.twilio import status_callback_url
from delivery_svc.push import PLATFORMS, PushChannel, own_text, template_text
from delivery_svc.sms import SmsChannel, no_template, template_body
from delivery_svc.worker import Channel, DeliveryWorker
from notify_core.config import Settings
from notify_core.db.engine import Database
from notify_core.domain import Channel as ChannelName
from notify_core.errors import NotifyError
from notify_core.parts import Closer
from notify_core.queue.base import WorkQueue
from preference_svc.api import PreferenceStore, deactivate_stale
from template_svc.api import Templates

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
    """One worker each for ``push`` (FCM, APNs), ``webpush`` and ``sms``; each runs even
    when no provider of its channel is configured, and fails those sends saying so."""
    providers = push_providers(settings, push)
    concurrency: dict[str, Mapping[str, int]] = {
        ChannelName.PUSH: push.push_concurrency,
        ChannelName.WEBPUSH: push.webpush_concurrency,
    }
    workers = [
        _worker(
            settings,
            database,
            queue,
            PushChannel(
                name,
                database,
                preferences,
                {p: f for p, f in providers.items() if p in platforms},
                text=own_text if templates is None else template_text(templates),
            ),
            concurrency[name],
        )
        for name, platforms in PLATFORMS.items()
    ]
    closers: list[Closer] = list(providers.values())
    sms = sms_sender(settings, push)
    public_url = settings.public_url
    channel = SmsChannel(
        database,
        preferences,
        sms,
        max_segments=push.sms_max_segments,
        status_callback=status_callback_url(public_url) if public_url else None,
        body=no_template if templates is None else template_body(templates),
    )
    workers.append(_worker(settings, database, queue, channel, push.sms_concurrency))
    if sms is not None:
        closers.append(sms)
    return workers, closers


def sms_sender(settings: Settings, push: PushSettings) -> Failover[SmsMessage] | None:
    """The SMS provider and its fallback, each behind its breaker; None: SMS is off (SMS
    deliveries fail saying so)."""
    if push.sms_provider is None:
        return None
    primary = SMS_PROVIDERS[push.sms_provider].build(push.sms.get(push.sms_provider))
    fallback = None
    if push.sms_fallback is not None:
        fallback = SMS_PROVIDERS[push.sms_fallback].build(push.sms.get(push.sms_fallback))
    return Failover(
        primary,
        fallback,
        threshold=settings.breaker_threshold,
        reset=settings.breaker_reset,
        channel="sms",
    )


def _worker(
    settings: Settings,
    database: Database,
    queue: WorkQueue,
    channel: Channel,
    concurrency: Mapping[str, int],
) -> DeliveryWorker:
    return DeliveryWorker(
        database,
        queue,
        channel,
        concurrency=concurrency,
        schedule=settings.retry_schedule,
        lease=settings.send_lease,
    )


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
