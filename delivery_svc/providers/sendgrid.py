"""Email through SendGrid's v3 Mail Send API (``POST /v3/mail/send``).

One ``httpx.AsyncClient`` (keep-alive, bounded pool) per provider. The request is the v3
JSON: one personalization with the recipient, ``from``, ``subject``, ``content`` (text/plain
first, then text/html, as SendGrid requires), our extra headers, and ``custom_args``
carrying our message id and idempotency key, which SendGrid copies into every event of
the message.

Answers: 202 accepted, with SendGrid's id in ``X-Message-Id``; 400, 401, 403, 413 and
other 4xx are permanent, with SendGrid's ``errors[].message`` in the text; 429 is transient
with ``Retry-After`` (seconds) when SendGrid says; 5xx, timeouts and connection errors are
transient.

Events ("Signed Event Webhook", ``POST /webhooks/sendgrid``): SendGrid signs
``timestamp + raw body`` with ECDSA P-256 / SHA-256 and sends the signature (base64 DER)
and the timestamp in ``X-Twilio-Email-Event-Webhook-Signature`` / ``-Timestamp``; the
public key (``NOTIFY_SENDGRID_WEBHOOK_PUBLIC_KEY``, base64 DER as SendGrid shows it, or
PEM) is configured. :class:`SendGridWebhookVerifier` checks it and refuses timestamps
older than ten minutes (or a minute ahead), :func:`parse_sendgrid_events` maps the JSON
array. A signature that does not verify raises :class:`Unauthenticated`, a body that is
not SendGrid's raises :class:`InvalidArgument`.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.headerregistry import Address
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
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
from delivery_svc.transport.email_mime import check_header_value, extra_headers, parse_address
from delivery_svc.transport.tls import client_tls
from notify_core.constants import (
    PROVIDER_WEBHOOK_MAX_BYTES,
    SENDGRID_DEFAULT_BASE_URL,
    SENDGRID_MAX_CONNECTIONS,
    SENDGRID_SIGNATURE_HEADER,
    SENDGRID_SIGNATURE_MAX_AGE_SECONDS,
    SENDGRID_SIGNATURE_MAX_SKEW_SECONDS,
    SENDGRID_TIMEOUT_SECONDS,
    SENDGRID_TIMESTAMP_HEADER,
    SENDGRID_WEBHOOK_PATH,
)
from notify_core.db.engine import Database
from notify_core.errors import (
    ConfigError,
    DeliveryError,
    InvalidArgument,
    PermanentDeliveryError,
    Unauthenticated,
    Unavailable,
)
from notify_core.http import read_body
from notify_core.settings_decl import TEXT, Parser, Setting, SettingsGroup, required, url

if TYPE_CHECKING:
    import httpx

    from delivery_svc.transport.sns import SnsHttp

log = logging.getLogger(__name__)

CUSTOM_ARG_MESSAGE_ID = "notify_message_id"
CUSTOM_ARG_IDEMPOTENCY_KEY = "notify_idempotency_key"
_MAX_ERROR_TEXT = 500


def _party(address: Address) -> dict[str, str]:
    out = {"email": address.addr_spec}
    if address.display_name:
        out["name"] = address.display_name
    return out


def mail_send_body(message: EmailMessage, *, provider: str = "sendgrid") -> dict[str, Any]:
    """The v3 Mail Send JSON for ``message`` (pure; raises PermanentDeliveryError)."""
    sender = parse_address(provider, "sender", message.sender)
    to = parse_address(provider, "to", message.to)
    check_header_value(provider, "Subject", message.subject)
    content = [
        {"type": kind, "value": value}
        for kind, value in (("text/plain", message.text), ("text/html", message.html))
        if value
    ]
    if not content:
        raise PermanentDeliveryError(provider, "the message has neither text nor HTML")
    custom_args = {
        CUSTOM_ARG_MESSAGE_ID: message.message_id,
        CUSTOM_ARG_IDEMPOTENCY_KEY: message.idempotency_key,
    }
    body: dict[str, Any] = {
        "personalizations": [{"to": [_party(to)]}],
        "from": _party(sender),
        "subject": message.subject,
        "content": content,
        "custom_args": custom_args,
    }
    headers = dict(extra_headers(message, provider=provider))
    if headers:
        body["headers"] = headers
    if message.reply_to:
        body["reply_to"] = _party(parse_address(provider, "reply_to", message.reply_to))
    return body


def _errors_text(response: httpx.Response) -> str:
    """SendGrid's ``{"errors": [{"message", "field", "help"}]}`` as one line."""
    try:
        payload = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        payload = None
    parts: list[str] = []
    errors = payload.get("errors") if isinstance(payload, dict) else None
    if isinstance(errors, list):
        for error in errors:
            if not isinstance(error, dict):
                continue
            text = str(error.get("message") or "").strip()
            field = error.get("field")
            parts.append(f"{text} (field {field})" if field else text)
    text = "; ".join(p for p in parts if p) or response.text.strip() or response.reason_phrase
    return text[:_MAX_ERROR_TEXT]


