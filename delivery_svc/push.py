"""The push and web push channels: one delivery fans out to the user's active devices.

A ``push`` delivery goes to every active FCM and APNs token of the user, a ``webpush``
delivery to every active web push subscription; each device is one send with its own row in
``push_sends`` (status, provider, provider id, error), under the delivery. The delivery is
``sent`` when at least one device took it. When none did and one of the refusals is
retryable, the delivery is retried; a retry sends only to the devices that have not taken
it yet (a device already ``sent`` for this delivery is skipped, so a retry or a redelivered
job does not notify it twice). Every device refused for good fails the delivery.

Each device's send id is fixed by (delivery, device) (a UUID v5), so APNs ``apns-id`` and
our dedupe keys stay the same across retries.

Lifecycle, in the same transaction as the ``push_sends`` rows: a device a provider declares
gone (``Outcome.gone``) is deactivated with the provider's answer as the reason, and its
owner's cached preferences are dropped after the commit; every accepted send moves the
device's ``last_used_at``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from delivery_svc.breaker import Breaker
from delivery_svc.failover import Failover
from delivery_svc.providers.base import Outcome, PushMessage
from notify_core.convert import row_to_json
from notify_core.db.engine import Database
from notify_core.db.schema import notifications, push_sends
from notify_core.domain import Channel
from notify_core.errors import NotifyError
from preference_svc.api import PreferenceStore, Target, active_devices, deactivate, record_use
from template_svc.api import Templates

PLATFORMS: Mapping[str, tuple[str, ...]] = {
    Channel.PUSH: ("fcm", "apns"),
    Channel.WEBPUSH: ("webpush",),
}
"""The device platforms each channel sends to."""
PUSH_TTL_SECONDS = 86_400
"""How long a push service may hold a push for an offline device, when the notification
does not expire sooner (``expires_at``)."""
MAX_DATA_JSON = 2048
"""The notification's ``data`` travels (as one JSON string) when it is at most this long;
FCM and APNs take 4 KB per message in all."""
_SEND_IDS = uuid.UUID("6f1c9a53-2d0e-4a54-9a0a-8d0f3c1b7e21")

PushText = Callable[[Mapping[str, Any]], Awaitable[tuple[str, str]]]
"""``(title, body)`` of a push for a delivery row (the template's push text, or the
notification's own title and message)."""


async def own_text(row: Mapping[str, Any]) -> tuple[str, str]:
    return str(row["title"]), str(row["message"])


def template_text(templates: Templates) -> PushText:
    """The push template of the notification's ``template`` (title and body, in its
    locale or the nearest), else the notification's own title and message. A template
    that cannot render raises :class:`InvalidArgument` (the delivery fails for good)."""

    async def text(row: Mapping[str, Any]) -> tuple[str, str]:
        content = await templates.render_push(
            row["template"], row["locale"], row["data"] or {}, row_to_json(row)
        )
        if content is None:
            return await own_text(row)
        return content.title, content.body

    return text


def send_id(delivery_id: str, device_id: str) -> str:
    return str(uuid.uuid5(_SEND_IDS, f"{delivery_id}:{device_id}"))


@dataclass(frozen=True, slots=True)
class _Send:
    delivery_id: str
    device: Target
    outcome: Outcome


class PushChannel:
    """The ``push`` (FCM, APNs) or ``webpush`` channel."""

    def __init__(
        self,
        name: str,
        database: Database,
        preferences: PreferenceStore,
        providers: Mapping[str, Failover[PushMessage]],
        *,
        text: PushText = own_text,
    ) -> None:
        self.name = name
        self._db = database
        self._prefs = preferences
        self._providers = providers
        """By platform; a platform without one is not configured."""
        self._text = text

    def breakers(self) -> list[Breaker]:
        return [b for p in self._providers.values() for b in p.breakers.values()]

    async def send_all(self, rows: Sequence[Mapping[str, Any]]) -> list[Outcome]:
        users = sorted({r["user_id"] for r in rows})
        devices = await active_devices(self._db, users, PLATFORMS[self.name])
        done = await self._already_sent([r["delivery_id"] for r in rows])
        badges = await self._badges(users, devices)
        jobs: list[Awaitable[_Send]] = []
        unrenderable: dict[str, Outcome] = {}
        for row in rows:
            try:
                title, body = await self._text(row)
            except NotifyError as exc:
                unrenderable[row["delivery_id"]] = Outcome.permanent(self.name, exc.message)
                continue
            for device in devices.get(row["user_id"], []):
                if (row["delivery_id"], device.id) not in done:
                    message = _message(row, device, title, body, badges.get(row["user_id"]))
                    jobs.append(self._one(row["delivery_id"], device, message))
        sends = list(await asyncio.gather(*jobs))
        await self._record(sends)
        return [
            unrenderable.get(r["delivery_id"]) or self._overall(r, devices, done, sends)
            for r in rows
        ]

    async def _one(self, delivery_id: str, device: Target, message: PushMessage) -> _Send:
        provider = self._providers.get(device.platform)
        if provider is None:
            outcome = Outcome.permanent(device.platform, f"{device.platform} is not configured")
        else:
            outcome = await provider.send(message)
        return _Send(delivery_id, device, outcome)

    def _overall(
        self,
        row: Mapping[str, Any],
        devices: Mapping[str, list[Target]],
        done: Mapping[tuple[str, str], str],
        sends: Sequence[_Send],
    ) -> Outcome:
        mine = [s for s in sends if s.delivery_id == row["delivery_id"]]
        taken = [s.outcome for s in mine if s.outcome.ok]
        if taken or (not mine and any(k[0] == row["delivery_id"] for k in done)):
            first = taken[0] if taken else None
            providers = sorted({o.provider for o in taken}) or sorted(
                {p for (d, _), p in done.items() if d == row["delivery_id"]}
            )
            return Outcome.sent(",".join(providers), first.provider_id if first else None)
        if not devices.get(row["user_id"]):
            what = "device" if self.name == Channel.PUSH else "web push subscription"
            return Outcome.permanent(self.name, f"the user has no active {what}")
        refusals = [s.outcome for s in mine]
        detail = "; ".join(f"{s.device.platform} {s.device.id}: {s.outcome.detail}" for s in mine)
        waits = [o.retry_after for o in refusals if o.retryable and o.retry_after is not None]
        if any(o.retryable for o in refusals):
            return Outcome.transient(self.name, detail, max(waits) if waits else None)
        return Outcome.permanent(self.name, detail)

    async def _already_sent(self, delivery_ids: Sequence[str]) -> dict[tuple[str, str], str]:
        """``{(delivery_id, device_id): provider}`` of the devices that took these already."""
        p = push_sends.c
        async with self._db.read() as conn:
            got = await conn.execute(
                sa.select(p.delivery_id, p.device_id, p.provider).where(
                    p.delivery_id.in_(delivery_ids), p.status == "sent"
                )
            )
            return {(r.delivery_id, r.device_id): r.provider for r in got}

    async def _badges(
        self, users: Sequence[str], devices: Mapping[str, list[Target]]
    ) -> dict[str, int]:
        """The unread count of the users with an APNs device (the app icon's badge)."""
        wanted = [u for u in users if any(d.platform == "apns" for d in devices.get(u, []))]
        if not wanted:
            return {}
        n = notifications.c
        async with self._db.read() as conn:
            got = await conn.execute(
                sa.select(n.user_id, sa.func.count())
                .where(n.user_id.in_(wanted), n.read == sa.false())
                .group_by(n.user_id)
            )
            return {user: int(count) for user, count in got}

    async def _record(self, sends: Sequence[_Send]) -> None:
        """The ``push_sends`` rows, the devices used and the devices gone, in one
        transaction; then the gone devices' owners' cached preferences are dropped."""
        if not sends:
            return
        now = datetime.now(UTC)
        async with self._db.write() as conn:
            await self._upsert(conn, sends, now)
            await record_use(conn, {s.device.id for s in sends if s.outcome.ok}, now)
            gone = {s.device.id: s.outcome.message for s in sends if s.outcome.gone}
            owners = await deactivate(conn, gone, now)
        await self._prefs.forget(*sorted(owners))

    async def _upsert(self, conn: AsyncConnection, sends: Sequence[_Send], now: datetime) -> None:
        rows = [
            {
                "id": send_id(s.delivery_id, s.device.id),
                "delivery_id": s.delivery_id,
                "device_id": s.device.id,
                "platform": s.device.platform,
                "status": _status(s.outcome),
                "provider": s.outcome.provider,
                "provider_message_id": s.outcome.provider_id,
                "error_message": None if s.outcome.ok else s.outcome.detail,
                "updated_at": now,
            }
            for s in sends
        ]
        insert = (sqlite.insert if self._db.is_sqlite else postgresql.insert)(push_sends)
        stmt = insert.values(rows)
        p = push_sends.c
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[p.delivery_id, p.device_id],
                set_={
                    "status": stmt.excluded.status,
                    "provider": stmt.excluded.provider,
                    "provider_message_id": stmt.excluded.provider_message_id,
                    "error_message": stmt.excluded.error_message,
                    "attempts": p.attempts + 1,
                    "updated_at": stmt.excluded.updated_at,
                },
            )
        )


def _status(outcome: Outcome) -> str:
    if outcome.ok:
        return "sent"
    return "retrying" if outcome.retryable else "failed"


def _message(
    row: Mapping[str, Any], device: Target, title: str, body: str, badge: int | None
) -> PushMessage:
    data = {"notification_id": str(row["id"]), "type": str(row["type"])}
    if row.get("data"):
        raw = json.dumps(row["data"], separators=(",", ":"))
        if len(raw) <= MAX_DATA_JSON:
            data["data"] = raw
    return PushMessage(
        send_id=send_id(row["delivery_id"], device.id),
        token=device.token,
        title=title,
        body=body,
        data=data,
        priority=str(row["priority"]),
        ttl=_ttl(row.get("expires_at")),
        collapse_key=row.get("group_key"),
        badge=badge if device.platform == "apns" else None,
    )


def _ttl(expires_at: datetime | None) -> int:
    if expires_at is None:
        return PUSH_TTL_SECONDS
    left = (expires_at - datetime.now(UTC)).total_seconds()
    return max(0, min(PUSH_TTL_SECONDS, int(left)))
