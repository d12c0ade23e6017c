"""Stored preferences: read through the cache, written in one transaction.

Reads go to the cache first (Redis, or memory when embedded; TTL one hour) and fall back
to the database; a user without a row gets the defaults. A write checks the whole update
first (:mod:`preference_svc.validate`), applies it in one transaction, then drops the
cached copy, so the next read sees it. Cache hits and misses are counted.

What the router needs to know of the user's devices (an active FCM or APNs token, an
active web push subscription) is read and cached with the preferences; registering or
unregistering a device drops the cached copy (:meth:`PreferenceStore.forget`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from notify_core.cache.base import Cache
from notify_core.constants import (
    PREFERENCES_TTL_SECONDS,
    PUSH_PLATFORMS,
    WEBPUSH_PLATFORMS,
    preferences_key,
)
from notify_core.db.engine import Database
from notify_core.db.schema import device_tokens, new_id, utcnow
from notify_core.db.schema import notification_preferences as t
from notify_core.domain import DEFAULT_SWITCHES
from preference_svc.validate import (
    DigestInput,
    PreferencesUpdate,
    QuietHoursInput,
    Unset,
)

_SWITCH_COLUMNS = {channel: f"{channel}_enabled" for channel in DEFAULT_SWITCHES}


@dataclass(frozen=True, slots=True)
class StoredPreferences:
    user_id: str
    switches: dict[str, bool] = field(default_factory=lambda: dict(DEFAULT_SWITCHES))
    per_type: dict[str, dict[str, bool]] = field(default_factory=dict)
    quiet_hours: QuietHoursInput | None = None
    digest: DigestInput = field(default_factory=lambda: DigestInput(False, "daily", 9, 1))
    email: str | None = None
    phone: str | None = None
    webhook_url: str | None = None
    has_push_device: bool = False
    """The user has an active FCM or APNs token."""
    has_webpush_subscription: bool = False
    """The user has an active web push subscription."""

    def to_json(self) -> dict[str, Any]:
        quiet = self.quiet_hours
        return {
            "user_id": self.user_id,
            "channels": dict(self.switches),
            "per_type": {k: dict(v) for k, v in self.per_type.items()},
            "quiet_hours": None
            if quiet is None
            else {
                "start": quiet.start.strftime("%H:%M"),
                "end": quiet.end.strftime("%H:%M"),
                "timezone": quiet.timezone,
                "high_breaks_through": quiet.high_breaks_through,
            },
            "digest": {
                "enabled": self.digest.enabled,
                "frequency": self.digest.frequency,
                "hour": self.digest.hour,
                "weekday": self.digest.weekday,
            },
            "email": self.email,
            "phone": self.phone,
            "webhook_url": self.webhook_url,
            "has_push_device": self.has_push_device,
            "has_webpush_subscription": self.has_webpush_subscription,
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> StoredPreferences:
        quiet = body["quiet_hours"]
        digest = body["digest"]
        return cls(
            user_id=body["user_id"],
            switches=dict(body["channels"]),
            per_type={k: dict(v) for k, v in body["per_type"].items()},
            quiet_hours=None
            if quiet is None
            else QuietHoursInput(
                time.fromisoformat(quiet["start"]),
                time.fromisoformat(quiet["end"]),
                quiet["timezone"],
                quiet["high_breaks_through"],
            ),
            digest=DigestInput(
                digest["enabled"], digest["frequency"], digest["hour"], digest["weekday"]
            ),
            email=body["email"],
            phone=body["phone"],
            webhook_url=body["webhook_url"],
            # absent from copies cached before devices were known
            has_push_device=body.get("has_push_device", False),
            has_webpush_subscription=body.get("has_webpush_subscription", False),
        )

    def updated(self, update: PreferencesUpdate) -> StoredPreferences:
        changes: dict[str, Any] = {}
        if not isinstance(update.channels, Unset):
            changes["switches"] = {**self.switches, **update.channels}
        if not isinstance(update.per_type, Unset):
            changes["per_type"] = update.per_type
        for name in ("quiet_hours", "digest", "email", "phone", "webhook_url"):
            value = getattr(update, name)
            if not isinstance(value, Unset):
                changes[name] = value
        return replace(self, **changes)


def from_row(row: Any) -> StoredPreferences:
    """The preferences a ``notification_preferences`` row holds (devices not included)."""
    quiet = None
    if row.quiet_hours_start is not None and row.quiet_hours_end is not None:
        quiet = QuietHoursInput(
            row.quiet_hours_start, row.quiet_hours_end, row.timezone, row.quiet_hours_high_breaks
        )
    return StoredPreferences(
        user_id=row.user_id,
        switches={ch: bool(getattr(row, col)) for ch, col in _SWITCH_COLUMNS.items()},
        per_type=dict(row.preferences or {}),
        quiet_hours=quiet,
        digest=DigestInput(
            bool(row.digest_enabled), row.digest_frequency, row.digest_hour, row.digest_weekday
        ),
        email=row.email_address,
        phone=row.phone,
        webhook_url=row.webhook_url,
    )


def _to_row(p: StoredPreferences) -> dict[str, Any]:
    quiet = p.quiet_hours
    row: dict[str, Any] = {col: p.switches[ch] for ch, col in _SWITCH_COLUMNS.items()}
    row.update(
        user_id=p.user_id,
        preferences=p.per_type,
        quiet_hours_start=quiet.start if quiet else None,
        quiet_hours_end=quiet.end if quiet else None,
        timezone=quiet.timezone if quiet else "UTC",
        quiet_hours_high_breaks=quiet.high_breaks_through if quiet else True,
        digest_enabled=p.digest.enabled,
        digest_frequency=p.digest.frequency,
        digest_hour=p.digest.hour,
        digest_weekday=p.digest.weekday,
        email_address=p.email,
        phone=p.phone,
        webhook_url=p.webhook_url,
        updated_at=utcnow(),
    )
    return row


async def _device_flags(conn: AsyncConnection, user_ids: Sequence[str]) -> dict[str, Any]:
    """``{user_id: {"has_push_device": ..., "has_webpush_subscription": ...}}`` for the
    users that have any active device, in one query."""
    d = device_tokens
    rows = await conn.execute(
        sa.select(d.c.user_id, d.c.platform)
        .where(d.c.user_id.in_(user_ids), d.c.active == sa.true())
        .distinct()
    )
    flags: dict[str, dict[str, bool]] = {}
    for user_id, platform in rows:
        mine = flags.setdefault(
            user_id, {"has_push_device": False, "has_webpush_subscription": False}
        )
        if platform in PUSH_PLATFORMS:
            mine["has_push_device"] = True
        elif platform in WEBPUSH_PLATFORMS:
            mine["has_webpush_subscription"] = True
    return flags


class PreferenceStore:
    def __init__(self, database: Database, cache: Cache, namespace: str) -> None:
        self._db = database
        self._cache = cache
        self._ns = namespace
        self.hits = 0
        self.misses = 0

    async def get(self, user_id: str) -> StoredPreferences:
        key = preferences_key(self._ns, user_id)
        cached = await self._cache.get(key)
        if cached is not None:
            self.hits += 1
            return StoredPreferences.from_json(json.loads(cached))
        self.misses += 1
        async with self._db.read() as conn:
            row = (await conn.execute(sa.select(t).where(t.c.user_id == user_id))).first()
            flags = await _device_flags(conn, [user_id])
        prefs = from_row(row) if row is not None else StoredPreferences(user_id)
        prefs = replace(prefs, **flags.get(user_id, {}))
        await self._cache.set(key, json.dumps(prefs.to_json()).encode(), PREFERENCES_TTL_SECONDS)
        return prefs

    async def get_many(self, user_ids: Sequence[str]) -> dict[str, StoredPreferences]:
        """Many users at once: one cache round trip, one query for the misses."""
        keys = [preferences_key(self._ns, u) for u in user_ids]
        found: dict[str, StoredPreferences] = {}
        for user_id, cached in zip(user_ids, await self._cache.get_many(keys), strict=True):
            if cached is not None:
                found[user_id] = StoredPreferences.from_json(json.loads(cached))
        missing = [u for u in user_ids if u not in found]
        self.hits += len(found)
        self.misses += len(missing)
        if missing:
            async with self._db.read() as conn:
                rows = await conn.execute(sa.select(t).where(t.c.user_id.in_(missing)))
                for row in rows:
                    found[row.user_id] = from_row(row)
                flags = await _device_flags(conn, missing)
            fresh = [
                replace(found.get(u) or StoredPreferences(u), **flags.get(u, {})) for u in missing
            ]
            await asyncio.gather(
                *[
                    self._cache.set(
                        preferences_key(self._ns, p.user_id),
                        json.dumps(p.to_json()).encode(),
                        PREFERENCES_TTL_SECONDS,
                    )
                    for p in fresh
                ]
            )
            found.update((p.user_id, p) for p in fresh)
        return found

    async def update(self, user_id: str, update: PreferencesUpdate) -> StoredPreferences:
        """Apply a checked update in one transaction; answer the preferences now stored."""
        query = sa.select(t).where(t.c.user_id == user_id)
        if not self._db.is_sqlite:
            query = query.with_for_update()
        async with self._db.write() as conn:
            row = (await conn.execute(query)).first()
            current = from_row(row) if row is not None else StoredPreferences(user_id)
            flags = await _device_flags(conn, [user_id])
            new = replace(current.updated(update), **flags.get(user_id, {}))
            values = _to_row(new)
            insert = (sqlite.insert if self._db.is_sqlite else postgresql.insert)(t)
            stmt = insert.values(id=new_id(), **values)
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[t.c.user_id],
                    set_={k: stmt.excluded[k] for k in values if k != "user_id"},
                )
            )
        await self._cache.delete(preferences_key(self._ns, user_id))
        return new

    async def forget(self, *user_ids: str) -> None:
        """Drop the cached preferences of these users (their devices changed)."""
        if user_ids:
            await self._cache.delete(*[preferences_key(self._ns, u) for u in user_ids])
