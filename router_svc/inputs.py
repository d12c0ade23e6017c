"""Loading what the plan depends on, and turning a plan into delivery records.

The router is a thin shell: for a batch of notifications it loads each user's preferences
(cached), presence and rate-limit state, calls the pure :func:`router_svc.plan.plan`, and
records one row per channel in ``notification_deliveries``.

Rate limits apply to the channels that leave Notify (email, SMS, push, web push, webhook);
the in-app inbox is not rate limited until held work can be released.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from notify_core.cache.base import CacheBackends
from notify_core.constants import rate_key
from notify_core.convert import iso
from notify_core.db.engine import Database
from notify_core.db.schema import new_id, notification_deliveries, notifications
from notify_core.errors import NotFound
from notify_core.ratelimit import DEFAULT_LIMITS, FALLBACK_LIMIT, Verdict
from preference_svc.store import PreferenceStore, StoredPreferences
from router_svc.plan import Action, Facts, Plan, Preferences, plan
from router_svc.quiet_hours import QuietHours

STATUS = {
    Action.HOLD: "held",
    Action.MERGE: "merged",
    Action.DIGEST: "digested",
    Action.SKIP: "skipped",
}


def plan_preferences(stored: StoredPreferences) -> Preferences:
    quiet = stored.quiet_hours
    return Preferences(
        switches=stored.switches,
        per_type=stored.per_type,
        quiet_hours=None if quiet is None else QuietHours(quiet.start, quiet.end, quiet.timezone),
        high_breaks_quiet_hours=True if quiet is None else quiet.high_breaks_through,
        email=stored.email,
        phone=stored.phone,
        webhook_url=stored.webhook_url,
    )


async def decide(
    rows: Sequence[Mapping[str, Any]],
    store: PreferenceStore,
    backends: CacheBackends,
    namespace: str,
    now: datetime,
) -> dict[str, Plan]:
    """The plan of every notification row, by id."""
    users = sorted({r["user_id"] for r in rows})
    stored = await store.get_many(users)
    prefs = {u: plan_preferences(stored[u]) for u in users}
    online = {p.user_id: p.online for p in await backends.presence.get(users)}

    def run(row: Mapping[str, Any], rates: Mapping[str, Verdict]) -> Plan:
        user = row["user_id"]
        facts = Facts(type=row["type"], priority=row["priority"], channels=row["channels"])
        return plan(facts, prefs[user], online=online[user], earlier=None, rates=rates, now=now)

    first = {row["id"]: run(row, {}) for row in rows}
    # Every external send the plans chose is counted against its limit, concurrently.
    wanted = [
        (row, d.channel)
        for row in rows
        for d in first[row["id"]].decisions
        if d.action is Action.SEND and d.channel != "inapp"
    ]
    verdicts = await asyncio.gather(
        *[
            backends.limiter.hit(
                rate_key(namespace, row["user_id"], channel),
                DEFAULT_LIMITS.get(channel, FALLBACK_LIMIT),
            )
            for row, channel in wanted
        ]
    )
    limited: dict[str, dict[str, Verdict]] = {}
    for (row, channel), verdict in zip(wanted, verdicts, strict=True):
        if not verdict.allowed:
            limited.setdefault(row["id"], {})[channel] = verdict
    return {
        row["id"]: run(row, limited[row["id"]]) if row["id"] in limited else first[row["id"]]
        for row in rows
    }


def delivery_rows(notification_id: str, p: Plan, now: datetime) -> list[dict[str, Any]]:
    """One ``notification_deliveries`` row per channel: what was decided and why."""
    rows = []
    for d in p.decisions:
        if d.action is Action.SEND:
            status = "delivered" if d.channel == "inapp" else "pending"
        else:
            status = STATUS[d.action]
        meta: dict[str, Any] = {"reason": d.reason}
        if d.until is not None:
            meta["until"] = d.until.isoformat()
        if d.merge_into is not None:
            meta["merge_into"] = d.merge_into
        rows.append(
            {
                "id": new_id(),
                "notification_id": notification_id,
                "channel": d.channel,
                "status": status,
                "metadata": meta,
                "delivered_at": now if status == "delivered" else None,
                "created_at": now,
            }
        )
    return rows


async def list_decisions(database: Database, notification_id: str) -> list[dict[str, Any]]:
    """What was decided for each channel of one notification (NotFound if unknown)."""
    async with database.read() as conn:
        found = (
            await conn.execute(
                sa.select(notifications.c.state).where(notifications.c.id == notification_id)
            )
        ).first()
        if found is None:
            raise NotFound(f"notification {notification_id} not found")
        result = await conn.execute(
            sa.select(notification_deliveries)
            .where(notification_deliveries.c.notification_id == notification_id)
            .order_by(notification_deliveries.c.channel)
        )
        rows = [dict(r._mapping) for r in result]
    return [
        {
            "channel": r["channel"],
            "status": r["status"],
            "reason": (r["metadata"] or {}).get("reason"),
            "until": (r["metadata"] or {}).get("until"),
            "merge_into": (r["metadata"] or {}).get("merge_into"),
            "created_at": iso(r["created_at"]),
        }
        for r in rows
    ]
