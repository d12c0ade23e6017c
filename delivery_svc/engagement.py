"""Engagement: opens and clicks of delivered messages, counted on their delivery rows.

Each open adds one to ``notification_deliveries.opens`` and each click one to ``clicks``,
in the database (``SET opens = opens + 1``), so concurrent hits on any node all count.
``opened_at`` and ``clicked_at`` keep the first time. ``status`` only moves forward along
sent → delivered → opened → clicked: an open of a clicked delivery leaves it clicked, and
a failed or held delivery keeps its status (its counters still count). A click also marks
the notification itself ``clicked`` (first ``clicked_at`` kept). Our own pixel and links
count here, and so do the opens and clicks providers report (:mod:`.provider_events`,
through :func:`count_open` / :func:`count_click` in its transaction).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from notify_core.db.engine import Database
from notify_core.db.schema import UtcDateTime, notifications, utcnow
from notify_core.db.schema import notification_deliveries as deliveries
from notify_core.domain import DeliveryEvent, sources, target


def _now(at: datetime | None = None) -> Any:
    return sa.literal(at or utcnow(), UtcDateTime())


def forward(event: DeliveryEvent) -> Any:
    """The status after ``event`` for a row it applies to; any other keeps its status."""
    return sa.case(
        (deliveries.c.status.in_(sources(event)), sa.literal(target(event), sa.String())),
        else_=deliveries.c.status,
    )


async def record_open(db: Database, delivery_id: str) -> bool:
    """Count one open; False when there is no such delivery (nothing written)."""
    async with db.write() as conn:
        return await count_open(conn, delivery_id)


async def record_click(db: Database, delivery_id: str) -> bool:
    """Count one click, and mark the notification clicked; False when no such delivery."""
    async with db.write() as conn:
        return await count_click(conn, delivery_id)


async def count_open(conn: AsyncConnection, delivery_id: str, at: datetime | None = None) -> bool:
    """:func:`record_open` inside the caller's transaction; ``at`` (default now) is the
    time kept as ``opened_at`` when it is the first open."""
    now = _now(at)
    result = await conn.execute(
        deliveries.update()
        .where(deliveries.c.id == delivery_id)
        .values(
            opens=deliveries.c.opens + 1,
            opened_at=sa.func.coalesce(deliveries.c.opened_at, now),
            status=forward(DeliveryEvent.OPENED),
        )
    )
    return result.rowcount > 0


async def count_click(conn: AsyncConnection, delivery_id: str, at: datetime | None = None) -> bool:
    """:func:`record_click` inside the caller's transaction (``at`` as in :func:`count_open`)."""
    now = _now(at)
    result = await conn.execute(
        deliveries.update()
        .where(deliveries.c.id == delivery_id)
        .values(
            clicks=deliveries.c.clicks + 1,
            clicked_at=sa.func.coalesce(deliveries.c.clicked_at, now),
            status=forward(DeliveryEvent.CLICKED),
        )
    )
    if result.rowcount == 0:
        return False
    owner = (
        sa.select(deliveries.c.notification_id)
        .where(deliveries.c.id == delivery_id)
        .scalar_subquery()
    )
    await conn.execute(
        notifications.update()
        .where(notifications.c.id == owner)
        .values(clicked=True, clicked_at=sa.func.coalesce(notifications.c.clicked_at, now))
    )
    return True


async def engagement_counts(
    db: Database, since: datetime | None = None, channel: str | None = None
) -> dict[str, int]:
    """Totals over deliveries created since ``since`` (all when None), optionally of one
    channel: ``opens`` and ``clicks`` (every hit), ``opened`` and ``clicked`` (deliveries
    opened or clicked at least once), and ``sent`` (deliveries that left us)."""
    query = sa.select(
        sa.func.coalesce(sa.func.sum(deliveries.c.opens), 0),
        sa.func.coalesce(sa.func.sum(deliveries.c.clicks), 0),
        sa.func.count(deliveries.c.opened_at),
        sa.func.count(deliveries.c.clicked_at),
        sa.func.count(deliveries.c.sent_at),
    )
    if since is not None:
        query = query.where(deliveries.c.created_at >= since)
    if channel is not None:
        query = query.where(deliveries.c.channel == channel)
    async with db.read() as conn:
        row = (await conn.execute(query)).one()
    opens, clicks, opened, clicked, sent = (int(v) for v in row)
    return {"opens": opens, "clicks": clicks, "opened": opened, "clicked": clicked, "sent": sent}
