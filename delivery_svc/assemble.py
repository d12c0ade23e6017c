"""Building a node's delivery workers from its settings: providers, channels, workers."""

from __future__ import annotations

from dataclasses import dataclass

from delivery_svc.channels import EmailChannel, FailoverEmail, WebhookChannel
from delivery_svc.compose import EmailComposer, Renderer
from delivery_svc.tracking import track_html
from delivery_svc.worker import Channel, DeliveryWorker
from notify_core.config import Settings
from notify_core.db.engine import Database
from notify_core.queue.base import WorkQueue
from preference_svc.store import PreferenceStore


@dataclass(frozen=True, slots=True)
class TrackingLinks:
    """Open pixel and click-tracked links in HTML email."""

    secret: str
    public_url: str

    def decorate(self, html_body: str, delivery_id: str) -> str:
        return track_html(self.secret, html_body, self.public_url, delivery_id)


async def build_workers(
    settings: Settings,
    database: Database,
    queue: WorkQueue,
    preferences: PreferenceStore,
    public_url: str | None,
    renderer: Renderer | None = None,
) -> tuple[list[DeliveryWorker], list[object]]:
    """The email and webhook workers, and what to close when the node stops."""
    from delivery_svc.providers.email_factory import create_email_providers
    from delivery_svc.providers.webhook import HttpWebhookSender

    primary, fallback = create_email_providers(settings)
    email = FailoverEmail(
        primary, fallback, threshold=settings.breaker_threshold, reset=settings.breaker_reset
    )
    secret = settings.signing_secret
    composer = EmailComposer(
        settings.email_from,
        renderer=renderer,
        links=TrackingLinks(secret, public_url) if secret and public_url else None,
        public_url=public_url,
        signing_secret=secret,
    )
    webhook_sender = HttpWebhookSender.from_settings(settings)
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
        )
        for channel in channels
    ]
    return workers, [email, webhook_sender]
