"""Provider event webhooks: verified, then parsed into :class:`ProviderEvent` values.

**SendGrid** ("Signed Event Webhook"): SendGrid signs ``timestamp + raw body`` with ECDSA
P-256 / SHA-256 and sends the signature (base64 DER) and the timestamp in
``X-Twilio-Email-Event-Webhook-Signature`` / ``-Timestamp``; the public key (base64 DER, as
SendGrid shows it, or PEM) is configured. :class:`SendGridWebhookVerifier` checks it and
refuses timestamps older than ten minutes (or a minute ahead),
:func:`parse_sendgrid_events` maps the JSON array.

**SES via SNS**: SNS signs a canonical string of the message's fields (SignatureVersion 1:
SHA1withRSA, 2: SHA256withRSA) with the key of the certificate at ``SigningCertURL``,
which is fetched only from ``https://sns.<region>.amazonaws.com/`` and cached.
:class:`SnsVerifier` accepts only the topics it is given, checks the signature and
returns the :class:`SnsMessage`; a
``SubscriptionConfirmation`` carries the ``subscribe_url`` the caller must GET to confirm,
and :func:`parse_ses_events` maps a ``Notification`` whose message is an SES event.

Everything here except fetching a certificate is pure. A signature that does not verify
raises :class:`Unauthenticated`; a body that is not what the provider sends raises
:class:`InvalidArgument`; a certificate that cannot be fetched raises :class:`Unavailable`
(answer 5xx, and SNS tries again).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from notify_core.constants import (
    SENDGRID_SIGNATURE_HEADER,
    SENDGRID_SIGNATURE_MAX_AGE_SECONDS,
    SENDGRID_SIGNATURE_MAX_SKEW_SECONDS,
    SENDGRID_TIMESTAMP_HEADER,
    SNS_CERT_CACHE_SIZE,
    SNS_CERT_FETCH_TIMEOUT_SECONDS,
    SNS_CERT_HOST_PATTERN,
    SNS_CERT_MAX_BYTES,
)
from notify_core.errors import InvalidArgument, Unauthenticated, Unavailable

EventKind = Literal[
    "delivered", "bounced", "complained", "opened", "clicked", "deferred", "dropped"
]


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """One thing a provider tells us happened to one message for one recipient."""

    provider: str
    provider_message_id: str | None
    """SendResult.provider_message_id of the send (SendGrid X-Message-Id, SES MessageId)."""
    kind: EventKind
    address: str
    detail: str
    """Why (bounce diagnostic, SMTP answer, clicked URL, ...); may be empty."""
    at: datetime
    message_id: str | None = None
    """Our Message-ID, when the event carries it (SendGrid custom_args, SES headers)."""
    event_id: str | None = None
    """The provider's id of this event (sg_event_id, SNS MessageId), to drop duplicates."""


def _utc(epoch: Any) -> datetime:
    return datetime.fromtimestamp(float(epoch), UTC)


def _iso(raw: Any) -> datetime:
    at = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


# --- SendGrid ---------------------------------------------------------------------------


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


# --- SNS --------------------------------------------------------------------------------

_SNS_HOST_RE = re.compile(rf"^{SNS_CERT_HOST_PATTERN}$")
_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
_SIGNED_FIELDS["UnsubscribeConfirmation"] = _SIGNED_FIELDS["SubscriptionConfirmation"]
_SNS_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "1": hashes.SHA1,
    "2": hashes.SHA256,
}

CertificateFetcher = Callable[[str], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class SnsMessage:
    """A verified SNS message."""

    type: str
    """``Notification``, ``SubscriptionConfirmation`` or ``UnsubscribeConfirmation``."""
    message_id: str
    topic_arn: str
    message: str
    timestamp: datetime
    subscribe_url: str | None = None
    """For a SubscriptionConfirmation: GET it to confirm (checked to be an SNS host)."""
    subject: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)


def check_sns_url(url: str, what: str) -> str:
    """``url`` when it is https on ``sns.<region>.amazonaws.com``; else Unauthenticated."""
    parts = urlsplit(url)
    if (
        parts.scheme != "https"
        or parts.username is not None
        or parts.port not in (None, 443)
        or not _SNS_HOST_RE.match(parts.hostname or "")
    ):
        raise Unauthenticated(f"SNS {what} {url!r} is not on an SNS host")
    return url


def sns_string_to_sign(fields: Mapping[str, Any]) -> bytes:
    """The canonical string SNS signs: ``name\\nvalue\\n`` per signed field, in order,
    leaving out a Notification's Subject when it has none."""
    kind = fields.get("Type")
    names = _SIGNED_FIELDS.get(str(kind))
    if names is None:
        raise InvalidArgument("Type", f"{kind!r} is not an SNS message type")
    out: list[str] = []
    for name in names:
        value = fields.get(name)
        if value is None:
            if name == "Subject":
                continue
            raise InvalidArgument(name, "is missing from the SNS message")
        out.append(f"{name}\n{value}\n")
    return "".join(out).encode()


