"""Loading what the plan depends on, and turning a plan into delivery records.

The router is a thin shell: for a batch of notifications it loads each user's preferences
(cached), presence, the earlier inbox entries of the same group key (grouping) and the
rate-limit state, calls the pure :func:`router_svc.plan.plan`, and records one row per
channel in ``notification_deliveries``.

Rate limits count every channel a plan sends on, the in-app inbox included; a type with its
own rule is counted in its own window as well.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from notify_core.cache.base import CacheBackends
from notify_core.config import Settings
from notify_core.constants import rate_key
from notify_core.convert import iso
from notify_core.db.engine import Database
from notify_core.db.schema import new_id, notification_deliveries, notifications
from notify_core.errors import NotFound
from notify_core.ratelimit import RateRules, Verdict
from preference_svc.store import PreferenceStore, StoredPreferences
from router_svc.plan import Action, Config, Earlier, Facts, Plan, Preferences, plan
from router_svc.quiet_hours import QuietHours

STATUS = {
    Action.HOLD: "held",
    Action.MERGE: "merged",
    Action.DIGEST: "digested",
    Action.SKIP: "skipped",
}


@dataclass(frozen=True, slots=True)
class Routing:
    """The router's configuration: the plan's knobs and the rate limits."""

    plan: Config = field(default_factory=Config)
    rates: RateRules = field(default_factory=RateRules)

    @classmethod
    def from_settings(cls, s: Settings) -> Routing:
        return cls(
            Config(
                dedup_window=timedelta(seconds=s.dedup_window),
                dedup_window_by_type={
                    k: timedelta(seconds=v) for k, v in s.dedup_window_by_type.items()
                },
                over_limit=dict(s.over_limit),
            ),
            s.rate_limits,
        )


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
        has_push_device=stored.has_push_device,
        has_webpush_subscription=stored.has_webpush_subscription,
    )


def facts_of(row: Mapping[str, Any]) -> Facts:
    return Facts(
        type=row["type"],
        priority=row["priority"],
        channels=row["channels"],
        group_key=row["group_key"],
    )


GroupKey = tuple[str, str, str]


def group_of(row: Mapping[str, Any]) -> GroupKey | None:
    """The row's group, or ``None`` when it carries no group key (it never merges)."""
    if row["group_key"] is None:
        return None
    return (row["user_id"], row["type"], row["group_key"])


async def find_heads(
    conn: AsyncConnection, rows: Sequence[Mapping[str, Any]], config: Config, now: datetime
) -> dict[GroupKey, Earlier]:
    """The newest inbox entry of each grouped row's group within its window."""
    wanted = {key: r["type"] for r in rows if (key := group_of(r)) is not None}
    if not wanted:
        return {}
    widest = max(config.window_for(t) for t in wanted.values())
    if widest <= timedelta(0):
        return {}
    result = await conn.execute(
        sa.select(
            notifications.c.id,
            notifications.c.user_id,
            notifications.c.type,
            notifications.c.group_key,
            notifications.c.created_at,
        ).where(
            # one index probe per group: (user_id, type, group_key, created_at)
            sa.tuple_(notifications.c.user_id, notifications.c.type, notifications.c.group_key).in_(
                sorted(wanted)
            ),
            notifications.c.state == "routed",
            notifications.c.inbox.is_(True),
            notifications.c.created_at >= now - widest,
        )
    )
    heads: dict[GroupKey, Earlier] = {}
    for r in result:
        key = (r.user_id, r.type, r.group_key)
        if key in wanted and (key not in heads or heads[key].at < r.created_at):
            heads[key] = Earlier(r.id, r.created_at)
    return heads


