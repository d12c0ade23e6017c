"""The router worker: consumes routing jobs, applies the plan, acknowledges.

A job names up to ``ROUTE_JOB_IDS`` notifications; a consumed batch of jobs is routed
``ROUTE_CHUNK`` at a time, each chunk in one transaction: the notifications still
``accepted`` are locked (skipping rows another router holds), planned, and marked ``routed``
with their inbox flag. Only after the commit are live events published, and the jobs are
acked once every chunk has committed, so a crash at any point
leaves either a job to redo or a routed row, never a lost notification. Routing is
idempotent: a job for an already routed notification does nothing.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from delivery_svc.api import group_jobs, stage_jobs
from notify_core import inbox_cache
from notify_core.cache.base import CacheBackends
from notify_core.constants import QUEUE_ROUTE, ROUTE_CHUNK
from notify_core.db.bulk import insert_rows
from notify_core.db.engine import Database
from notify_core.db.schema import notification_deliveries, notifications
from notify_core.domain import Channel, DeliveryStatus, NotificationState
from notify_core.errors import NotifyError
from notify_core.queue.base import Delivery, Staged, WorkQueue, job_ids
from preference_svc.api import PreferenceStore
from router_svc.batch import Notification
from router_svc.dedup import actor_of, highest, merged_message
from router_svc.inputs import Routing, decide, delivery_rows
from router_svc.plan import Plan

log = logging.getLogger(__name__)


class Router:
    def __init__(
        self,
        database: Database,
        queue: WorkQueue,
        backends: CacheBackends,
        preferences: PreferenceStore,
        namespace: str,
        routing: Routing | None = None,
        *,
        prefetch: int = 128,
        max_batch: int = 64,
    ) -> None:
        self._db = database
        self._queue = queue
        self._backends = backends
        self._prefs = preferences
        self._ns = namespace
        self._routing = routing or Routing()
        self._prefetch = prefetch
        self._max_batch = max_batch
        self.routed = 0

    async def run(self) -> None:
        """Consume routing jobs until cancelled; a failing batch is retried."""
        while True:
            try:
                async for batch in self._queue.consume(
                    QUEUE_ROUTE, prefetch=self._prefetch, max_batch=self._max_batch
                ):
                    await self.handle(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("router consumer stopped; restarting in 1 s")
                await asyncio.sleep(1.0)

    async def handle(self, batch: list[Delivery]) -> None:
        """Route the notifications ``batch`` names, ``ROUTE_CHUNK`` per transaction, then
        ack it. A chunk that fails sends the whole batch back to the queue: the chunks
        committed before it are routed already, and routing them again does nothing."""
        ids = job_ids(batch, log)
        for start in range(0, len(ids), ROUTE_CHUNK):
            if not await self._route_chunk(ids[start : start + ROUTE_CHUNK]):
                await self._queue.nack(batch)
                await asyncio.sleep(0.5)
                return
        await self._queue.ack(batch)
        self.routed += len(ids)

    async def _route_chunk(self, ids: list[str]) -> bool:
        """Route one chunk in one transaction; after its commit, publish its delivery jobs
        and live events. Answers whether it committed."""
        try:
            new, updated, staged = await self.route(ids)
        except NotifyError as exc:
            log.warning("routing batch failed (%s); jobs go back to the queue", exc)
            return False
        except Exception:
            log.exception("routing batch failed; jobs go back to the queue")
            return False
        self._queue.flush(staged)
        await inbox_cache.show_changes(self._backends, self._ns, new, updated)
        return True

    async def route(
        self, ids: list[str]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Staged]]:
        """Route the still-accepted notifications among ``ids``. Answers the rows put in
        the inbox now, the earlier inbox rows that similar ones merged into, and the
        delivery jobs of the external sends, staged in the same transaction."""
        if not ids:
            return [], [], []
        now = datetime.now(UTC)
        query = sa.select(notifications).where(
            notifications.c.id.in_(sorted(set(ids))),
            notifications.c.state == NotificationState.ACCEPTED,
        )
        if not self._db.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        async with self._db.write() as conn:
            rows = [Notification.from_row(r._mapping) for r in await conn.execute(query)]
            if not rows:
                return [], [], []
            plans = await decide(
                conn, rows, self._prefs, self._backends, self._ns, self._routing, now
            )
            staged = await self._record(conn, rows, plans, now)
            merged = {r.id: head for r in rows if (head := plans[r.id].merge_into()) is not None}
            inbox_ids = [r.id for r in rows if plans[r.id].sends(Channel.INAPP)]
            await self._mark(conn, [r.id for r in rows], merged, inbox_ids, now)
            heads = await self._merge(conn, [r for r in rows if r.id in merged], merged)
            shown = await conn.execute(
                sa.select(notifications).where(
                    notifications.c.id.in_(sorted(set(inbox_ids) | heads)),
                    notifications.c.inbox.is_(True),
                )
            )
            changed = [dict(r._mapping) for r in shown]
        fresh = set(inbox_ids)
        return (
            [r for r in changed if r["id"] in fresh],
            [r for r in changed if r["id"] not in fresh],
            staged,
        )

    async def _record(
        self,
        conn: AsyncConnection,
        rows: list[Notification],
        plans: dict[str, Plan],
        now: datetime,
    ) -> list[Staged]:
        """Insert each channel's decision; stage the delivery jobs of the pending sends."""
        records = [x for r in rows for x in delivery_rows(r.id, plans[r.id], now)]
        await insert_rows(conn, notification_deliveries, records)
        priority = {r.id: r.priority for r in rows}
        jobs = group_jobs(
            (x["id"], x["channel"], priority[x["notification_id"]])
            for x in records
            if x["status"] == DeliveryStatus.PENDING
        )
        return await stage_jobs(self._queue, conn, jobs)

    async def _mark(
        self,
        conn: AsyncConnection,
        ids: list[str],
        merged: dict[str, str],
        inbox_ids: list[str],
        now: datetime,
    ) -> None:
        """Mark the notifications ``routed`` (or ``merged``), with their inbox flag."""
        for state, chosen in (
            (NotificationState.ROUTED, [i for i in ids if i not in merged]),
            (NotificationState.MERGED, list(merged)),
        ):
            if chosen:
                await conn.execute(
                    notifications.update()
                    .where(notifications.c.id.in_(chosen))
                    .values(
                        state=state,
                        routed_at=now,
                        inbox=notifications.c.id.in_(inbox_ids) if inbox_ids else sa.false(),
                    )
                )

    async def _merge(
        self, conn: AsyncConnection, rows: list[Notification], into: dict[str, str]
    ) -> set[str]:
        """Fold merged notifications into their heads: the count rises, the newest title
        and a counted message show, the highest priority of the members stays, and the
        entry is unread again. Answers the heads."""
        if not rows:
            return set()
        members: dict[str, list[Notification]] = {}
        for r in sorted(rows, key=lambda r: r.created_at):
            members.setdefault(into[r.id], []).append(r)
        query = sa.select(
            notifications.c.id, notifications.c.count.label("n"), notifications.c.priority
        ).where(notifications.c.id.in_(sorted(members)))
        if not self._db.is_sqlite:
            query = query.with_for_update()
        heads = (await conn.execute(query)).all()
        for head in heads:
            added = members[head.id]
            total = head.n + len(added)
            latest = added[-1]
            await conn.execute(
                notifications.update()
                .where(notifications.c.id == head.id)
                .values(
                    count=total,
                    title=latest.title,
                    message=merged_message(latest.message, actor_of(latest.data), total),
                    priority=highest([head.priority, *(r.priority for r in added)]),
                    read=False,
                    read_at=None,
                )
            )
        return {head.id for head in heads}
