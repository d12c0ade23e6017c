"""Device tokens: the phones (FCM, APNs) and browsers (web push) a user is reached on.

A registration is checked as a whole first (:func:`parse_device`, pure, every error names
the field), then written in one transaction:

- a token nobody holds is inserted;
- the same token registered again by the same user is refreshed (``last_used_at``, and the
  name and device id when given): registering is idempotent;
- a token active for another user moves to this one (the device changed hands): the old
  registration is deactivated and a new one inserted, in the same transaction.

Unregistering deactivates the row (it is kept, inactive). Every change drops the cached
preferences of the users concerned, so the router sees at once whether they still have a
push device or a web push subscription.

Tokens are stored in one canonical form: APNs tokens in lower case, a web push
subscription as compact JSON with sorted keys, holding only ``endpoint`` and ``keys``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from notify_core.constants import (
    APNS_TOKEN_HEX,
    DEVICE_PLATFORMS,
    MAX_DEVICE_ID,
    MAX_DEVICE_NAME,
    MAX_DEVICE_TOKEN,
    MAX_WEBPUSH_ENDPOINT,
)
from notify_core.convert import iso
from notify_core.db.engine import Database
from notify_core.db.schema import device_tokens as t
from notify_core.db.schema import new_id, utcnow
from notify_core.errors import InvalidArgument, NotFound, Unavailable
from notify_core.storable import check_text, loads
from preference_svc.store import PreferenceStore

APNS_TOKEN = re.compile(rf"^[0-9A-Fa-f]{{{APNS_TOKEN_HEX}}}$")
BASE64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")
DEVICE_FIELDS = {"platform", "token", "device_id", "device_name"}
SUBSCRIPTION_FIELDS = {"endpoint", "keys", "expirationTime"}
P256DH_BYTES = 65
"""An uncompressed P-256 public key (RFC 8291)."""
AUTH_BYTES = 16
"""The web push authentication secret (RFC 8291)."""
_REGISTER_ATTEMPTS = 5
"""A lost race costs one attempt: n users registering one token at once need up to n."""


UNREGISTERED = "unregistered"
"""``deactivated_reason`` of a device its user or the producer removed."""
MOVED = "registered again by another user"
"""``deactivated_reason`` of a token that changed hands."""


@dataclass(frozen=True, slots=True)
class DeviceInput:
    """A checked registration: ``token`` is already in its canonical form."""

    platform: str
    token: str
    device_id: str | None = None
    device_name: str | None = None


@dataclass(frozen=True, slots=True)
class Device:
    """One registration as stored."""

    id: str
    user_id: str
    platform: str
    token: str
    device_id: str | None
    device_name: str | None
    active: bool
    created_at: datetime
    last_used_at: datetime | None
    deactivated_at: datetime | None = None
    deactivated_reason: str | None = None
    """Why it stopped: unregistered, the provider's answer (token gone), unused too long."""

    def to_json(self) -> dict[str, Any]:
        """The REST shape; a web push token is given back as the subscription object."""
        token: Any = json.loads(self.token) if self.platform == "webpush" else self.token
        return {
            "id": self.id,
            "user_id": self.user_id,
            "platform": self.platform,
            "token": token,
            "device_id": self.device_id,
            "device_name": self.device_name,
            "active": self.active,
            "created_at": iso(self.created_at),
            "last_used_at": None if self.last_used_at is None else iso(self.last_used_at),
            "deactivated_at": None if self.deactivated_at is None else iso(self.deactivated_at),
            "deactivated_reason": self.deactivated_reason,
        }


# --- validation (pure) ------------------------------------------------------------------


def check_platform(value: Any) -> str:
    if value not in DEVICE_PLATFORMS:
        raise InvalidArgument(
            "platform", f"must be one of {', '.join(DEVICE_PLATFORMS)}, got {value!r}"
        )
    return str(value)


