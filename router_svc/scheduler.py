"""Work whose time has come: scheduled sends and held channels.

Both live in the database, so they survive restarts; the scheduler looks every
``NOTIFY_SCHEDULER_INTERVAL`` seconds:

- a notification ``scheduled`` with ``send_at`` due becomes ``accepted`` and gets its routing
  job, staged in the same transaction;
- a delivery ``held`` (quiet hours, rate limit) whose ``hold_until`` is due is decided again
  by :func:`router_svc.batch.release`: sent (in-app: into the inbox and live), held anew,
  sent to the digest, or skipped — the new reason recorded.

Rows are claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several routers share the
work without doing any of it twice.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from delivery_svc.api import group_jobs, stage_jobs
from ingest_svc.api import route_messages
from notify_core import inbox_cache
from notify_core.cache.base import CacheBackends
from notify_core.config import SCHEDULER_INTERVAL
from notify_core.constants import QUEUE_ROUTE, SCHEDULER_BATCH
from notify_core.db.engine import Database
from notify_core.db.schema import notification_deliveries as deliveries
from notify_core.db.schema import notifications
from notify_core.domain import DeliveryStatus, NotificationState
from notify_core.errors import NotifyError
from notify_core.queue.base import WorkQueue
from preference_svc.api import PreferenceStore
from router_svc.batch import HeldDelivery, release, settle, status_of
from router_svc.inputs import Routing, ask_rate_limits, plan_preferences
from router_svc.plan import Action, Decision

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(
        self,
        database: Database,
        queue: WorkQueue,
        backends: CacheBackends,
        preferences: PreferenceStore,
        namespace: str,
        routing: Routing | None = None,
        *,
        interval: float = SCHEDULER_INTERVAL.default,
    ) -> None:
        self._db = database
        self._queue = queue
        self._backends = backends
        self._prefs = preferences
        self._ns = namespace
        self._routing = routing or Routing()
        self._interval = interval

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except NotifyError as exc:
                log.warning("scheduler: %s", exc)
            except Exception:
                log.exception("scheduler tick failed")
            await asyncio.sleep(self._interval)

    async def tick(self, now: datetime | None = None) -> tuple[int, int]:
        """Release everything due at ``now`` (default: the clock); answer how many
        scheduled notifications and held deliveries were released."""
        now = now or datetime.now(UTC)
        scheduled = held = 0
        while (n := await self.release_scheduled(now)) > 0:
            scheduled += n
        while (n := await self.release_held(now)) > 0:
            held += n
        return scheduled, held

    def _claim(self, query: sa.Select[Any]) -> sa.Select[Any]:
        return query if self._db.is_sqlite else query.with_for_update(skip_locked=True)

    async def release_scheduled(self, now: datetime) -> int:
        query = self._claim(
            sa.select(notifications.c.id, notifications.c.priority, notifications.c.send_at)
            .where(
                notifications.c.state == NotificationState.SCHEDULED, notifications.c.send_at <= now
            )
            .order_by(notifications.c.send_at)
            .limit(SCHEDULER_BATCH)
        )
        async with self._db.write() as conn:
            rows = (await conn.execute(query)).all()
            if not rows:
                return 0
            await conn.execute(
                notifications.update()
                .where(notifications.c.id.in_([r.id for r in rows]))
                .values(state=NotificationState.ACCEPTED, created_at=notifications.c.send_at)
            )
            staged = await self._queue.stage(
                conn, QUEUE_ROUTE, route_messages((r.id, r.priority) for r in rows)
            )
        self._queue.flush([staged])
        return len(rows)

    async def release_held(self, now: datetime) -> int:
        query = self._claim(
            sa.select(
                deliveries.c.id.label("delivery_id"),
                deliveries.c.channel,
                deliveries.c.metadata,
                notifications,
            )
            .join(notifications, notifications.c.id == deliveries.c.notification_id)
            .where(deliveries.c.status == DeliveryStatus.HELD, deliveries.c.hold_until <= now)
            .order_by(deliveries.c.hold_until)
            .limit(SCHEDULER_BATCH)
        )
        async with self._db.write() as conn:
            rows = [HeldDelivery.from_row(r._mapping) for r in await conn.execute(query)]
            if not rows:
                return 0
            decisions = await self._decide(rows, now)
            shown = await self._apply(conn, rows, decisions, now)
            jobs = group_jobs(
                (r.delivery_id, r.channel, r.notification.priority)
                for r, d in zip(rows, decisions, strict=True)
                if d.action is Action.SEND
            )
            staged = await stage_jobs(self._queue, conn, jobs)
        self._queue.flush(staged)
        if shown:
            await inbox_cache.show_changes(self._backends, self._ns, shown, [])
        return len(rows)

    async def _decide(self, rows: list[HeldDelivery], now: datetime) -> list[Decision]:
        """Each held delivery decided again, its rate-limit questions asked in one round."""
        users = sorted({r.notification.user_id for r in rows})
        stored = await self._prefs.get_many(users)
        prefs = {u: plan_preferences(stored[u]) for u in users}
        pending = release(rows, prefs, now, self._routing.plan)
        answers = await ask_rate_limits(
            self._backends, self._ns, self._routing.rates, pending.questions
        )
        plans = settle(pending, answers)
        return [plans[r.delivery_id].decision(r.channel) for r in rows]

    async def _apply(
        self,
        conn: AsyncConnection,
        rows: list[HeldDelivery],
        decisions: list[Decision],
        now: datetime,
    ) -> list[dict[str, Any]]:
        """Record each new decision; put released in-app rows in the inbox and answer them."""
        to_inbox: list[str] = []
        for row, d in zip(rows, decisions, strict=True):
            status = status_of(d)
            await conn.execute(
                deliveries.update()
                .where(deliveries.c.id == row.delivery_id)
                .values(
                    status=status,
                    hold_until=d.until,
                    metadata={**row.metadata, "reason": d.reason},
                    delivered_at=now if status == DeliveryStatus.DELIVERED else None,
                )
            )
            if status == DeliveryStatus.DELIVERED:
                to_inbox.append(row.notification.id)
        if not to_inbox:
            return []
        # routed_at moves to now: resumes replay in the order rows entered the inbox.
        await conn.execute(
            notifications.update()
            .where(notifications.c.id.in_(to_inbox))
            .values(inbox=True, routed_at=now)
        )
        result = await conn.execute(
            sa.select(notifications).where(notifications.c.id.in_(to_inbox))
        )
        return [dict(r._mapping) for r in result]
