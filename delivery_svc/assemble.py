"""DeliveryService from a node's backends and its settings: providers, channels, workers.

One :class:`~delivery_svc.channels.FailoverEmail` per node: the email worker and the digest
worker send through the same providers and breakers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from delivery_svc import service
from delivery_svc.channels import EmailChannel, FailoverEmail, WebhookChannel
from delivery_svc.compose import EmailComposer, Rendered, default_email
from delivery_svc.config_email import EmailSettings
from delivery_svc.config_push import PushSettings
from delivery_svc.config_webhook import WebhookSettings
from delivery_svc.digests import digest_worker
from delivery_svc.push_workers import push_workers, sweep_devices
from delivery_svc.tracking import track_html
from delivery_svc.worker import Channel, DeliveryWorker
from notify_core.config import Settings
from notify_core.db.engine import Database
from notify_core.parts import Closer, Parts
from notify_core.queue.base import WorkQueue
from preference_svc.api import PreferenceStore
from template_svc.api import Templates


@dataclass(frozen=True, slots=True)
class TrackingLinks:
    """Open pixel and click-tracked links in HTML email."""

    secret: str
    public_url: str

    def decorate(self, html_body: str, delivery_id: str) -> str:
        return track_html(self.secret, html_body, self.public_url, delivery_id)


@dataclass(frozen=True, slots=True)
class TemplateRenderer:
    """The template service as the email composer's renderer."""

    templates: Templates

    async def __call__(
        self,
        name: str,
        channel: str,
        locale: str | None,
        data: Mapping[str, Any],
        notification: Mapping[str, Any],
    ) -> Rendered:
        out = await self.templates.render_for(name, channel, locale, data, notification)
        text = out.text or ""
        subject = out.subject if out.subject is not None else str(notification["title"])
        return Rendered(
            subject=subject, html=out.html or default_email(subject, text).html, text=text
        )


async def build_workers(
    settings: Settings,
    email_settings: EmailSettings,
    webhook_settings: WebhookSettings,
    database: Database,
    queue: WorkQueue,
    preferences: PreferenceStore,
    public_url: str | None,
    templates: Templates | None = None,
    *,
    digest_concurrency: int,
) -> tuple[list[DeliveryWorker], list[Closer]]:
    """The email, webhook and digest workers, and what to close when the node stops.
    ``digest_concurrency`` (``NOTIFY_DIGEST_CONCURRENCY``): digests in flight at once."""
    from delivery_svc.providers.registry import create_email_providers
    from delivery_svc.providers.webhook import HttpWebhookSender

    primary, fallback = create_email_providers(email_settings)
    email = FailoverEmail(
        primary, fallback, threshold=settings.breaker_threshold, reset=settings.breaker_reset
    )
    secret = settings.signing_secret
    composer = EmailComposer(
        email_settings.sender,
        renderer=TemplateRenderer(templates) if templates is not None else None,
        links=TrackingLinks(secret, public_url) if secret and public_url else None,
        public_url=public_url,
        signing_secret=secret,
    )
    webhook_sender = HttpWebhookSender.from_settings(webhook_settings)
    channels: list[Channel] = [
        EmailChannel(database, preferences, composer, email),
        WebhookChannel(
            preferences,
            webhook_sender,
            threshold=settings.breaker_threshold,
            reset=settings.breaker_reset,
        ),
    ]
    workers = [
        DeliveryWorker(
            database,
            queue,
            channel,
            concurrency=settings.delivery_concurrency,
            schedule=settings.retry_schedule,
            lease=settings.send_lease,
        )
        for channel in channels
    ]
    workers.append(digest_worker(settings, database, queue, email, digest_concurrency))
    return workers, [email, webhook_sender]


async def assemble(
    settings: Settings,
    email_settings: EmailSettings,
    webhook_settings: WebhookSettings,
    push: PushSettings,
    database: Database,
    queue: WorkQueue,
    preferences: PreferenceStore,
    public_url: str | None,
    templates: Templates,
    *,
    digest_concurrency: int,
) -> Parts:
    """The service's parts: its RPCs, one worker task per channel (and one for digests),
    the device sweep, the providers to close."""
    workers, closers = await build_workers(
        settings,
        email_settings,
        webhook_settings,
        database,
        queue,
        preferences,
        public_url,
        templates,
        digest_concurrency=digest_concurrency,
    )
    more, more_closers = push_workers(settings, push, database, queue, preferences, templates)
    workers += more
    tasks = {f"deliver-{worker.channel}": worker.run for worker in workers}
    tasks["device-sweep"] = partial(sweep_devices, database, preferences, push.device_stale_days)
    return Parts(
        specs=[service.spec(database, queue, workers)],
        tasks=tasks,
        closers=closers + more_closers,
    )
