"""The relay: routing jobs for notifications that were accepted but never routed.

The send path commits a notification and then publishes its routing job. A crash (or a
queue outage) between the two leaves the row ``accepted`` with no job. The relay finds
such rows older than ``RELAY_AFTER_SECONDS`` and publishes their jobs again. A job may
thus exist twice; the router routes a notification only while it is ``accepted``, so
the second job does nothing.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from ingest_svc.core import route_message
from ingest_svc.topics import relay_topic_sends
from notify_core.constants import QUEUE_ROUTE, RELAY_AFTER_SECONDS
from notify_core.db.engine import Database
from notify_core.db.schema import notifications
from notify_core.errors import NotifyError
from notify_core.queue.base import WorkQueue

log = logging.getLogger(__name__)


async def relay_once(
    database: Database,
    queue: WorkQueue,
    *,
    older_than: float = RELAY_AFTER_SECONDS,
    limit: int = 1_000,
) -> int:
    """Publish the jobs of stranded notifications; answer how many."""
    total = 0
    cutoff = datetime.now(UTC) - timedelta(seconds=older_than)
    after: tuple[datetime, str] | None = None
    while True:
        query = (
            sa.select(notifications.c.id, notifications.c.priority, notifications.c.created_at)
            .where(notifications.c.state == "accepted", notifications.c.created_at < cutoff)
            .order_by(notifications.c.created_at, notifications.c.id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(
                sa.tuple_(notifications.c.created_at, notifications.c.id)
                > sa.tuple_(
                    sa.literal(after[0], notifications.c.created_at.type), sa.literal(after[1])
                )
            )
        async with database.read() as conn:
            rows = (await conn.execute(query)).all()
        if not rows:
            return total
        await queue.publish(QUEUE_ROUTE, [route_message(r.id, r.priority) for r in rows])
        total += len(rows)
        after = (rows[-1].created_at, rows[-1].id)
        if len(rows) < limit:
            return total


async def run_relay(database: Database, queue: WorkQueue, *, interval: float = 5.0) -> None:
    """Relay forever, every ``interval`` seconds (and once at start)."""
    while True:
        try:
            count = await relay_once(database, queue)
            if count:
                log.info("relay published %d stranded routing jobs", count)
            count = await relay_topic_sends(database, queue)
            if count:
                log.info("relay published %d stranded fan-out jobs", count)
        except NotifyError as exc:
            log.warning("relay: %s", exc)
        except Exception:
            log.exception("relay failed")
        await asyncio.sleep(interval)
