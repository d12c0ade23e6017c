"""DeliveryService's REST routes on the edge: open and click tracking
(:mod:`delivery_svc.tracking_routes`), provider event webhooks and the suppression list
(:mod:`delivery_svc.provider_event_routes`), Twilio's SMS status callbacks
(:mod:`delivery_svc.providers.twilio`)."""

from __future__ import annotations

from delivery_svc.provider_event_routes import ProviderWebhooks, provider_event_routes
from delivery_svc.providers.twilio import TwilioSettings, callbacks_receiver, status_route
from delivery_svc.tracking_routes import tracking_routes
from notify_core.db.engine import Database
from notify_core.routes import HttpRoute


def routes(
    database: Database,
    *,
    signing_secret: str | None,
    webhooks: ProviderWebhooks,
    twilio: TwilioSettings | None = None,
    public_url: str | None = None,
) -> list[HttpRoute]:
    """Every route of the service; ``signing_secret`` signs tracking links, ``webhooks``
    verifies provider events, ``twilio`` (with ``public_url``, which Twilio signs over)
    Twilio's status callbacks (without either they answer 503)."""
    return [
        *tracking_routes(database=database, signing_secret=signing_secret),
        *provider_event_routes(database=database, webhooks=webhooks),
        status_route(callbacks_receiver(twilio, public_url), database),
    ]