def _fcm_token(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidArgument("token", "an FCM token must be a non-empty string")
    if len(value) > MAX_DEVICE_TOKEN:
        raise InvalidArgument("token", f"an FCM token is at most {MAX_DEVICE_TOKEN} characters")
    if any(c.isspace() for c in value):
        raise InvalidArgument("token", "an FCM token must not contain whitespace")
    return check_text(value, "token")


def _apns_token(value: Any) -> str:
    if not isinstance(value, str) or not APNS_TOKEN.match(value):
        raise InvalidArgument(
            "token", f"an APNs token must be {APNS_TOKEN_HEX} hexadecimal characters"
        )
    return value.lower()


def _key(keys: dict[str, Any], name: str, size: int) -> str:
    field = f"token.keys.{name}"
    value = keys.get(name)
    if not isinstance(value, str) or not BASE64URL.match(value):
        raise InvalidArgument(field, "must be a base64url string")
    try:
        raw = base64.urlsafe_b64decode(value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4))
    except (binascii.Error, ValueError):
        raise InvalidArgument(field, "must be a base64url string") from None
    if len(raw) != size:
        raise InvalidArgument(field, f"must encode {size} bytes, got {len(raw)}")
    return value


def _webpush_token(value: Any) -> str:
    if isinstance(value, str):
        if len(value) > MAX_DEVICE_TOKEN:
            raise InvalidArgument("token", f"must be at most {MAX_DEVICE_TOKEN} characters")
        try:
            value = loads(value)
        except InvalidArgument:
            raise InvalidArgument(
                "token", "a web push token must be the subscription as a JSON object"
            ) from None
    if not isinstance(value, dict):
        raise InvalidArgument(
            "token", 'a web push token must be an object {"endpoint": ..., "keys": {...}}'
        )
    unknown = sorted(set(value) - SUBSCRIPTION_FIELDS)
    if unknown:
        raise InvalidArgument(f"token.{unknown[0]}", "is not a known field")
    endpoint = value.get("endpoint")
    if not isinstance(endpoint, str) or len(endpoint) > MAX_WEBPUSH_ENDPOINT:
        raise InvalidArgument(
            "token.endpoint", f"must be an https URL of at most {MAX_WEBPUSH_ENDPOINT} characters"
        )
    parts = urlsplit(check_text(endpoint, "token.endpoint"))
    if parts.scheme != "https" or not parts.hostname:
        raise InvalidArgument("token.endpoint", f"must be an https URL, got {endpoint!r}")
    keys = value.get("keys")
    if not isinstance(keys, dict):
        raise InvalidArgument("token.keys", "must be an object with p256dh and auth")
    unknown = sorted(set(keys) - {"p256dh", "auth"})
    if unknown:
        raise InvalidArgument(f"token.keys.{unknown[0]}", "is not a known field")
    canonical = {
        "endpoint": endpoint,
        "keys": {
            "auth": _key(keys, "auth", AUTH_BYTES),
            "p256dh": _key(keys, "p256dh", P256DH_BYTES),
        },
    }
    return json.dumps(canonical, sort_keys=True, separators=(",", ":"))


def check_token(platform: str, value: Any) -> str:
    """The canonical form of a token of ``platform`` (already checked)."""
    if platform == "fcm":
        return _fcm_token(value)
    if platform == "apns":
        return _apns_token(value)
    return _webpush_token(value)