def _retry_after(response: httpx.Response, now: float, *, rate_limited: bool) -> float | None:
    """Seconds from ``Retry-After``; on a 429 without one, until ``X-RateLimit-Reset``."""
    raw = response.headers.get("Retry-After")
    if raw is not None:
        try:
            return max(0.0, float(raw))
        except ValueError:
            pass
    reset = response.headers.get("X-RateLimit-Reset")
    if rate_limited and reset is not None:
        try:
            return max(0.0, float(reset) - now)
        except ValueError:
            pass
    return None


class SendGridProvider:
    """:class:`~delivery_svc.providers.base.EmailProvider` for SendGrid."""

    name = "sendgrid"

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = SENDGRID_DEFAULT_BASE_URL,
        timeout: float = SENDGRID_TIMEOUT_SECONDS,
        max_connections: int = SENDGRID_MAX_CONNECTIONS,
    ) -> None:
        import httpx

        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            verify=client_tls(),
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            follow_redirects=False,
        )

    async def send(self, message: EmailMessage) -> Outcome:
        import httpx

        try:
            body = mail_send_body(message, provider=self.name)
        except DeliveryError as exc:
            return Outcome.refused(exc)
        try:
            response = await self._client.post("/v3/mail/send", json=body)
        except httpx.TimeoutException as exc:
            return Outcome.transient(self.name, f"timed out: {type(exc).__name__}")
        except httpx.HTTPError as exc:
            return Outcome.transient(self.name, f"{type(exc).__name__}: {exc}")

        status = response.status_code
        if status in (200, 202):
            return Outcome.sent(self.name, response.headers.get("X-Message-Id"))
        text = f"{status}: {_errors_text(response)}"
        if status == 429:
            wait = _retry_after(response, time.time(), rate_limited=True)
            return Outcome.transient(self.name, text, wait)
        if 400 <= status < 500 and status != 408:
            return Outcome.permanent(self.name, text)
        wait = _retry_after(response, time.time(), rate_limited=False)
        return Outcome.transient(self.name, text, wait)

    async def close(self) -> None:
        await self._client.aclose()


# --- Events -----------------------------------------------------------------------------


def _utc(epoch: Any) -> datetime:
    return datetime.fromtimestamp(float(epoch), UTC)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def load_sendgrid_public_key(raw: str | bytes) -> ec.EllipticCurvePublicKey:
    """SendGrid's verification key (base64 DER as shown in its settings, or PEM); raises
    ``ValueError`` when it is not a P-256 public key."""
    data = raw.encode() if isinstance(raw, str) else raw
    if b"-----BEGIN" in data:
        key = serialization.load_pem_public_key(data)
    else:
        try:
            der = base64.b64decode(b"".join(data.split()), validate=True)
        except binascii.Error:
            raise ValueError("not base64") from None
        key = serialization.load_der_public_key(der)
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("not an ECDSA P-256 public key")
    return key