def verify_sns_signature(
    fields: Mapping[str, Any], certificate_pem: bytes, *, now: datetime | None = None
) -> None:
    """Check ``fields``' signature with the signing certificate; raises Unauthenticated."""
    _verify_sns(fields, _load_certificate(certificate_pem), now)


def _load_certificate(pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise Unauthenticated("SNS signing certificate is malformed") from None


def _verify_sns(
    fields: Mapping[str, Any], certificate: x509.Certificate, now: datetime | None
) -> None:
    algorithm = _SNS_HASHES.get(str(fields.get("SignatureVersion")))
    if algorithm is None:
        raise Unauthenticated("SNS SignatureVersion must be 1 or 2")
    try:
        signature = base64.b64decode(str(fields.get("Signature", "")), validate=True)
    except binascii.Error:
        raise Unauthenticated("SNS signature is not base64") from None
    moment = now or datetime.now(UTC)
    if not certificate.not_valid_before_utc <= moment <= certificate.not_valid_after_utc:
        raise Unauthenticated("SNS signing certificate is not valid now")
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise Unauthenticated("SNS signing certificate does not hold an RSA key")
    try:
        key.verify(signature, sns_string_to_sign(fields), padding.PKCS1v15(), algorithm())
    except InvalidSignature:
        raise Unauthenticated("SNS message signature does not verify") from None


async def fetch_certificate(url: str) -> bytes:
    """GET a signing certificate over HTTPS (verified TLS, no redirects, bounded size)."""
    try:
        async with (
            httpx.AsyncClient(timeout=SNS_CERT_FETCH_TIMEOUT_SECONDS) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise Unavailable(f"SNS certificate {url}: HTTP {response.status_code}")
            body = b""
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > SNS_CERT_MAX_BYTES:
                    raise Unavailable(f"SNS certificate {url} is too large")
            return body
    except httpx.HTTPError as exc:
        raise Unavailable(f"SNS certificate {url}: {type(exc).__name__}") from None


class SnsVerifier:
    """Verifies SNS HTTP(S) deliveries; signing certificates fetched once and cached."""

    def __init__(
        self,
        fetch: CertificateFetcher = fetch_certificate,
        *,
        topic_arns: Collection[str],
        cache_size: int = SNS_CERT_CACHE_SIZE,
    ) -> None:
        """``topic_arns``: the topics accepted, at least one (any AWS account can
        subscribe an endpoint to its own topic, so "any topic" is never a choice)."""
        if not topic_arns:
            raise ValueError("SnsVerifier needs at least one topic ARN")
        self._fetch = fetch
        self._topics = frozenset(topic_arns)
        self._cache: OrderedDict[str, x509.Certificate] = OrderedDict()
        self._cache_size = cache_size

    async def _certificate(self, url: str) -> x509.Certificate:
        cached = self._cache.get(url)
        if cached is not None:
            self._cache.move_to_end(url)
            return cached
        certificate = _load_certificate(await self._fetch(check_sns_url(url, "SigningCertURL")))
        self._cache[url] = certificate
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return certificate

    async def verify(self, body: bytes | str, *, now: datetime | None = None) -> SnsMessage:
        try:
            fields = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise InvalidArgument("body", "is not JSON") from None
        if not isinstance(fields, dict):
            raise InvalidArgument("body", "must be a JSON object")
        topic = str(fields.get("TopicArn", ""))
        if topic not in self._topics:
            raise Unauthenticated(f"SNS topic {topic!r} is not one we subscribed to")
        cert_url = fields.get("SigningCertURL") or fields.get("SigningCertUrl")
        if not isinstance(cert_url, str):
            raise Unauthenticated("SNS message has no SigningCertURL")
        check_sns_url(cert_url, "SigningCertURL")
        sns_string_to_sign(fields)  # every signed field present, before any fetch
        _verify_sns(fields, await self._certificate(cert_url), now)
        subscribe_url = fields.get("SubscribeURL")
        try:
            timestamp = _iso(fields["Timestamp"])
        except ValueError:
            raise InvalidArgument("Timestamp", "is not an ISO 8601 time") from None
        return SnsMessage(
            type=str(fields["Type"]),
            message_id=str(fields["MessageId"]),
            topic_arn=topic,
            message=str(fields["Message"]),
            timestamp=timestamp,
            subscribe_url=check_sns_url(subscribe_url, "SubscribeURL") if subscribe_url else None,
            subject=fields.get("Subject"),
            fields=fields,
        )


# --- SES events (inside SNS notifications) ----------------------------------------------


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
    at = _iso(body.get("timestamp") or mail.get("timestamp"))
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
