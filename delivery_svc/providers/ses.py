"""Email through Amazon SES (API v2, ``SendEmail`` with raw content).

The message goes as the MIME of :mod:`delivery_svc.transport.email_mime`, so our own
headers (Message-ID, List-Unsubscribe, ...) reach the recipient as they are.
boto3 is synchronous: one client is created up front (clients are thread-safe) and each
call runs in a worker thread. botocore's own retries are off; the delivery workers retry,
with their backoff.

Errors: SES refusing the message or its sender (MessageRejected, MailFromDomainNotVerified,
InvalidParameterValue, other 4xx) is permanent; throttling, SES being unavailable, an
endpoint that cannot be reached, and credentials SES does not accept (the provider refused
*us*, not the message) are transient.

Events reach ``POST /webhooks/ses`` through an SNS HTTPS subscription to the topics of
``NOTIFY_SES_SNS_TOPIC_ARNS`` (verified by :mod:`delivery_svc.transport.sns`);
:func:`parse_ses_events` maps a ``Notification`` whose message is an SES event.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from delivery_svc.provider_events import apply_events
from delivery_svc.providers.base import (
    IN_USE,
    EmailMessage,
    EmailProviderSpec,
    EventKind,
    EventWebhook,
    Outcome,
    ProviderEvent,
)
from delivery_svc.transport.aws import aws_client, call_errors
from delivery_svc.transport.email_mime import envelope_address, mime_bytes
from delivery_svc.transport.sns import SnsHttp, SnsMessage, SnsVerifier, SubscribeGetter, iso_time
from notify_core.constants import (
    PROVIDER_WEBHOOK_MAX_BYTES,
    SES_CONNECT_TIMEOUT_SECONDS,
    SES_MAX_POOL_CONNECTIONS,
    SES_READ_TIMEOUT_SECONDS,
    SES_WEBHOOK_PATH,
)
from notify_core.db.engine import Database
from notify_core.errors import (
    ConfigError,
    DeliveryError,
    InvalidArgument,
    NotFound,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from notify_core.http import read_body
from notify_core.settings_decl import Parser, Setting, SettingsGroup, items, required, url

if TYPE_CHECKING:
    from mypy_boto3_sesv2.client import SESV2Client

log = logging.getLogger(__name__)
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_TOPIC_ARN_RE = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]{1,256}$")

_PERMANENT_CODES = frozenset(
    {
        "MessageRejected",
        "MailFromDomainNotVerified",
        "MailFromDomainNotVerifiedException",
        "InvalidParameterValue",
        "BadRequestException",
    }
)
_TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "LimitExceededException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServiceError",
        "RequestTimeout",
        "RequestTimeoutException",
        "SendingPausedException",
        "AccountSuspendedException",
        # Credentials: SES refused us, not the message; fixing them lets it through.
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "AccessDenied",
        "AccessDeniedException",
    }
)


def translate_error(provider: str, exc: Exception) -> DeliveryError:
    """The delivery error for a botocore exception raised by ``send_email``."""
    from botocore.exceptions import ClientError, ParamValidationError

    if isinstance(exc, ClientError):
        error: Any = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        text = f"{code}: {error.get('Message', '')}".strip()
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _PERMANENT_CODES:
            return PermanentDeliveryError(provider, text)
        if code in _TRANSIENT_CODES or status >= 500 or status == 429:
            return TransientDeliveryError(provider, text)
        if 400 <= status < 500:
            return PermanentDeliveryError(provider, text)
        return TransientDeliveryError(provider, text)
    if isinstance(exc, ParamValidationError):
        return PermanentDeliveryError(provider, f"invalid request: {exc}")
    return TransientDeliveryError(provider, f"{type(exc).__name__}: {exc}")


class SesProvider:
    """:class:`~delivery_svc.providers.base.EmailProvider` for Amazon SES (v2 API)."""

    name = "ses"

    def __init__(
        self,
        *,
        region: str,
        endpoint_url: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        configuration_set: str | None = None,
    ) -> None:
        """Credentials not given come from boto3's usual chain (environment, profile, role).
        ``configuration_set`` names the SES configuration set whose event destinations
        publish this mail's events (to SNS, for :mod:`.events`)."""
        self._client: SESV2Client = aws_client(
            "sesv2",
            region=region,
            endpoint_url=endpoint_url,
            connect_timeout=SES_CONNECT_TIMEOUT_SECONDS,
            read_timeout=SES_READ_TIMEOUT_SECONDS,
            max_pool_connections=SES_MAX_POOL_CONNECTIONS,
            aws_access_key_id=aws_access_key_id,
            aws_secret_access_key=aws_secret_access_key,
            aws_session_token=aws_session_token,
        )
        self._configuration_set = configuration_set

    async def send(self, message: EmailMessage) -> Outcome:
        try:
            raw = mime_bytes(message, provider=self.name)
            sender = envelope_address(self.name, "sender", message.sender)
            to = envelope_address(self.name, "to", message.to)
        except DeliveryError as exc:
            return Outcome.refused(exc)
        try:
            response = await asyncio.to_thread(self._send, sender, to, raw)
        except call_errors() as exc:
            return Outcome.refused(translate_error(self.name, exc))
        return Outcome.sent(self.name, response.get("MessageId"))

    def _send(self, sender: str, to: str, raw: bytes) -> Any:
        if self._configuration_set:
            return self._client.send_email(
                FromEmailAddress=sender,
                Destination={"ToAddresses": [to]},
                Content={"Raw": {"Data": raw}},
                ConfigurationSetName=self._configuration_set,
            )
        return self._client.send_email(
            FromEmailAddress=sender,
            Destination={"ToAddresses": [to]},
            Content={"Raw": {"Data": raw}},
        )

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)