class SendGridWebhookVerifier:
    """Checks the signature of SendGrid's event webhook requests."""

    def __init__(
        self,
        public_key: str | bytes,
        *,
        max_age: float = SENDGRID_SIGNATURE_MAX_AGE_SECONDS,
        max_skew: float = SENDGRID_SIGNATURE_MAX_SKEW_SECONDS,
    ) -> None:
        """Requests whose signed timestamp is more than ``max_age`` seconds old, or more
        than ``max_skew`` seconds ahead, are refused, so a captured post cannot be
        replayed later."""
        self._key = load_sendgrid_public_key(public_key)
        self._max_age = max_age
        self._max_skew = max_skew

    def verify(
        self, body: bytes, signature: str | None, timestamp: str | None, *, now: float | None = None
    ) -> None:
        if not signature or not timestamp:
            raise Unauthenticated("the SendGrid signature or timestamp header is missing")
        try:
            der = base64.b64decode(signature, validate=True)
            self._key.verify(der, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        except (binascii.Error, InvalidSignature, ValueError):
            raise Unauthenticated("the SendGrid event webhook signature does not verify") from None
        try:
            age = (time.time() if now is None else now) - int(timestamp)
        except ValueError:
            raise Unauthenticated("the SendGrid webhook timestamp is not a number") from None
        if age > self._max_age:
            raise Unauthenticated(
                f"the SendGrid webhook timestamp is too old ({int(age)} s, at most "
                f"{int(self._max_age)} s accepted)"
            )
        if -age > self._max_skew:
            raise Unauthenticated(f"the SendGrid webhook timestamp is {int(-age)} s in the future")

    def events(
        self, body: bytes, headers: Mapping[str, str], *, now: float | None = None
    ) -> list[ProviderEvent]:
        """Verify a request (raw body, its headers) and parse its events."""
        self.verify(
            body,
            _header(headers, SENDGRID_SIGNATURE_HEADER),
            _header(headers, SENDGRID_TIMESTAMP_HEADER),
            now=now,
        )
        return parse_sendgrid_events(body)


_SENDGRID_KINDS: dict[str, EventKind] = {
    "delivered": "delivered",
    "deferred": "deferred",
    "dropped": "dropped",
    "open": "opened",
    "click": "clicked",
    "spamreport": "complained",
}


def _sendgrid_event(item: Mapping[str, Any]) -> ProviderEvent | None:
    name = item.get("event")
    if name == "bounce":
        # type "blocked": refused for now (reputation, content), not a bad address.
        blocked = item.get("type") == "blocked"
        kind: EventKind | None = "dropped" if blocked else "bounced"
    else:
        kind = _SENDGRID_KINDS.get(str(name))
    sg_id = item.get("sg_message_id")
    message_id = item.get("notify_message_id")
    if kind is None or not (sg_id or message_id):
        return None  # processed, unsubscribe, group_*: not a delivery outcome
    if kind == "clicked":
        detail = str(item.get("url") or "")
    else:
        parts = [item.get("type") if name == "bounce" else None, item.get("status")]
        parts += [item.get("reason") or item.get("response")]
        detail = " ".join(str(p) for p in parts if p)
    return ProviderEvent(
        provider="sendgrid",
        provider_message_id=str(sg_id).split(".", 1)[0] if sg_id else None,
        kind=kind,
        address=str(item.get("email") or ""),
        detail=detail,
        at=_utc(item["timestamp"]),
        message_id=str(message_id) if message_id else None,
        event_id=str(item["sg_event_id"]) if item.get("sg_event_id") else None,
    )


def parse_sendgrid_events(body: bytes | str) -> list[ProviderEvent]:
    """SendGrid's JSON array of events → the delivery outcomes among them.

    ``sg_message_id`` is ``<X-Message-Id>.<filter suffix>``; the part before the first "."
    is what the send returned. Events we do not act on are left out, and so is an item
    whose fields are unusable (the rest of the batch still counts).
    """
    try:
        items = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidArgument("body", "is not JSON") from None
    if not isinstance(items, list):
        raise InvalidArgument("body", "must be a JSON array of events")
    out: list[ProviderEvent] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        try:
            event = _sendgrid_event(item)
        except (KeyError, TypeError, ValueError, OverflowError, OSError):
            continue
        if event is not None:
            out.append(event)
    return out


async def receive_events(
    request: Request, verifier: SendGridWebhookVerifier | None, database: Database
) -> Response:
    """``POST /webhooks/sendgrid``: verified (503 while no key is set), then applied."""
    if verifier is None:
        raise Unavailable(
            "SendGrid event webhooks are disabled: set NOTIFY_SENDGRID_WEBHOOK_PUBLIC_KEY "
            "to the verification key of the Signed Event Webhook"
        )
    body = await read_body(request, PROVIDER_WEBHOOK_MAX_BYTES)
    counts = await apply_events(database, verifier.events(body, request.headers))
    log.info("sendgrid events: %s", counts)
    return JSONResponse(counts)


def webhook_verifier(sendgrid: SendGridSettings, http: SnsHttp) -> SendGridWebhookVerifier | None:
    """The verifier of the signed event webhook, when its key is configured."""
    key = sendgrid.webhook_public_key
    return SendGridWebhookVerifier(key) if key else None


# --- Settings ---------------------------------------------------------------------------


def _public_key(raw: str, name: str) -> str:
    """The Signed Event Webhook's verification key, base64 DER (as SendGrid shows it) or PEM."""
    value = raw.strip()
    try:
        if "-----BEGIN" in value:
            key = serialization.load_pem_public_key(value.encode())
        else:
            key = serialization.load_der_public_key(
                base64.b64decode("".join(value.split()), validate=True)
            )
    except (ValueError, binascii.Error):
        raise ConfigError(f"{name} is not a public key (base64 DER or PEM)") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ConfigError(f"{name} must be an ECDSA P-256 key, as SendGrid gives it")
    return value


API_KEY: Setting[str | None] = Setting(
    "NOTIFY_SENDGRID_API_KEY",
    TEXT,
    None,
    "key of SendGrid's v3 API; required for `sendgrid`",
    secret=True,
)
BASE_URL = Setting(
    "NOTIFY_SENDGRID_BASE_URL",
    url("http", "https", trim_slash=True),
    SENDGRID_DEFAULT_BASE_URL,
    "where SendGrid's v3 API is reached",
)
WEBHOOK_PUBLIC_KEY: Setting[str | None] = Setting(
    "NOTIFY_SENDGRID_WEBHOOK_PUBLIC_KEY",
    Parser(_public_key),
    None,
    "verification key of SendGrid's Signed Event Webhook (base64 or PEM); unset: "
    "`/webhooks/sendgrid` answers 503",
)

SETTINGS = SettingsGroup(
    "delivery_svc/providers/sendgrid.py", (API_KEY, BASE_URL, WEBHOOK_PUBLIC_KEY)
)


@dataclass(frozen=True, slots=True)
class SendGridSettings:
    """``NOTIFY_SENDGRID_*``, as read (defaults from the declarations above)."""

    api_key: str | None = field(default=API_KEY.default, repr=False)
    base_url: str = BASE_URL.default
    webhook_public_key: str | None = WEBHOOK_PUBLIC_KEY.default


def read_settings(env: Mapping[str, str], in_use: bool) -> SendGridSettings:
    """``NOTIFY_SENDGRID_*``, checked; the API key is required when SendGrid is in use."""
    api_key = required(API_KEY, env, f"{IN_USE} is sendgrid") if in_use else API_KEY.read(env)
    return SendGridSettings(api_key, BASE_URL.read(env), WEBHOOK_PUBLIC_KEY.read(env))


def build(sendgrid: SendGridSettings) -> SendGridProvider:
    if sendgrid.api_key is None:
        raise ConfigError("NOTIFY_SENDGRID_API_KEY is required for the sendgrid provider")
    return SendGridProvider(api_key=sendgrid.api_key, base_url=sendgrid.base_url)


PROVIDER = EmailProviderSpec(
    name="sendgrid",
    settings=SETTINGS,
    settings_type=SendGridSettings,
    read_settings=read_settings,
    build=build,
    events=EventWebhook(SENDGRID_WEBHOOK_PATH, webhook_verifier, receive_events),
)
