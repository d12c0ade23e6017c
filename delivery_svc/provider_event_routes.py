"""Provider event webhooks on the edge, and the suppression list for operators.

Each email provider with events declares its route (path, receiver, handler: the
``events`` of its registry entry, :mod:`delivery_svc.providers.registry`); this module
mounts them all:

``POST /webhooks/sendgrid`` (:mod:`delivery_svc.providers.sendgrid`)
    SendGrid's Signed Event Webhook. Verified with ``NOTIFY_SENDGRID_WEBHOOK_PUBLIC_KEY``
    (503 naming it when unset); a signature that does not verify answers 401, a signed
    body that is not SendGrid's JSON array 400; else 200 with the counts of
    :func:`~delivery_svc.provider_events.apply_events`.
``POST /webhooks/ses`` (:mod:`delivery_svc.providers.ses`)
    SES events through an SNS HTTPS subscription. The SNS signature is verified (401),
    with the signing certificate fetched from an SNS host only. A
    ``SubscriptionConfirmation`` is confirmed by GETting its SubscribeURL (an SNS host
    too) and answers 200 (503 when SNS could not be reached: SNS posts it again); an
    ``UnsubscribeConfirmation`` answers 200; a ``Notification`` carrying an SES event
    is applied and answers 200 with the counts. Only the topics of
    ``NOTIFY_SES_SNS_TOPIC_ARNS`` are accepted: messages of other topics are refused (401)
    and never confirmed, and with the setting unset the endpoint is off (404 naming it).
``GET /email-suppressions?limit=100``, ``DELETE /email-suppressions/{address}``
    Producer key. The suppressed addresses, newest first; deleting one lets email go to it
    again (404 when it is not on the list).
``GET /phone-suppressions?limit=100``, ``DELETE /phone-suppressions/{number}``
    The same for the numbers SMS is not sent to (opted out, unreachable).

Providers retry on anything but 2xx, so only what a retry can fix (a database or a
certificate host that is down) answers 5xx.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from delivery_svc.config_email import EmailSettings
from delivery_svc.providers.base import EventWebhook
from delivery_svc.providers.registry import EMAIL_PROVIDERS
from delivery_svc.suppressions import EMAIL, PHONE, SuppressionList, list_suppressions, unsuppress
from delivery_svc.transport.sns import SnsHttp
from notify_core.constants import SUPPRESSIONS_DEFAULT_LIMIT
from notify_core.db.engine import Database
from notify_core.errors import InvalidArgument
from notify_core.http import JSONResponse
from notify_core.routes import PRODUCER, PUBLIC, HttpRoute

SIGNED = "the provider signs each request; the route verifies the signature itself"


@dataclass(frozen=True, slots=True)
class ProviderWebhooks:
    """What each provider's event route verifies with, by provider name; a provider
    missing or None here answers as its route does when it is not configured."""

    receivers: Mapping[str, object | None] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, email: EmailSettings, http: SnsHttp | None = None) -> ProviderWebhooks:
        http = http or SnsHttp()
        return cls(
            {
                name: spec.events.receiver(spec.settings_of(email), http)
                for name, spec in EMAIL_PROVIDERS.items()
                if spec.events is not None
            }
        )


def _event_route(
    events: EventWebhook[Any], receiver: object | None, database: Database
) -> HttpRoute:
    async def handler(request: Request) -> Response:
        return await events.handle(request, receiver, database)

    return HttpRoute("POST", events.path, PUBLIC, handler, note=SIGNED)


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit") or str(SUPPRESSIONS_DEFAULT_LIMIT)
    try:
        return int(raw)
    except ValueError:
        raise InvalidArgument("limit", f"must be a whole number, got {raw!r}") from None


def provider_event_routes(*, database: Database, webhooks: ProviderWebhooks) -> list[HttpRoute]:
    events = [
        _event_route(spec.events, webhooks.receivers.get(name), database)
        for name, spec in EMAIL_PROVIDERS.items()
        if spec.events is not None
    ]

    return [*events, *_suppression_routes(database, EMAIL), *_suppression_routes(database, PHONE)]


def _suppression_routes(database: Database, which: SuppressionList) -> list[HttpRoute]:
    path = f"/{'email' if which is EMAIL else 'phone'}-suppressions"

    async def suppressions(request: Request) -> Response:
        limit = _limit(request)
        found = await list_suppressions(database, limit, which)
        return JSONResponse({"suppressions": found, "limit": limit})

    async def delete_suppression(request: Request) -> Response:
        removed = await unsuppress(database, str(request.path_params[which.key]), which)
        return JSONResponse({"deleted": removed})

    return [
        HttpRoute("GET", path, PRODUCER, suppressions),
        HttpRoute("DELETE", f"{path}/{{{which.key}}}", PRODUCER, delete_suppression),
    ]
