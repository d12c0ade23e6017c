"""Sending to a topic: accept once, fan out to every subscriber in batches.

``TopicSends.send`` validates the notification, stores one ``topic_sends`` row and stages
its fan-out job in the same transaction, and answers: the send is durable from then on.

The fan-out consumer walks the topic's subscribers in user-id order, ``FANOUT_BATCH`` at a
time, never holding more than one batch. Each step is one transaction on the locked
``topic_sends`` row: read the next subscribers after the cursor, insert their notifications
as one stream (COPY on PostgreSQL) with the idempotency key ``topic:<send id>``, stage
their routing jobs (a few jobs of up to ``ROUTE_JOB_IDS`` ids each), and move the cursor.
A crash anywhere in a step undoes all of it, so every subscriber gets exactly one
notification. A send whose job was lost (a crash between commit and publish) is picked up
by the relay.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from google.protobuf import json_format
from notify.v1 import ingest_pb2
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from ingest_svc.core import store_new
from ingest_svc.validate import validate_send
from notify_core.constants import FANOUT_BATCH, QUEUE_FANOUT
from notify_core.db.engine import Database
from notify_core.db.schema import new_id, notifications, topic_sends, topic_subscriptions
from notify_core.domain import Priority
from notify_core.errors import NotFound
from notify_core.queue.base import Delivery, Message, WorkQueue
from preference_svc.api import check_topic

log = logging.getLogger(__name__)


def fanout_message(send_id: str, priority: str) -> Message:
    return Message(
        body=json.dumps({"id": send_id}).encode(),
        priority=Priority(priority).queue_priority,
        message_id=f"fanout:{send_id}",
    )


class TopicSends:
    def __init__(self, database: Database, queue: WorkQueue, *, batch: int = FANOUT_BATCH) -> None:
        self._db = database
        self._queue = queue
        self._batch = batch

    async def send(self, topic: str, request: ingest_pb2.SendRequest) -> str:
        """Accept ``request`` for every subscriber of ``topic``; answer the send's id."""
        check_topic(topic)
        now = datetime.now(UTC)
        checked = validate_send(request, new_id="-", now=now, for_topic=True)
        send_id = new_id()
        body = json_format.MessageToDict(request)
        row = {
            "id": send_id,
            "topic": topic,
            "request": body,
            "idempotency_key": checked.idempotency_key,
            "created_at": now,
            "updated_at": now,
        }
        insert = (sqlite.insert if self._db.is_sqlite else postgresql.insert)(topic_sends)
        job = fanout_message(send_id, checked.priority)
        async with self._db.write() as conn:
            if checked.idempotency_key is not None:
                stmt = insert.on_conflict_do_nothing(
                    index_elements=["topic", "idempotency_key"],
                    index_where=topic_sends.c.idempotency_key.isnot(None),
                )
                await conn.execute(stmt, [row])
                first = await conn.scalar(
                    sa.select(topic_sends.c.id).where(
                        topic_sends.c.topic == topic,
                        topic_sends.c.idempotency_key == checked.idempotency_key,
                    )
                )
                if first != send_id:
                    return str(first)
            else:
                await conn.execute(insert, [row])
            staged = await self._queue.stage(conn, QUEUE_FANOUT, [job])
        self._queue.flush([staged])
        return send_id

    async def get(self, send_id: str) -> dict[str, Any]:
        async with self._db.read() as conn:
            row = (
                await conn.execute(sa.select(topic_sends).where(topic_sends.c.id == send_id))
            ).first()
        if row is None:
            raise NotFound(f"topic send {send_id} not found")
        return {
            "id": row.id,
            "topic": row.topic,
            "state": row.state,
            "fanned_out": row.fanned_out,
        }

    async def run(self) -> None:
        """Consume fan-out jobs until cancelled."""
        while True:
            try:
                async for batch in self._queue.consume(QUEUE_FANOUT, prefetch=4, max_batch=1):
                    await self._handle(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("fan-out consumer stopped; restarting in 1 s")
                await asyncio.sleep(1.0)

    async def _handle(self, batch: list[Delivery]) -> None:
        for d in batch:
            try:
                send_id = str(json.loads(d.body)["id"])
            except (ValueError, KeyError, TypeError):
                log.error("dropping malformed fan-out job %r", d.body[:200])
                continue
            try:
                await self.fan_out(send_id)
            except Exception:
                log.exception("fan-out of %s failed; the job goes back to the queue", send_id)
                await self._queue.nack(batch)
                await asyncio.sleep(0.5)
                return
        await self._queue.ack(batch)

    async def fan_out(self, send_id: str) -> int:
        """Accept the notification for every remaining subscriber; answer how many now."""
        done = 0
        while True:
            step = await self._step(send_id)
            if step is None:
                return done
            done += step

    async def _step(self, send_id: str) -> int | None:
        """Accept the notification for the next ``batch`` subscribers after the cursor, in
        one transaction with the cursor's move; answer how many, or None once done."""
        now = datetime.now(UTC)
        query = sa.select(topic_sends).where(topic_sends.c.id == send_id)
        if not self._db.is_sqlite:
            query = query.with_for_update()
        async with self._db.write() as conn:
            row = (await conn.execute(query)).first()
            if row is None or row.state == "done":
                return None
            users = await self._subscribers(conn, row.topic, row.cursor)
            fresh = await _not_yet_sent(conn, users, f"topic:{send_id}")
            template = json_format.ParseDict(row.request, ingest_pb2.SendRequest())
            template.idempotency_key = f"topic:{send_id}"
            checked = validate_send(template, new_id="-", now=now, for_topic=True)
            items = [replace(checked, id=new_id(), user_id=user) for user in fresh]
            staged = await store_new(conn, self._queue, items)
            await conn.execute(
                topic_sends.update()
                .where(topic_sends.c.id == send_id)
                .values(
                    cursor=users[-1] if users else row.cursor,
                    fanned_out=topic_sends.c.fanned_out + len(users),
                    state="done" if len(users) < self._batch else "pending",
                    updated_at=now,
                )
            )
        self._queue.flush([staged])
        return len(users)

    async def _subscribers(
        self, conn: AsyncConnection, topic: str, cursor: str | None
    ) -> list[str]:
        """The next ``batch`` subscribers of ``topic`` after ``cursor``, in user-id order."""
        query = (
            sa.select(topic_subscriptions.c.user_id)
            .where(topic_subscriptions.c.topic == topic)
            .order_by(topic_subscriptions.c.user_id)
            .limit(self._batch)
        )
        if cursor is not None:
            query = query.where(topic_subscriptions.c.user_id > cursor)
        return list((await conn.scalars(query)).all())


async def _not_yet_sent(conn: AsyncConnection, users: list[str], key: str) -> list[str]:
    """The users among ``users`` who have no notification with idempotency ``key`` yet (a
    send accepted before this step's transaction, by an earlier version, is not repeated)."""
    if not users:
        return []
    query = sa.select(notifications.c.user_id).where(
        notifications.c.user_id.in_(users), notifications.c.idempotency_key == key
    )
    taken = set((await conn.scalars(query)).all())
    return [u for u in users if u not in taken]