async def count_sends(
    backends: CacheBackends, namespace: str, rules: RateRules, wanted: list[tuple[str, str, str]]
) -> list[Verdict]:
    """Count one send per (user, type, channel): a type's own rule first, then the
    channel's; a send refused by its type's rule is not counted against the channel. Each
    step is one round trip for the whole batch."""
    limiter = backends.limiter
    verdicts: list[Verdict | None] = [None] * len(wanted)
    typed = [i for i, (_, t, c) in enumerate(wanted) if rules.of_type(t, c) is not None]
    if typed:
        items = []
        for i in typed:
            user, type_, channel = wanted[i]
            own = rules.of_type(type_, channel)
            assert own is not None
            items.append((rate_key(namespace, user, channel, type_), own))
        for i, verdict in zip(typed, await limiter.hit_many(items), strict=True):
            if not verdict.allowed:
                verdicts[i] = verdict
    rest = [i for i, v in enumerate(verdicts) if v is None]
    answers = await limiter.hit_many(
        [
            (rate_key(namespace, wanted[i][0], wanted[i][2]), rules.channel(wanted[i][2]))
            for i in rest
        ]
    )
    for i, verdict in zip(rest, answers, strict=True):
        verdicts[i] = verdict
    return [v for v in verdicts if v is not None]


async def decide(
    conn: AsyncConnection,
    rows: Sequence[Mapping[str, Any]],
    store: PreferenceStore,
    backends: CacheBackends,
    namespace: str,
    routing: Routing,
    now: datetime,
) -> dict[str, Plan]:
    """The plan of every notification row, by id. Rows are planned oldest first, so that
    within a batch the later ones of a group merge into the first that reached the inbox."""
    rows = sorted(rows, key=lambda r: r["created_at"])
    users = sorted({r["user_id"] for r in rows})
    stored, presence, heads = await asyncio.gather(
        store.get_many(users),
        backends.presence.get(users),
        find_heads(conn, rows, routing.plan, now),
    )
    prefs = {u: plan_preferences(stored[u]) for u in users}
    online = {p.user_id: p.online for p in presence}
    earlier: dict[str, Earlier | None] = {}

    def run(row: Mapping[str, Any], rates: Mapping[str, Verdict]) -> Plan:
        user = row["user_id"]
        return plan(
            facts_of(row),
            prefs[user],
            online=online[user],
            earlier=earlier[row["id"]],
            rates=rates,
            now=now,
            config=routing.plan,
        )

    first: dict[str, Plan] = {}
    for row in rows:
        key = group_of(row)
        head = None if key is None else heads.get(key)
        fresh = head is None or now - head.at >= routing.plan.window_for(row["type"])
        earlier[row["id"]] = None if fresh else head
        first[row["id"]] = run(row, {})
        if key is not None and fresh and first[row["id"]].sends("inapp"):
            heads[key] = Earlier(row["id"], row["created_at"])  # the group's inbox entry now
    # Every send the plans chose is counted against its limits, concurrently.
    wanted = [
        (row, d.channel)
        for row in rows
        for d in first[row["id"]].decisions
        if d.action is Action.SEND
    ]
    verdicts = await count_sends(
        backends, namespace, routing.rates, [(r["user_id"], r["type"], ch) for r, ch in wanted]
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
                "hold_until": d.until,
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
    return [_decision(r) for r in rows]


_TIMED = frozenset({"held", "retrying"})
"""Statuses whose ``hold_until`` is a time to show (others use it as a worker's lease)."""


def _decision(r: dict[str, Any]) -> dict[str, Any]:
    """One delivery as shown: the routing decision and reason, and the sending so far."""
    meta = r["metadata"] or {}
    timed = r["status"] in _TIMED and r["hold_until"] is not None
    return {
        "id": r["id"],
        "channel": r["channel"],
        "status": r["status"],
        "reason": meta.get("reason"),
        "until": iso(r["hold_until"]) if timed else None,
        "merge_into": meta.get("merge_into"),
        "attempts": r["attempts"],
        "last_error": r["error_message"],
        "provider": r["provider"],
        "sent_at": iso(r["sent_at"]) if r["sent_at"] else None,
        "created_at": iso(r["created_at"]),
    }