def _optional_text(value: Any, field: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidArgument(field, f"must be a string of at most {limit} characters")
    return check_text(value, field) or None


def make_device(
    platform: Any, token: Any, device_id: Any = None, device_name: Any = None
) -> DeviceInput:
    """A registration from its parts; empty names and device ids count as not given."""
    checked = check_platform(platform)
    return DeviceInput(
        checked,
        check_token(checked, token),
        _optional_text(device_id, "device_id", MAX_DEVICE_ID),
        _optional_text(device_name, "device_name", MAX_DEVICE_NAME),
    )


def parse_device(body: Any) -> DeviceInput:
    """The registration a ``POST /devices`` body asks for."""
    if not isinstance(body, dict):
        raise InvalidArgument("body", "must be an object")
    unknown = sorted(set(body) - DEVICE_FIELDS)
    if unknown:
        raise InvalidArgument(unknown[0], "is not a known field")
    for name in ("platform", "token"):
        if name not in body:
            raise InvalidArgument(name, "is required")
    return make_device(
        body["platform"], body["token"], body.get("device_id"), body.get("device_name")
    )


# --- storage ----------------------------------------------------------------------------


def _device(row: Any) -> Device:
    return Device(
        id=row.id,
        user_id=row.user_id,
        platform=row.platform,
        token=row.token,
        device_id=row.device_id,
        device_name=row.device_name,
        active=bool(row.active),
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        deactivated_at=row.deactivated_at,
        deactivated_reason=row.deactivated_reason,
    )


class _Raced(Exception):
    """Another transaction registered the same token between our read and our insert."""


class DeviceStore:
    def __init__(self, database: Database, preferences: PreferenceStore) -> None:
        self._db = database
        self._prefs = preferences

    async def register(self, user_id: str, device: DeviceInput) -> tuple[Device, bool]:
        """Register (or refresh) a token for ``user_id``; answer it and whether it is new."""
        for _ in range(_REGISTER_ATTEMPTS):
            try:
                async with self._db.write() as conn:
                    stored, created, owners = await self._register(conn, user_id, device)
            except _Raced:
                continue
            await self._prefs.forget(*owners)
            return stored, created
        raise Unavailable("device registration kept racing with another one; try again")

    async def _register(
        self, conn: AsyncConnection, user_id: str, device: DeviceInput
    ) -> tuple[Device, bool, set[str]]:
        now = utcnow()
        query = sa.select(t).where(t.c.token == device.token, t.c.active == sa.true())
        if not self._db.is_sqlite:
            query = query.with_for_update()
        current = (await conn.execute(query)).first()
        if current is not None and (current.user_id, current.platform) == (
            user_id,
            device.platform,
        ):
            values: dict[str, Any] = {"last_used_at": now}
            if device.device_name is not None:
                values["device_name"] = device.device_name
            if device.device_id is not None:
                values["device_id"] = device.device_id
            row = (
                await conn.execute(
                    sa.update(t).where(t.c.id == current.id).values(**values).returning(*t.c)
                )
            ).one()
            return _device(row), False, {user_id}
        owners = {user_id}
        if current is not None:  # the device changed hands (or platforms): retire the old
            await conn.execute(
                sa.update(t)
                .where(t.c.id == current.id)
                .values(active=False, deactivated_at=now, deactivated_reason=MOVED)
            )
            owners.add(current.user_id)
        insert = (sqlite.insert if self._db.is_sqlite else postgresql.insert)(t)
        stmt = insert.values(
            id=new_id(),
            user_id=user_id,
            platform=device.platform,
            token=device.token,
            device_id=device.device_id,
            device_name=device.device_name,
            last_used_at=now,
            active=True,
            created_at=now,
        ).on_conflict_do_nothing(index_elements=[t.c.token], index_where=t.c.active == sa.true())
        inserted = (await conn.execute(stmt.returning(*t.c))).first()
        if inserted is None:
            raise _Raced
        return _device(inserted), True, owners

    async def list(self, user_id: str, *, inactive: bool = False) -> list[Device]:
        """The user's active registrations, oldest first; with ``inactive``, the
        deactivated ones too (each with why and when)."""
        query = sa.select(t).where(t.c.user_id == user_id).order_by(t.c.created_at, t.c.id)
        if not inactive:
            query = query.where(t.c.active == sa.true())
        async with self._db.read() as conn:
            return [_device(row) for row in await conn.execute(query)]

    async def unregister(self, user_id: str, device_id: str) -> Device:
        """Deactivate one of the user's registrations (by its ``id``)."""
        stmt = (
            sa.update(t)
            .where(t.c.id == device_id, t.c.user_id == user_id, t.c.active == sa.true())
            .values(active=False, deactivated_at=utcnow(), deactivated_reason=UNREGISTERED)
            .returning(*t.c)
        )
        async with self._db.write() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None:
            raise NotFound(f"device {device_id!r} is not an active device of this user")
        await self._prefs.forget(user_id)
        return _device(row)
