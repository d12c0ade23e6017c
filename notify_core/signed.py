"""Signed tokens: a few text fields, an optional expiry and their proof, in one URL-safe string.

Links that act without a login (open pixels, tracked clicks, one-click unsubscribe) carry
one of these: whoever holds the link may use it, so the token is the only authority and
is checked in full. Format (version 2), URL-safe base64 without padding of::

    0x02            version; a new layout gets a new version byte
    expires_at      8 bytes, unsigned big-endian, epoch seconds (all ones: never expires)
    fields          each: 2-byte big-endian length, then UTF-8 bytes
    mac             32 bytes: HMAC-SHA256(secret, "notify/" purpose 0x00 payload)

``payload`` is everything before the mac, version byte included. The purpose label
(``unsubscribe``, ``track-open``, ``track-click``) keeps the MACs of one kind of link apart
from every other signed with the same secret.

**Version 1**, the layouts before this one, is still read so that links already sent keep
working: the same version byte, fields and mac, with the expiry after the version byte
(:attr:`V1.EXPIRING`: unsubscribe links) or none at all (:attr:`V1.LASTING`: tracking).
Nothing writes version 1 any more.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

from notify_core.errors import InvalidArgument

VERSION = 2
MAC_BYTES = 32
NEVER = 2**64 - 1
"""``expires_at`` of a token that does not expire."""

_EXPIRY = struct.Struct(">Q")
_LENGTH = struct.Struct(">H")


class V1(Enum):
    """How version 1 tokens of a purpose were laid out."""

    EXPIRING = "expiring"
    LASTING = "lasting"


@dataclass(frozen=True, slots=True)
class Verified:
    fields: tuple[str, ...]
    expires_at: int | None
    """Epoch seconds; ``None`` for a token that does not expire."""


def _mac(secret: str, purpose: str, payload: bytes) -> bytes:
    label = f"notify/{purpose}\x00".encode()
    return hmac.new(secret.encode(), label + payload, hashlib.sha256).digest()


def _pack_fields(fields: Sequence[str]) -> bytes:
    out = b""
    for text in fields:
        raw = text.encode()
        if len(raw) > 0xFFFF:
            raise ValueError(f"a signed field is at most 65535 bytes, got {len(raw)}")
        out += _LENGTH.pack(len(raw)) + raw
    return out


def sign(secret: str, purpose: str, fields: Sequence[str], expires_at: int | None = None) -> str:
    """A token carrying ``fields`` for ``purpose``, valid until ``expires_at`` (epoch
    seconds; ``None``: never expires)."""
    expiry = NEVER if expires_at is None else expires_at
    if not 0 <= expiry <= NEVER:
        raise ValueError(f"expires_at must be epoch seconds, got {expires_at}")
    payload = bytes([VERSION]) + _EXPIRY.pack(expiry) + _pack_fields(fields)
    return _encode(payload + _mac(secret, purpose, payload))


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def malformed(problem: str) -> InvalidArgument:
    """The error of a token that is not one of ours, naming what is wrong with it."""
    return InvalidArgument("token", f"is malformed ({problem}); use the link exactly as sent")


def _decode(token: str, max_chars: int) -> bytes:
    if len(token) > max_chars:
        raise malformed(f"longer than {max_chars} characters")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise malformed("not URL-safe base64") from None
    # One encoding per token: a changed character that decodes to the same bytes
    # (spare bits of the last character) is refused too.
    if _encode(raw) != token:
        raise malformed("not URL-safe base64 without padding")
    return raw


def _unpack_fields(payload: bytes, at: int, count: int) -> tuple[str, ...]:
    out: list[str] = []
    for _ in range(count):
        if at + _LENGTH.size > len(payload):
            raise malformed("truncated")
        (size,) = _LENGTH.unpack_from(payload, at)
        at += _LENGTH.size
        if at + size > len(payload):
            raise malformed("truncated")
        try:
            out.append(payload[at : at + size].decode())
        except UnicodeDecodeError:
            raise malformed("a field is not UTF-8") from None
        at += size
    if at != len(payload):
        raise malformed("trailing bytes")
    return tuple(out)


def _header_size(version: int, v1: V1 | None) -> int:
    """Bytes before the fields in a token of ``version``; refuses versions not read here."""
    if version == VERSION:
        return 1 + _EXPIRY.size
    if version == 1 and v1 is not None:
        return 1 + (_EXPIRY.size if v1 is V1.EXPIRING else 0)
    raise malformed(f"unsupported version {version}")


def verify(
    secret: str,
    purpose: str,
    token: str,
    *,
    count: int,
    now: float | None,
    max_chars: int,
    v1: V1 | None = None,
) -> Verified:
    """The ``count`` fields of a valid, unexpired token for ``purpose``;
    ``InvalidArgument("token", …)`` saying why it is not one.

    ``now`` (epoch seconds) is checked against the token's expiry; ``None`` for a purpose
    whose tokens are signed without one. ``v1`` also accepts version 1 tokens laid out that
    way. The signature is checked (in
    constant time) before anything in the payload is trusted, and before the expiry, so a
    forged token learns nothing but "bad signature".
    """
    raw = _decode(token, max_chars)
    if len(raw) < 1 + MAC_BYTES:
        raise malformed("too short")
    header = _header_size(raw[0], v1)
    if len(raw) < header + MAC_BYTES:
        raise malformed("too short")
    payload, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
    if not hmac.compare_digest(mac, _mac(secret, purpose, payload)):
        raise InvalidArgument(
            "token", "bad signature: the link was altered or was not issued by this service"
        )
    expires_at: int | None = None
    if header > 1:
        (expires_at,) = _EXPIRY.unpack_from(payload, 1)
    fields = _unpack_fields(payload, header, count)
    if expires_at == NEVER:
        expires_at = None
    if expires_at is not None and now is not None and now >= expires_at:
        when = datetime.fromtimestamp(expires_at, UTC).isoformat().replace("+00:00", "Z")
        raise InvalidArgument("token", f"expired at {when}; ask for a new {purpose} link")
    return Verified(fields, expires_at)
