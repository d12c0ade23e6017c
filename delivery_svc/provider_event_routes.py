"""Provider event webhooks on the edge, and the suppression list for operators.

``POST /webhooks/sendgrid``
    SendGrid's Signed Event Webhook. Verified with ``NOTIFY_SENDGRID_WEBHOOK_PUBLIC_KEY``
    (503 naming it when unset); a signature that does not verify answers 401, a signed
    body that is not SendGrid's JSON array 400; else 200 with the counts of
    :func:`~delivery_svc.provider_events.apply_events`.
``POST /webhooks/ses``
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

Providers retry on anything but 2xx, so only what a retry can fix (a database or a
certificate host that is down) answers 5xx.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from delivery_svc.config_email import EmailSettings
from delivery_svc.provider_events import apply_events
from delivery_svc.providers.email_factory import create_sendgrid_webhook_verifier
from delivery_svc.providers.events import (
    CertificateFetcher,
    SendGridWebhookVerifier,
    SnsVerifier,
    check_sns_url,
    fetch_certificate,
    parse_ses_events,
)
from delivery_svc.suppressions import list_suppressions, unsuppress
from notify_core.constants import (
    PROVIDER_WEBHOOK_MAX_BYTES,
    SENDGRID_WEBHOOK_PATH,
    SES_WEBHOOK_PATH,
    SNS_SUBSCRIBE_TIMEOUT_SECONDS,
    SUPPRESSIONS_DEFAULT_LIMIT,
)
from notify_core.db.engine import Database
from notify_core.errors import InvalidArgument, NotFound, Unavailable
from notify_core.http import read_body
from notify_core.routes import PRODUCER, PUBLIC, HttpRoute

log = logging.getLogger(__name__)

SIGNED = "the provider signs each request; the route verifies the signature itself"

SubscribeGetter = Callable[[str], Awaitable[None]]
"""GETs an SNS SubscribeURL; raises Unavailable when SNS did not answer 200."""


async def get_subscribe_url(url: str) -> None:
    """Confirm an SNS subscription: GET its (checked) SubscribeURL, no redirects."""
    check_sns_url(url, "SubscribeURL")
    try:
        async with httpx.AsyncClient(timeout=SNS_SUBSCRIBE_TIMEOUT_SECONDS) as client:
            response = await client.get(url)
    except httpx.HTTPError as exc:
        raise Unavailable(f"SNS SubscribeURL: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise Unavailable(f"SNS SubscribeURL answered HTTP {response.status_code}")


@dataclass(frozen=True, slots=True)
class SnsHttp:
    """The HTTP calls SNS handling makes (tests give local ones)."""

    fetch_certificate: CertificateFetcher = fetch_certificate
    get_subscribe_url: SubscribeGetter = get_subscribe_url


@dataclass(frozen=True, slots=True)
class ProviderWebhooks:
    """What the provider webhook routes verify with."""

    sendgrid: SendGridWebhookVerifier | None = None
    """None: ``NOTIFY_SENDGRID_WEBHOOK_PUBLIC_KEY`` is not set."""
    sns: SnsVerifier | None = None
    """None: ``NOTIFY_SES_SNS_TOPIC_ARNS`` is not set."""
    get_subscribe_url: SubscribeGetter = get_subscribe_url

    @classmethod
    def from_settings(cls, email: EmailSettings, http: SnsHttp | None = None) -> ProviderWebhooks:
        http = http or SnsHttp()
        topics = email.ses_sns_topic_arns
        return cls(
            sendgrid=create_sendgrid_webhook_verifier(email),
            sns=SnsVerifier(http.fetch_certificate, topic_arns=topics) if topics else None,
            get_subscribe_url=http.get_subscribe_url,
        )


async def _bounded_body(request: Request) -> bytes:
    return await read_body(request, PROVIDER_WEBHOOK_MAX_BYTES)


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit") or str(SUPPRESSIONS_DEFAULT_LIMIT)
    try:
        return int(raw)
    except ValueError:
        raise InvalidArgument("limit", f"must be a whole number, got {raw!r}") from None


def provider_event_routes(*, database: Database, webhooks: ProviderWebhooks) -> list[HttpRoute]:
    async def sendgrid(request: Request) -> Response:
        verifier = webhooks.sendgrid
        if verifier is None:
            raise Unavailable(
                "SendGrid event webhooks are disabled: set NOTIFY_SENDGRID_WEBHOOK_PUBLIC_KEY "
                "to the verification key of the Signed Event Webhook"
            )
        events = verifier.events(await _bounded_body(request), request.headers)
        counts = await apply_events(database, events)
        log.info("sendgrid events: %s", counts)
        return JSONResponse(counts)

    async def ses(request: Request) -> Response:
        if webhooks.sns is None:
            raise NotFound(
                "SES event webhooks are off: set NOTIFY_SES_SNS_TOPIC_ARNS to the SNS topics "
                "SES publishes its events to"
            )
        message = await webhooks.sns.verify(await _bounded_body(request))
        answer: dict[str, Any] = {"type": message.type}
        if message.type == "SubscriptionConfirmation":
            if not message.subscribe_url:
                raise InvalidArgument("SubscribeURL", "is missing from the confirmation")
            await webhooks.get_subscribe_url(message.subscribe_url)
            log.info("SNS subscription to %s confirmed", message.topic_arn)
            answer["confirmed"] = True
        elif message.type == "Notification":
            counts = await apply_events(database, parse_ses_events(message))
            log.info("ses events: %s", counts)
            answer.update(counts)
        else:
            log.warning("SNS subscription to %s was removed", message.topic_arn)
        return JSONResponse(answer)

    async def suppressions(request: Request) -> Response:
        limit = _limit(request)
        found = await list_suppressions(database, limit)
        return JSONResponse({"suppressions": found, "limit": limit})

    async def delete_suppression(request: Request) -> Response:
        removed = await unsuppress(database, str(request.path_params["address"]))
        return JSONResponse({"deleted": removed})

    return [
        HttpRoute("POST", SENDGRID_WEBHOOK_PATH, PUBLIC, sendgrid, note=SIGNED),
        HttpRoute("POST", SES_WEBHOOK_PATH, PUBLIC, ses, note=SIGNED),
        HttpRoute("GET", "/email-suppressions", PRODUCER, suppressions),
        HttpRoute("DELETE", "/email-suppressions/{address}", PRODUCER, delete_suppression),
    ]
