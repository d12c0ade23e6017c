"""Dead letters and delivery statistics.

A dead letter is a delivery whose last try failed (``status = failed``, ``dead_at`` set):
permanent errors at once, transient ones when the retry schedule is spent. They are
listed and requeued from the database — the row keeps the error, the attempts and the
notification, which is what an operator needs to decide; requeueing makes the row
``pending`` with its attempts reset and stages its job in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from delivery_svc.jobs import group_jobs, stage_jobs
from notify_core.convert import iso
from notify_core.db.engine import Database
from notify_core.db.schema import notification_deliveries as deliveries
from notify_core.db.schema import notifications
from notify_core.db.shown import shown_status_sql, with_carrier
from notify_core.domain import DELIVERY_CHANNELS, DeliveryEvent, DeliveryStatus, sources, target
from notify_core.errors import InvalidArgument
from notify_core.queue.base import WorkQueue

MAX_LIST = 1_000


async def list_dead_letters(
    database: Database, *, channel: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The newest dead letters first."""
    if not 1 <= limit <= MAX_LIST:
        raise InvalidArgument("limit", f"must be 1 to {MAX_LIST}, got {limit}")
    d = deliveries.c
    query = (
        sa.select(
            d.id,
            d.notification_id,
            d.channel,
            d.provider,
            d.error_message,
            d.attempts,
            d.dead_at,
            notifications.c.user_id,
            notifications.c.type,
        )
        .join(notifications, notifications.c.id == d.notification_id)
        .where(d.status == DeliveryStatus.FAILED)
        .order_by(d.dead_at.desc())
        .limit(limit)
    )
    if channel:
        query = query.where(d.channel == channel)
    async with database.read() as conn:
        rows = (await conn.execute(query)).all()
    return [
        {
            "id": r.id,
            "notification_id": r.notification_id,
            "user_id": r.user_id,
            "type": r.type,
            "channel": r.channel,
            "provider": r.provider,
            "error": r.error_message,
            "attempts": r.attempts,
            "dead_at": iso(r.dead_at) if r.dead_at else None,
        }
        for r in rows
    ]


async def requeue_dead_letters(
    database: Database,
    queue: WorkQueue,
    *,
    ids: Sequence[str] = (),
    channel: str | None = None,
    everything: bool = False,
) -> int:
    """Give dead letters (these ``ids``, or all of them, optionally of one channel) another
    full run of tries; answer how many."""
    if not ids and not everything:
        raise InvalidArgument("ids", "name the dead letters to requeue, or ask for all")
    d = deliveries.c
    (dead,) = sources(DeliveryEvent.REQUEUED)
    where = [d.status == dead, d.channel.in_(DELIVERY_CHANNELS)]
    if ids:
        where.append(d.id.in_(list(ids)))
    if channel:
        where.append(d.channel == channel)
    async with database.write() as conn:
        rows = (
            await conn.execute(
                sa.select(d.id, d.channel, notifications.c.priority)
                .join(notifications, notifications.c.id == d.notification_id)
                .where(*where)
            )
        ).all()
        if not rows:
            return 0
        await conn.execute(
            deliveries.update()
            .where(d.id.in_([r.id for r in rows]))
            .values(
                status=target(DeliveryEvent.REQUEUED), attempts=0, dead_at=None, hold_until=None
            )
        )
        jobs = group_jobs((r.id, r.channel, r.priority) for r in rows)
        staged = await stage_jobs(queue, conn, jobs)
    queue.flush(staged)
    return len(rows)


async def delivery_stats(database: Database) -> dict[str, Any]:
    """Per channel and status counts (the status as shown: a put-aside email counts as
    ``digest_sent`` once its digest is sent), and the engagement totals. ``skipped`` counts
    the channels a plan considered and skipped (the user's or the producer's choice, a rate
    limit); a channel the plan never considered has no delivery row."""
    d = deliveries.c
    status = shown_status_sql()
    async with database.read() as conn:
        counts = (
            await conn.execute(
                sa.select(d.channel, status, sa.func.count())
                .select_from(with_carrier)
                .group_by(d.channel, status)
            )
        ).all()
        engagement = (
            await conn.execute(
                sa.select(
                    sa.func.coalesce(sa.func.sum(d.opens), 0),
                    sa.func.coalesce(sa.func.sum(d.clicks), 0),
                    sa.func.count().filter(d.opens > 0),
                    sa.func.count().filter(d.clicks > 0),
                )
            )
        ).one()
    by_channel: dict[str, dict[str, int]] = {}
    for channel, status, count in counts:
        by_channel.setdefault(channel, {})[status] = int(count)
    return {
        "by_channel": by_channel,
        "opens": int(engagement[0]),
        "clicks": int(engagement[1]),
        "opened": int(engagement[2]),
        "clicked": int(engagement[3]),
    }
