"""Loading what the routing core depends on, asking the rate limiter, and turning plans into
delivery records.

The router is a thin shell around :mod:`router_svc.batch`: for a batch of notifications it
loads each user's preferences (cached), presence and the earlier inbox entries of the same
group key (grouping), calls :func:`router_svc.batch.route`, asks the rate limiter the
questions the plans raise in one round (:func:`ask_rate_limits`), applies the answers
(:func:`router_svc.batch.settle`), and records one row in ``notification_deliveries`` per
channel the plan considered (:func:`router_svc.batch.recorded`). :func:`list_decisions`
shows all channels: the ones never considered are derived from the notification.

Rate limits count every channel a plan sends on, the in-app inbox included; a type with its
own rule is counted in its own window as well.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
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
from notify_core.db.shown import shown_deliveries
from notify_core.domain import CHANNELS, DeliveryStatus, NotificationState
from notify_core.errors import NotFound
from notify_core.ratelimit import RateRules, Verdict
from preference_svc.api import PreferenceStore, StoredPreferences
from router_svc.batch import (
    Batch,
    GroupKey,
    Notification,
    Question,
    recorded,
    route,
    settle,
    status_of,
)
from router_svc.plan import Config, Earlier, Plan, Preferences, unchosen_reason
from router_svc.quiet_hours import QuietHours


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


async def find_heads(
    conn: AsyncConnection, rows: Sequence[Notification], config: Config, now: datetime
) -> dict[GroupKey, Earlier]:
    """The newest inbox entry of each grouped row's group within its window."""
    wanted = {key: n.type for n in rows if (key := n.group) is not None}
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
            notifications.c.state == NotificationState.ROUTED,
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


async def ask_rate_limits(
    backends: CacheBackends, namespace: str, rules: RateRules, questions: Sequence[Question]
) -> list[Verdict]:
    """Count one send per question, answering in their order: a type's own rule first,
    then the channel's; a send refused by its type's rule is not counted against the
    channel. Each step is one round trip for the whole batch."""
    limiter = backends.limiter
    verdicts: list[Verdict | None] = [None] * len(questions)
    typed = [i for i, q in enumerate(questions) if rules.of_type(q.type, q.channel) is not None]
    if typed:
        items = []
        for i in typed:
            q = questions[i]
            own = rules.of_type(q.type, q.channel)
            assert own is not None
            items.append((rate_key(namespace, q.user_id, q.channel, q.type), own))
        for i, verdict in zip(typed, await limiter.hit_many(items), strict=True):
            if not verdict.allowed:
                verdicts[i] = verdict
    rest = [i for i, v in enumerate(verdicts) if v is None]
    answers = await limiter.hit_many(
        [
            (
                rate_key(namespace, questions[i].user_id, questions[i].channel),
                rules.channel(questions[i].channel),
            )
            for i in rest
        ]
    )
    for i, verdict in zip(rest, answers, strict=True):
        verdicts[i] = verdict
    return [v for v in verdicts if v is not None]


async def decide(
    conn: AsyncConnection,
    rows: Sequence[Notification],
    store: PreferenceStore,
    backends: CacheBackends,
    namespace: str,
    routing: Routing,
    now: datetime,
) -> dict[str, Plan]:
    """The final plan of every notification, by id: the facts loaded, the batch routed,
    its rate-limit questions asked in one round and the answers applied."""
    users = sorted({n.user_id for n in rows})
    stored, presence, heads = await asyncio.gather(
        store.get_many(users),
        backends.presence.get(users),
        find_heads(conn, rows, routing.plan, now),
    )
    batch = Batch(
        notifications=rows,
        preferences={u: plan_preferences(stored[u]) for u in users},
        online={p.user_id: p.online for p in presence},
        heads=heads,
        now=now,
    )
    pending = route(batch, routing.plan)
    answers = await ask_rate_limits(backends, namespace, routing.rates, pending.questions)
    return settle(pending, answers)


def delivery_rows(notification_id: str, p: Plan, now: datetime) -> list[dict[str, Any]]:
    """One ``notification_deliveries`` row per channel the plan considered: what was
    decided and why."""
    rows = []
    for d in recorded(p):
        status = status_of(d)
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
                "delivered_at": now if status == DeliveryStatus.DELIVERED else None,
                "hold_until": d.until,
                "created_at": now,
            }
        )
    return rows


async def list_decisions(database: Database, notification_id: str) -> list[dict[str, Any]]:
    """What was decided for each channel of one notification (NotFound if unknown): the
    recorded decisions, and for a routed (or merged) notification every channel the plan
    never considered, skipped with its reason and no id."""
    n = notifications.c
    async with database.read() as conn:
        found = (
            await conn.execute(
                sa.select(n.state, n.channels, n.routed_at).where(n.id == notification_id)
            )
        ).first()
        if found is None:
            raise NotFound(f"notification {notification_id} not found")
        result = await conn.execute(
            shown_deliveries()
            .where(notification_deliveries.c.notification_id == notification_id)
            .order_by(notification_deliveries.c.channel)
        )
        shown = [_decision(dict(r._mapping)) for r in result]
    if found.state in _DECIDED and found.routed_at is not None:
        shown += unchosen_decisions(found.channels, {d["channel"] for d in shown}, found.routed_at)
    return sorted(shown, key=lambda d: str(d["channel"]))


_DECIDED = frozenset({NotificationState.ROUTED, NotificationState.MERGED})
"""Notification states whose channels have all been decided."""


def unchosen_decisions(
    channels: Sequence[str] | None, recorded: Collection[str], at: datetime
) -> list[dict[str, Any]]:
    """The channels of a routed notification without a record: the plan never considered
    them (not named in the producer's ``channels``, or not chosen by the matrix), so they
    were skipped for :func:`router_svc.plan.unchosen_reason`. Shown like a recorded
    decision, with no ``id``, decided when the notification was routed (``at``)."""
    reason = unchosen_reason(channels)
    return [
        {
            "id": None,
            "channel": str(channel),
            "status": DeliveryStatus.SKIPPED.value,
            "reason": reason,
            "until": None,
            "merge_into": None,
            "attempts": 0,
            "last_error": None,
            "provider": None,
            "sent_at": None,
            "created_at": iso(at),
        }
        for channel in CHANNELS
        if channel not in recorded
    ]


_TIMED = frozenset({DeliveryStatus.HELD, DeliveryStatus.RETRYING})
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