# --- Events (inside SNS notifications) --------------------------------------------------


def _ses_recipients(items: Any) -> list[tuple[str, str]]:
    """``[{"emailAddress", "diagnosticCode"|"status"...}]`` → (address, detail) pairs."""
    out: list[tuple[str, str]] = []
    for item in items or []:
        if isinstance(item, dict) and item.get("emailAddress"):
            detail = item.get("diagnosticCode") or item.get("status") or ""
            out.append((str(item["emailAddress"]), str(detail)))
    return out


def parse_ses_event(
    event: Mapping[str, Any], *, event_id: str | None = None
) -> list[ProviderEvent]:
    """One SES event (event publishing ``eventType`` or feedback ``notificationType``)
    → one ProviderEvent per recipient it concerns; kinds we do not act on → ``[]``."""
    name = event.get("eventType") or event.get("notificationType")
    mail = event.get("mail") or {}
    ses_id = mail.get("messageId")
    our_id = (mail.get("commonHeaders") or {}).get("messageId")
    destination = [(str(a), "") for a in mail.get("destination") or []]
    pairs: list[tuple[EventKind, str, str]] = []
    body: Mapping[str, Any] = {}
    if name == "Bounce":
        body = event.get("bounce") or {}
        permanent = body.get("bounceType") == "Permanent"
        kind: EventKind = "bounced" if permanent else "dropped"
        prefix = f"{body.get('bounceType')}/{body.get('bounceSubType')}"
        for address, detail in _ses_recipients(body.get("bouncedRecipients")):
            pairs.append((kind, address, f"{prefix}: {detail}" if detail else prefix))
    elif name == "Complaint":
        body = event.get("complaint") or {}
        feedback = str(body.get("complaintFeedbackType") or "")
        for address, _ in _ses_recipients(body.get("complainedRecipients")):
            pairs.append(("complained", address, feedback))
    elif name == "Delivery":
        body = event.get("delivery") or {}
        response = str(body.get("smtpResponse") or "")
        pairs = [("delivered", str(a), response) for a in body.get("recipients") or []]
    elif name == "DeliveryDelay":
        body = event.get("deliveryDelay") or {}
        delay = str(body.get("delayType") or "")
        for address, detail in _ses_recipients(body.get("delayedRecipients")):
            pairs.append(("deferred", address, f"{delay}: {detail}" if detail else delay))
    elif name == "Reject":
        body = event.get("reject") or {}
        pairs = [("dropped", a, str(body.get("reason") or "")) for a, _ in destination]
    elif name == "Open":
        body = event.get("open") or {}
        pairs = [("opened", a, str(body.get("userAgent") or "")) for a, _ in destination]
    elif name == "Click":
        body = event.get("click") or {}
        pairs = [("clicked", a, str(body.get("link") or "")) for a, _ in destination]
    if not pairs or not ses_id:
        return []
    at = iso_time(body.get("timestamp") or mail.get("timestamp"))
    return [
        ProviderEvent(
            provider="ses",
            provider_message_id=str(ses_id),
            kind=kind,
            address=address,
            detail=detail,
            at=at,
            message_id=str(our_id) if our_id else None,
            event_id=event_id,
        )
        for kind, address, detail in pairs
    ]


def parse_ses_events(message: SnsMessage) -> list[ProviderEvent]:
    """A verified SNS Notification carrying an SES event → its ProviderEvents."""
    if message.type != "Notification":
        return []
    try:
        event = json.loads(message.message)
    except json.JSONDecodeError:
        raise InvalidArgument("Message", "is not an SES event (not JSON)") from None
    if not isinstance(event, dict):
        raise InvalidArgument("Message", "is not an SES event")
    try:
        return parse_ses_event(event, event_id=message.message_id)
    except (TypeError, ValueError, AttributeError):
        raise InvalidArgument("Message", "is not an SES event") from None


