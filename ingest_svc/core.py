"""Accepting notifications: group commit of the rows and their routing jobs.

"Accepted" means durable: ``Ingest.send`` returns only after the notifications and their
routing jobs are committed, in one transaction (the jobs are staged in the work queue's
outbox, or are rows of the database queue). Concurrent sends are committed together
(group commit): while one group is being written, the next one gathers, so throughput
grows with load instead of paying one commit per request. RabbitMQ being away does not
fail a send: the outbox relay publishes the jobs once it is back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from notify.v1 import ingest_pb2
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from ingest_svc.validate import NewNotification, validate_send
from notify_core.constants import MAX_BATCH, QUEUE_ROUTE, ROUTE_JOB_IDS
from notify_core.db.bulk import insert_rows
from notify_core.db.engine import Database
from notify_core.db.schema import notifications
from notify_core.domain import NotificationState, Priority
from notify_core.errors import InvalidArgument, NotifyError, QueueUnavailable
from notify_core.queue.base import Message, Staged, WorkQueue

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    items: list[NewNotification]
    done: asyncio.Future[list[str]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def route_messages(items: Iterable[tuple[str, str]]) -> list[Message]:
    """The routing jobs of these ``(notification id, priority)`` pairs: one job per
    priority and per ``ROUTE_JOB_IDS`` ids, so a send to many users costs a few jobs."""
    by_priority: dict[str, list[str]] = {}
    for notification_id, priority in items:
        by_priority.setdefault(priority, []).append(notification_id)
    messages: list[Message] = []
    for priority, ids in by_priority.items():
        for start in range(0, len(ids), ROUTE_JOB_IDS):
            chunk = ids[start : start + ROUTE_JOB_IDS]
            messages.append(
                Message(
                    body=json.dumps({"ids": chunk}, separators=(",", ":")).encode(),
                    priority=Priority(priority).queue_priority,
                    message_id=chunk[0],
                )
            )
    return messages


async def store_new(
    conn: AsyncConnection, queue: WorkQueue, items: Sequence[NewNotification]
) -> Staged:
    """Insert ``items``, none of which can collide with a stored row, and stage the routing
    jobs of those due now, on ``conn`` within its transaction. The rows go in as one stream
    (COPY on PostgreSQL, one executemany elsewhere)."""
    await insert_rows(conn, notifications, [_row(n) for n in items])
    return await _stage_due(conn, queue, items)


async def _stage_due(
    conn: AsyncConnection, queue: WorkQueue, items: Sequence[NewNotification]
) -> Staged:
    """Stage the routing jobs of the notifications among ``items`` that are due now;
    scheduled ones get theirs from the scheduler when due."""
    due = [(n.id, n.priority) for n in items if n.send_at is None]
    return await queue.stage(conn, QUEUE_ROUTE, route_messages(due))


class Ingest:
    """Validates and durably accepts notifications, in groups."""

    def __init__(self, database: Database, queue: WorkQueue, *, max_group: int = 2_000) -> None:
        self._db = database
        self._queue = queue
        self._max_group = max_group
        self._pending: list[_Pending] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._flusher(), name="ingest-group-commit")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for p in self._pending:
            if not p.done.done():
                p.done.set_exception(QueueUnavailable("ingest is shutting down"))

    async def send(self, requests: Sequence[ingest_pb2.SendRequest]) -> list[str]:
        """Accept all of ``requests`` or none; answer their ids in order.

        A request whose ``(user_id, idempotency_key)`` was accepted before gets that
        earlier notification's id, and nothing new is stored.
        """
        if not requests:
            return []
        if len(requests) > MAX_BATCH:
            raise InvalidArgument("notifications", f"at most {MAX_BATCH} per batch")
        now = datetime.now(UTC)
        batch = len(requests) > 1
        items = [
            validate_send(
                req,
                new_id=str(uuid.uuid4()),
                now=now,
                prefix=f"notifications[{i}]." if batch else "",
            )
            for i, req in enumerate(requests)
        ]
        pending = _Pending(items)
        self._pending.append(pending)
        self._wakeup.set()
        return await pending.done

    async def _flusher(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                group: list[_Pending] = []
                size = 0
                while self._pending and (
                    not group or size + len(self._pending[0].items) <= self._max_group
                ):
                    p = self._pending.pop(0)
                    group.append(p)
                    size += len(p.items)
                await self._commit_group(group)

    async def _commit_group(self, group: list[_Pending]) -> None:
        try:
            answers, staged = await self._store([p.items for p in group])
        except NotifyError as exc:
            for p in group:
                p.done.set_exception(exc)
            return
        except Exception as exc:  # a bug or a value the database refused
            if len(group) > 1:
                await self._commit_one_by_one(group, exc)
                return
            log.exception("commit of one send failed")
            group[0].done.set_exception(exc)
            return
        self._queue.flush([staged])
        for p, ids in zip(group, answers, strict=True):
            if not p.done.done():
                p.done.set_result(ids)

    async def _commit_one_by_one(self, group: list[_Pending], exc: Exception) -> None:
        """After ``group`` failed together for a reason that is not the backend's (one send
        holds something the database refuses), commit each of its sends alone, so that
        only the one at fault fails."""
        log.warning(
            "group commit of %d sends failed (%r); committing them one by one", len(group), exc
        )
        for p in group:
            await self._commit_group([p])

    async def _store(self, groups: list[list[NewNotification]]) -> tuple[list[list[str]], Staged]:
        """Insert every notification of every group, and the routing jobs of the new ones,
        in one transaction.

        Answers the ids per group (earlier ids for repeated idempotency keys) and the
        staged routing jobs.
        """
        first, unique = _unique_by_key(groups)
        keyless = [n for n in unique if n.idempotency_key is None]
        keyed = [n for n in unique if n.idempotency_key is not None]
        existing: dict[tuple[str, str], str] = {}
        async with self._db.write() as conn:
            if keyed:
                existing = await self._insert_keyed(conn, keyed)
            # Ours: a key that maps to our id (not a repeat of a key accepted before).
            won = [n for n in keyed if existing.get((n.user_id, n.idempotency_key or "")) == n.id]
            await insert_rows(conn, notifications, [_row(n) for n in keyless])
            staged = await _stage_due(conn, self._queue, [*keyless, *won])
        for key, nid in existing.items():
            first[key] = nid
        answers = [
            [
                n.id if n.idempotency_key is None else first[(n.user_id, n.idempotency_key)]
                for n in items
            ]
            for items in groups
        ]
        return answers, staged

    async def _insert_keyed(
        self, conn: AsyncConnection, keyed: list[NewNotification]
    ) -> dict[tuple[str, str], str]:
        """Insert the sends with an idempotency key whose key is not taken yet; answer the
        id each (user, key) maps to afterwards."""
        existing = await self._existing_keys(conn, keyed)
        to_insert = [_row(n) for n in keyed if (n.user_id, n.idempotency_key or "") not in existing]
        if to_insert:
            dialect_insert = sqlite.insert if self._db.is_sqlite else postgresql.insert
            stmt = dialect_insert(notifications).on_conflict_do_nothing(
                index_elements=["user_id", "idempotency_key"],
                index_where=notifications.c.idempotency_key.isnot(None),
            )
            await conn.execute(stmt, to_insert)
        # A concurrent writer (another process) may have won a key in between.
        return await self._existing_keys(conn, keyed)

    @staticmethod
    async def _existing_keys(
        conn: AsyncConnection, keyed: list[NewNotification]
    ) -> dict[tuple[str, str], str]:
        found: dict[tuple[str, str], str] = {}
        users = sorted({n.user_id for n in keyed})
        keys = sorted({n.idempotency_key for n in keyed if n.idempotency_key})
        for start in range(0, len(users), 500):
            result = await conn.execute(
                sa.select(
                    notifications.c.id, notifications.c.user_id, notifications.c.idempotency_key
                )
                .where(notifications.c.user_id.in_(users[start : start + 500]))
                .where(notifications.c.idempotency_key.in_(keys))
            )
            for nid, uid, key in result:
                found[(uid, key)] = nid
        return found


def _unique_by_key(
    groups: list[list[NewNotification]],
) -> tuple[dict[tuple[str, str], str], list[NewNotification]]:
    """The first id of each (user, idempotency key) among ``groups``, and the sends to
    insert: every send without a key and the first of each key."""
    first: dict[tuple[str, str], str] = {}
    unique: list[NewNotification] = []
    for items in groups:
        for n in items:
            if n.idempotency_key is None:
                unique.append(n)
                continue
            key = (n.user_id, n.idempotency_key)
            if key not in first:
                first[key] = n.id
                unique.append(n)
    return first, unique


def _row(n: NewNotification) -> dict[str, object]:
    """The ``notifications`` row of a send."""
    return {
        "id": n.id,
        "user_id": n.user_id,
        "type": n.type,
        "title": n.title,
        "message": n.message,
        "data": n.data,
        "priority": n.priority,
        "channels": n.channels,
        "idempotency_key": n.idempotency_key,
        "template": n.template,
        "locale": n.locale,
        "created_at": n.created_at,
        "group_key": n.group_key,  # none: never merged
        "send_at": n.send_at,
        "state": (NotificationState.ACCEPTED if n.send_at is None else NotificationState.SCHEDULED),
    }
