"""One-click unsubscribe links: signed, expiring tokens and the RFC 8058 mail headers (pure).

A token says "switch notifications of ``type`` off on ``channel`` for ``user_id``, until
``expires_at``" and carries its own proof: a :mod:`notify_core.signed` token (purpose
``unsubscribe``, fields ``user_id``, ``type``, ``channel``) signed with the signing secret
(``NOTIFY_SIGNING_SECRET``, which defaults to the JWT secret). Whoever holds the link may
use it, without logging in — that is what one-click means — so the token is the only
authority and is checked in full. The channel is a channel name or ``"*"``: every channel
of that type. Links of the version 1 layout (sent before) are still read.

RFC 8058, which the headers follow: ``List-Unsubscribe`` carries the HTTPS link (and
optionally a ``mailto:``), ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` tells mail
clients they may POST ``List-Unsubscribe=One-Click`` to it. A GET must never unsubscribe:
mail scanners fetch links on their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from notify_core.checks import check_type, check_user_id
from notify_core.constants import (
    MAX_UNSUBSCRIBE_TOKEN,
    UNSUBSCRIBE_ALL_CHANNELS,
    UNSUBSCRIBE_MAX_TTL_SECONDS,
    UNSUBSCRIBE_TTL_SECONDS,
)
from notify_core.domain import CHANNELS
from notify_core.errors import InvalidArgument
from notify_core.signed import V1, malformed, sign, verify

PURPOSE = "unsubscribe"
ONE_CLICK = "List-Unsubscribe=One-Click"
"""The value of ``List-Unsubscribe-Post``, and the body mail clients POST."""

_URL_FORBIDDEN = frozenset("<>, \t\r\n\"'")


@dataclass(frozen=True, slots=True)
class UnsubscribeClaim:
    """What a valid token allows: ``type`` off on ``channel`` (or ``"*"``) for ``user_id``."""

    user_id: str
    type: str
    channel: str
    expires_at: int

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels this claim switches off."""
        if self.channel == UNSUBSCRIBE_ALL_CHANNELS:
            return tuple(CHANNELS)
        return (self.channel,)


@dataclass(frozen=True, slots=True)
class LinkRequest:
    """A producer's ``POST /users/{id}/unsubscribe-links`` body, checked."""

    type: str
    channel: str
    ttl_seconds: int


def _check_channel(channel: str, field: str) -> None:
    if channel != UNSUBSCRIBE_ALL_CHANNELS and channel not in CHANNELS:
        raise InvalidArgument(
            field,
            f"must be one of {', '.join(CHANNELS)} or {UNSUBSCRIBE_ALL_CHANNELS!r}, "
            f"got {channel!r}",
        )


def _check_fields(user_id: str, type_: str, channel: str, prefix: str) -> None:
    check_user_id(user_id, f"{prefix}user_id")
    check_type(type_, f"{prefix}type")
    _check_channel(channel, f"{prefix}channel")


def make_token(secret: str, user_id: str, type_: str, channel: str, expires_at: int) -> str:
    """A signed token for switching ``type_`` off on ``channel`` until ``expires_at``."""
    _check_fields(user_id, type_, channel, "")
    if expires_at < 0:
        raise InvalidArgument("expires_at", f"must be epoch seconds, got {expires_at}")
    return sign(secret, PURPOSE, (user_id, type_, channel), expires_at)


def read_token(secret: str, token: str, now: float) -> UnsubscribeClaim:
    """The claim of a valid token (of this format, or of version 1: links already sent);
    ``InvalidArgument("token", …)`` saying why it is not."""
    verified = verify(
        secret, PURPOSE, token, count=3, now=now, max_chars=MAX_UNSUBSCRIBE_TOKEN, v1=V1.EXPIRING
    )
    user_id, type_, channel = verified.fields
    if verified.expires_at is None:
        raise malformed("no expiry")
    try:
        _check_fields(user_id, type_, channel, "token.")
    except InvalidArgument as exc:
        raise malformed(exc.message) from None
    return UnsubscribeClaim(user_id, type_, channel, verified.expires_at)


def unsubscribe_url(public_url: str, token: str) -> str:
    """The link for ``token`` under the edge's public base URL (which may carry a path)."""
    return f"{public_url.rstrip('/')}/unsubscribe?{urlencode({'token': token})}"


def _header_uri(value: str, field: str, schemes: tuple[str, ...]) -> str:
    if not value or not value.isascii() or not value.isprintable():
        raise InvalidArgument(field, "must be a printable ASCII URI")
    if any(c in _URL_FORBIDDEN for c in value):
        raise InvalidArgument(field, "must be a URI without spaces, quotes, commas or <>")
    if urlsplit(value).scheme.lower() not in schemes:
        raise InvalidArgument(field, f"must be a {' or '.join(schemes)} URI, got {value!r}")
    return f"<{value}>"


def list_unsubscribe_headers(url: str, mailto: str | None = None) -> dict[str, str]:
    """``List-Unsubscribe`` and ``List-Unsubscribe-Post`` for an email carrying ``url``.

    ``mailto`` (an address, or a ``mailto:`` URI) is listed first, as in RFC 8058's
    examples; mail clients doing one-click use the HTTPS URI whatever the order. RFC 8058
    wants an ``https`` URI; ``http`` is accepted for local and test setups only.
    """
    uris = []
    if mailto is not None:
        address = mailto if mailto.lower().startswith("mailto:") else f"mailto:{mailto}"
        uris.append(_header_uri(address, "mailto", ("mailto",)))
    uris.append(_header_uri(url, "url", ("https", "http")))
    return {"List-Unsubscribe": ", ".join(uris), "List-Unsubscribe-Post": ONE_CLICK}


def parse_link_request(body: Any) -> LinkRequest:
    """``{"type": …, "channel"?: "email", "ttl_seconds"?: 2592000}``, every error naming
    its field."""
    if not isinstance(body, dict):
        raise InvalidArgument("body", "must be a JSON object")
    unknown = sorted(set(body) - {"type", "channel", "ttl_seconds"})
    if unknown:
        raise InvalidArgument(unknown[0], "is not a known field")
    if "type" not in body:
        raise InvalidArgument("type", "is required")
    type_ = body["type"]
    if not isinstance(type_, str):
        raise InvalidArgument("type", "must be a string")
    channel = body.get("channel", "email")
    if not isinstance(channel, str):
        raise InvalidArgument("channel", "must be a string")
    ttl = body.get("ttl_seconds", UNSUBSCRIBE_TTL_SECONDS)
    if (
        isinstance(ttl, bool)
        or not isinstance(ttl, int)
        or not 1 <= ttl <= (UNSUBSCRIBE_MAX_TTL_SECONDS)
    ):
        raise InvalidArgument(
            "ttl_seconds", f"must be a whole number from 1 to {UNSUBSCRIBE_MAX_TTL_SECONDS}"
        )
    check_type(type_, "type")
    _check_channel(channel, "channel")
    return LinkRequest(type_, channel, ttl)