@dataclass(frozen=True, slots=True)
class SesEvents:
    """What ``/webhooks/ses`` verifies with, and how it confirms a subscription."""

    sns: SnsVerifier
    get_subscribe_url: SubscribeGetter


async def receive_events(
    request: Request, events: SesEvents | None, database: Database
) -> Response:
    """``POST /webhooks/ses``: one verified SNS message (404 while no topic is set)."""
    if events is None:
        raise NotFound(
            "SES event webhooks are off: set NOTIFY_SES_SNS_TOPIC_ARNS to the SNS topics "
            "SES publishes its events to"
        )
    message = await events.sns.verify(await read_body(request, PROVIDER_WEBHOOK_MAX_BYTES))
    answer: dict[str, Any] = {"type": message.type}
    if message.type == "SubscriptionConfirmation":
        if not message.subscribe_url:
            raise InvalidArgument("SubscribeURL", "is missing from the confirmation")
        await events.get_subscribe_url(message.subscribe_url)
        log.info("SNS subscription to %s confirmed", message.topic_arn)
        answer["confirmed"] = True
    elif message.type == "Notification":
        counts = await apply_events(database, parse_ses_events(message))
        log.info("ses events: %s", counts)
        answer.update(counts)
    else:
        log.warning("SNS subscription to %s was removed", message.topic_arn)
    return JSONResponse(answer)


def webhook_receiver(ses: SesSettings, http: SnsHttp) -> SesEvents | None:
    """SNS verification for the configured topics; None (route off) when there are none."""
    topics = ses.sns_topic_arns
    if not topics:
        return None
    return SesEvents(SnsVerifier(http.fetch_certificate, topic_arns=topics), http.get_subscribe_url)


# --- Settings ---------------------------------------------------------------------------


def _region(raw: str, name: str) -> str:
    value = raw.strip()
    if not _REGION_RE.match(value):
        raise ConfigError(f"{name} must be an AWS region like eu-west-1, got {value!r}")
    return value


def _topic_arn(arn: str, name: str) -> str:
    if not _TOPIC_ARN_RE.match(arn):
        raise ConfigError(
            f"{name} must be SNS topic ARNs like arn:aws:sns:eu-west-1:123456789012:ses, "
            f"got {arn!r}"
        )
    return arn


REGION: Setting[str | None] = Setting(
    "NOTIFY_SES_REGION",
    Parser(_region),
    None,
    "Amazon SES's region (credentials from the usual AWS chain); required for `ses`",
)
ENDPOINT_URL: Setting[str | None] = Setting(
    "NOTIFY_SES_ENDPOINT_URL",
    url("http", "https", trim_slash=True),
    None,
    "Amazon SES's endpoint",
    shown_default="AWS's endpoint",
)
SNS_TOPIC_ARNS: Setting[tuple[str, ...]] = Setting(
    "NOTIFY_SES_SNS_TOPIC_ARNS",
    items(_topic_arn),
    (),
    "comma-separated ARNs of the SNS topics whose events `/webhooks/ses` accepts (and whose "
    "subscriptions it confirms)",
    shown_default="unset: the endpoint is off (404)",
)

SETTINGS = SettingsGroup("delivery_svc/providers/ses.py", (REGION, ENDPOINT_URL, SNS_TOPIC_ARNS))


@dataclass(frozen=True, slots=True)
class SesSettings:
    """``NOTIFY_SES_*``, as read (defaults from the declarations above)."""

    region: str | None = REGION.default
    endpoint_url: str | None = ENDPOINT_URL.default
    sns_topic_arns: tuple[str, ...] = SNS_TOPIC_ARNS.default


def read_settings(env: Mapping[str, str], in_use: bool) -> SesSettings:
    """``NOTIFY_SES_*``, checked; the region is required when SES is in use."""
    region = required(REGION, env, f"{IN_USE} is ses") if in_use else REGION.read(env)
    return SesSettings(region, ENDPOINT_URL.read(env), SNS_TOPIC_ARNS.read(env))


def build(ses: SesSettings) -> SesProvider:
    if ses.region is None:
        raise ConfigError("NOTIFY_SES_REGION is required for the ses email provider")
    return SesProvider(region=ses.region, endpoint_url=ses.endpoint_url)


PROVIDER = EmailProviderSpec(
    name="ses",
    settings=SETTINGS,
    settings_type=SesSettings,
    read_settings=read_settings,
    build=build,
    events=EventWebhook(SES_WEBHOOK_PATH, webhook_receiver, receive_events),
)
