"""What happens to registered devices after registration: they are sent to, they go stale,
providers declare them gone.

- :func:`active_devices`: the active tokens of some users on some platforms (what a push
  delivery fans out to).
- :func:`record_use` (in the caller's transaction): ``last_used_at`` moves on every send a
  provider accepted.
- :func:`deactivate` (in the caller's transaction): a provider answered that the token or
  subscription is gone (FCM ``UNREGISTERED``, APNs 410, web push 404/410); the row stays,
  inactive, with the provider's answer as ``deactivated_reason``. The caller then drops the
  owners' cached preferences (:meth:`PreferenceStore.forget`) so the router stops choosing
  push for a user whose last device went.
- :func:`deactivate_stale`: devices no provider accepted anything for in
  ``NOTIFY_DEVICE_STALE_DAYS`` (default 270, after which FCM considers a token expired)
  are deactivated by the periodic sweep.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from notify_core.db.engine import Database
from notify_core.db.schema import device_tokens as t
from preference_svc.store import PreferenceStore

STALE = "not used for {days} days"
"""``deactivated_reason`` of a device the sweep retired."""


@dataclass(frozen=True, slots=True)
class Target:
    """An active device as a send needs it."""

    id: str
    user_id: str
    platform: str
    token: str


async def active_devices(
    database: Database, user_ids: Sequence[str], platforms: Collection[str]
) -> dict[str, list[Target]]:
    """``{user_id: [device, ...]}`` (oldest first) of the users' active devices on
    ``platforms``; users without one are absent."""
    if not user_ids:
        return {}
    query = (
        sa.select(t.c.id, t.c.user_id, t.c.platform, t.c.token)
        .where(
            t.c.user_id.in_(sorted(set(user_ids))),
            t.c.platform.in_(sorted(platforms)),
            t.c.active == sa.true(),
        )
        .order_by(t.c.created_at, t.c.id)
    )
    out: dict[str, list[Target]] = {}
    async with database.read() as conn:
        for row in await conn.execute(query):
            out.setdefault(row.user_id, []).append(
                Target(row.id, row.user_id, row.platform, row.token)
            )
    return out


async def record_use(conn: AsyncConnection, device_ids: Collection[str], now: datetime) -> None:
    """``last_used_at = now`` for these devices."""
    if device_ids:
        await conn.execute(
            sa.update(t).where(t.c.id.in_(sorted(device_ids))).values(last_used_at=now)
        )


async def deactivate(conn: AsyncConnection, reasons: Mapping[str, str], now: datetime) -> set[str]:
    """Deactivate the devices ``{device_id: why}`` that are still active; answer their
    owners (whose cached preferences the caller drops after the commit)."""
    owners: set[str] = set()
    for device_id, why in sorted(reasons.items()):
        got = await conn.execute(
            sa.update(t)
            .where(t.c.id == device_id, t.c.active == sa.true())
            .values(active=False, deactivated_at=now, deactivated_reason=why[:1000])
            .returning(t.c.user_id)
        )
        owners.update(r.user_id for r in got)
    return owners


async def deactivate_stale(
    database: Database, preferences: PreferenceStore, now: datetime, days: int
) -> int:
    """Deactivate the active devices last used more than ``days`` days before ``now``;
    answer how many."""
    cutoff = now - timedelta(days=days)
    async with database.write() as conn:
        got = await conn.execute(
            sa.update(t)
            .where(t.c.active == sa.true(), t.c.last_used_at < cutoff)
            .values(active=False, deactivated_at=now, deactivated_reason=STALE.format(days=days))
            .returning(t.c.user_id)
        )
        owners = [r.user_id for r in got]
    await preferences.forget(*sorted(set(owners)))
    return len(owners)
