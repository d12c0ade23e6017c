"""SNS HTTP(S) deliveries, verified: how SES's events reach us.

SNS signs a canonical string of the message's fields (SignatureVersion 1: SHA1withRSA,
2: SHA256withRSA) with the key of the certificate at ``SigningCertURL``, which is fetched
only from ``https://sns.<region>.amazonaws.com/`` and cached. :class:`SnsVerifier` accepts
only the topics it is given, checks the signature and returns the :class:`SnsMessage`; a
``SubscriptionConfirmation`` carries the ``subscribe_url`` the caller must GET to confirm
(:func:`get_subscribe_url`).

Everything here except fetching a certificate and confirming a subscription is pure. A
signature that does not verify raises :class:`Unauthenticated`; a body that is not what
SNS sends raises :class:`InvalidArgument`; a certificate that cannot be fetched, or SNS
not answering a confirmation, raises :class:`Unavailable` (answer 5xx, and SNS tries again).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from notify_core.constants import (
    SNS_CERT_CACHE_SIZE,
    SNS_CERT_FETCH_TIMEOUT_SECONDS,
    SNS_CERT_HOST_PATTERN,
    SNS_CERT_MAX_BYTES,
    SNS_SUBSCRIBE_TIMEOUT_SECONDS,
)
from notify_core.errors import InvalidArgument, Unauthenticated, Unavailable


def iso_time(raw: Any) -> datetime:
    """An ISO 8601 time as AWS writes it (``...Z``), in UTC when it names no zone."""
    at = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    return at if at.tzinfo else at.replace(tzinfo=UTC)


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
    import httpx

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
            timestamp = iso_time(fields["Timestamp"])
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


SubscribeGetter = Callable[[str], Awaitable[None]]
"""GETs an SNS SubscribeURL; raises Unavailable when SNS did not answer 200."""


async def get_subscribe_url(url: str) -> None:
    """Confirm an SNS subscription: GET its (checked) SubscribeURL, no redirects."""
    import httpx

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
