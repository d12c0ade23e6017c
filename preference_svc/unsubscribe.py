"""One-click unsubscribe links: signed, expiring tokens and the RFC 8058 mail headers (pure).

A token says "switch notifications of ``type`` off on ``channel`` for ``user_id``, until
``expires_at``" and carries its own proof: an HMAC-SHA256 over the payload with the signing
secret (``NOTIFY_SIGNING_SECRET``). Whoever holds the link may use it, without logging in —
that is what one-click means — so the token is the only authority and is checked in full.

Token format (version 1), URL-safe base64 without padding of::

    0x01                      version; a new layout gets a new version byte
    expires_at                8 bytes, unsigned big-endian, epoch seconds
    user_id, type, channel    each: 2-byte big-endian length, then UTF-8 bytes
    mac                       32 bytes: HMAC-SHA256(secret, "notify/unsubscribe" 0x00 payload)

``payload`` is everything before the mac, version byte included. The purpose label keeps
these MACs apart from anything else signed with the same secret (it defaults to the JWT
secret). The channel is a channel name or ``"*"``: every channel of that type.

RFC 8058, which the headers follow: ``List-Unsubscribe`` carries the HTTPS link (and
optionally a ``mailto:``), ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` tells mail
clients they may POST ``List-Unsubscribe=One-Click`` to it. A GET must never unsubscribe:
mail scanners fetch links on their own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from notify_core.constants import (
    MAX_TYPE,
    MAX_UNSUBSCRIBE_TOKEN,
    MAX_USER_ID,
    UNSUBSCRIBE_ALL_CHANNELS,
    UNSUBSCRIBE_MAX_TTL_SECONDS,
    UNSUBSCRIBE_TTL_SECONDS,
)
from notify_core.domain import CHANNELS
from notify_core.errors import InvalidArgument

VERSION = 1
MAC_BYTES = 32
PURPOSE = b"notify/unsubscribe\x00"
ONE_CLICK = "List-Unsubscribe=One-Click"
"""The value of ``List-Unsubscribe-Post``, and the body mail clients POST."""

_HEADER = struct.Struct(">BQ")
_LENGTH = struct.Struct(">H")
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


def _check_type(type_: str, field: str) -> None:
    if not type_.strip() or len(type_) > MAX_TYPE:
        raise InvalidArgument(field, f"must be 1 to {MAX_TYPE} characters")


def _check_channel(channel: str, field: str) -> None:
    if channel != UNSUBSCRIBE_ALL_CHANNELS and channel not in CHANNELS:
        raise InvalidArgument(
            field,
            f"must be one of {', '.join(CHANNELS)} or {UNSUBSCRIBE_ALL_CHANNELS!r}, "
            f"got {channel!r}",
        )


def _check_fields(user_id: str, type_: str, channel: str, prefix: str) -> None:
    if not user_id.strip() or len(user_id) > MAX_USER_ID:
        raise InvalidArgument(f"{prefix}user_id", f"must be 1 to {MAX_USER_ID} characters")
    _check_type(type_, f"{prefix}type")
    _check_channel(channel, f"{prefix}channel")


def _mac(secret: str, payload: bytes) -> bytes:
    return hmac.new(secret.encode(), PURPOSE + payload, hashlib.sha256).digest()


def make_token(secret: str, user_id: str, type_: str, channel: str, expires_at: int) -> str:
    """A signed token for switching ``type_`` off on ``channel`` until ``expires_at``."""
    _check_fields(user_id, type_, channel, "")
    if expires_at < 0:
        raise InvalidArgument("expires_at", f"must be epoch seconds, got {expires_at}")
    payload = _HEADER.pack(VERSION, expires_at)
    for text in (user_id, type_, channel):
        raw = text.encode()
        payload += _LENGTH.pack(len(raw)) + raw
    return base64.urlsafe_b64encode(payload + _mac(secret, payload)).rstrip(b"=").decode()


def _malformed(problem: str) -> InvalidArgument:
    return InvalidArgument("token", f"is malformed ({problem}); use the link exactly as sent")


def _decode(token: str) -> bytes:
    if not token:
        return b""
    if len(token) > MAX_UNSUBSCRIBE_TOKEN:
        raise _malformed(f"longer than {MAX_UNSUBSCRIBE_TOKEN} characters")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise _malformed("not URL-safe base64") from None
    # One encoding per token: a changed character that decodes to the same bytes
    # (spare bits of the last character) is refused too.
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != token:
        raise _malformed("not URL-safe base64 without padding")
    return raw


def _fields(payload: bytes) -> list[str]:
    out: list[str] = []
    at = _HEADER.size
    for _ in range(3):
        if at + _LENGTH.size > len(payload):
            raise _malformed("truncated")
        (size,) = _LENGTH.unpack_from(payload, at)
        at += _LENGTH.size
        if at + size > len(payload):
            raise _malformed("truncated")
        try:
            out.append(payload[at : at + size].decode())
        except UnicodeDecodeError:
            raise _malformed("a field is not UTF-8") from None
        at += size
    if at != len(payload):
        raise _malformed("trailing bytes")
    return out


def read_token(secret: str, token: str, now: float) -> UnsubscribeClaim:
    """The claim of a valid token; ``InvalidArgument("token", …)`` saying why it is not.

    The signature is checked (in constant time) before anything in the payload is trusted,
    and before the expiry, so a forged token learns nothing but "bad signature".
    """
    raw = _decode(token)
    if len(raw) < _HEADER.size + MAC_BYTES:
        raise _malformed("too short")
    if raw[0] != VERSION:
        raise _malformed(f"unsupported version {raw[0]}")
    payload, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
    if not hmac.compare_digest(mac, _mac(secret, payload)):
        raise InvalidArgument(
            "token", "bad signature: the link was altered or was not issued by this service"
        )
    _, expires_at = _HEADER.unpack_from(payload)
    user_id, type_, channel = _fields(payload)
    if now >= expires_at:
        when = datetime.fromtimestamp(expires_at, UTC).isoformat().replace("+00:00", "Z")
        raise InvalidArgument("token", f"expired at {when}; ask for a new unsubscribe link")
    try:
        _check_fields(user_id, type_, channel, "token.")
    except InvalidArgument as exc:
        raise _malformed(exc.message) from None
    return UnsubscribeClaim(user_id, type_, channel, int(expires_at))


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
    _check_type(type_, "type")
    _check_channel(channel, "channel")
    return LinkRequest(type_, channel, ttl)
