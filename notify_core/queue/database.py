"""The embedded work queue: rows of ``queue_jobs`` leased by their consumers.

A job is a row; a consumer claims ready rows (``lease_until`` null or past) by setting a
lease, and ``ack`` deletes them. While a claimed row is in flight this process extends its
lease (a heartbeat), so slow work is not redelivered; when the process dies the heartbeat
stops and the row becomes ready again once the lease expires. On PostgreSQL the claim uses
``FOR UPDATE SKIP LOCKED``, so any number of consumers in any number of processes never
claim the same row; on SQLite the database's single writer serialises claims.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from notify_core.constants import (
    MAX_PRIORITY,
    QUEUE_IDLE_POLL_SECONDS,
    QUEUE_POLL_SECONDS,
    QUEUE_VISIBILITY_TIMEOUT_SECONDS,
    queue_name,
)
from notify_core.db.engine import Database
from notify_core.db.schema import queue_jobs as jobs
from notify_core.errors import QueueUnavailable, Unavailable
from notify_core.queue.base import Delivery, Message, Staged

log = logging.getLogger(__name__)

_ID_CHUNK = 500
"""Row ids per statement (keeps ``IN (...)`` well under SQLite's parameter limit)."""


@dataclass(eq=False)
class _Consumer:
    """One ``consume()`` iterator: the rows it holds and the event that wakes it."""

    queue: str
    held: set[int] = field(default_factory=set)
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class DatabaseQueue:
    """A :class:`~notify_core.queue.base.WorkQueue` kept in the ``queue_jobs`` table.

    Guarantees, beyond those of the protocol:

    * ``publish`` is one INSERT in one transaction: all the messages are committed, or
      none is and ``QueueUnavailable`` is raised.
    * A row is claimed by one consumer at a time. Its lease lasts ``visibility_timeout``
      seconds and is extended every third of that while this object holds it; ``close()``
      gives held rows back at once, a killed process's rows come back when the lease ends.
    * Consumers in this process wake as soon as a publish in this process commits;
      publishes from other processes are seen within ``poll_interval`` .. 0.5 s.
    """

    def __init__(
        self,
        database: Database,
        namespace: str,
        queues: Sequence[str],
        *,
        visibility_timeout: float = QUEUE_VISIBILITY_TIMEOUT_SECONDS,
        poll_interval: float = QUEUE_POLL_SECONDS,
    ) -> None:
        if visibility_timeout <= 0 or poll_interval <= 0:
            raise ValueError("visibility_timeout and poll_interval must be positive")
        self._db = database
        self._names = {q: queue_name(namespace, q) for q in queues}
        self._visibility_timeout = visibility_timeout
        self._poll_interval = poll_interval
        self._consumers: set[_Consumer] = set()
        self._owner: dict[int, _Consumer] = {}
        """Row id -> the consumer holding its lease (the heartbeat extends these)."""
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._closed = False

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Check the database answers and start the lease heartbeat."""
        if self._closed:
            raise RuntimeError("DatabaseQueue is closed")
        await self.ping()
        if self._heartbeat_task is None:
            self._heartbeat_task = asyncio.create_task(
                self._heartbeat(), name="queue-lease-heartbeat"
            )

    async def close(self) -> None:
        """Stop the consumers and give every held row back (the database stays open)."""
        if self._closed:
            return
        self._closed = True
        for consumer in self._consumers:
            consumer.wake.set()
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat_task
            self._heartbeat_task = None
        held = list(self._owner)
        self._owner.clear()
        for consumer in self._consumers:
            consumer.held.clear()
        try:
            await self._release(held)
        except QueueUnavailable as exc:
            log.warning(
                "could not give back %d jobs at close (%s); their leases expire", len(held), exc
            )

    # -- publishing ---------------------------------------------------------------------

    async def publish(self, queue: str, messages: Sequence[Message], *, delay: float = 0.0) -> None:
        """Insert one row per message in one transaction; return once committed. A
        ``delay`` makes the rows available that many seconds later."""
        if not messages:
            return
        async with self._write() as conn:
            await self._insert(conn, queue, messages, delay)
        if delay <= 0:
            self.wake(queue)

    async def stage(
        self,
        conn: AsyncConnection,
        queue: str,
        messages: Sequence[Message],
        *,
        delay: float = 0.0,
    ) -> Staged:
        """Insert the rows inside the caller's transaction (``conn`` must be a connection of
        this queue's database): they are jobs once it commits. ``flush`` wakes consumers."""
        await self._insert(conn, queue, messages, delay)
        return Staged(queue, tuple(messages), max(delay, 0.0))

    def flush(self, staged: Iterable[Staged]) -> None:
        """Wake this process's consumers of the staged queues (other processes poll)."""
        for s in staged:
            if s.messages and s.delay <= 0:
                self.wake(s.queue)

    async def _insert(
        self, conn: AsyncConnection, queue: str, messages: Sequence[Message], delay: float
    ) -> None:
        if not messages:
            return
        name = self._name(queue)
        now = time.time()
        rows = [
            {
                "queue": name,
                "priority": _checked_priority(m.priority),
                "body": m.body,
                "message_id": m.message_id,
                "created_at": now,
                "lease_until": now + delay if delay > 0 else None,
            }
            for m in messages
        ]
        await conn.execute(sa.insert(jobs), rows)

    def wake(self, queue: str) -> None:
        """Tell this process's consumers of ``queue`` that jobs arrived."""
        name = self._name(queue)
        for consumer in self._consumers:
            if consumer.queue == name:
                consumer.wake.set()

    # -- consuming ----------------------------------------------------------------------

    async def consume(
        self, queue: str, *, prefetch: int = 100, max_batch: int = 100
    ) -> AsyncIterator[list[Delivery]]:
        """Yield batches of claimed rows, highest priority first, until ``close()``."""
        name = self._name(queue)
        if prefetch < 1 or max_batch < 1:
            raise ValueError("prefetch and max_batch must be at least 1")
        consumer = _Consumer(name)
        self._consumers.add(consumer)
        idle = self._poll_interval
        failing = 0
        try:
            while not self._closed:
                consumer.wake.clear()
                room = min(max_batch, prefetch - len(consumer.held))
                if room <= 0:
                    await _wait(consumer.wake, QUEUE_IDLE_POLL_SECONDS)
                    continue
                try:
                    rows = await self._claim(name, room)
                except QueueUnavailable as exc:
                    failing += 1
                    delay = min(0.5 * 2 ** min(failing, 4), 5.0)
                    log.warning("claiming from %s failed (%s); retrying in %.1fs", name, exc, delay)
                    await _wait(consumer.wake, delay)
                    continue
                failing = 0
                if self._closed:
                    with contextlib.suppress(QueueUnavailable):
                        await self._release(row.id for row in rows)
                    return
                if not rows:
                    await _wait(consumer.wake, idle)
                    idle = min(idle * 2, max(QUEUE_IDLE_POLL_SECONDS, self._poll_interval))
                    continue
                idle = self._poll_interval
                for row in rows:
                    consumer.held.add(row.id)
                    self._owner[row.id] = consumer
                yield [
                    Delivery(
                        body=bytes(row.body),
                        priority=row.priority,
                        tag=row.id,
                        redelivered=row.deliveries > 1,
                        message_id=row.message_id,
                    )
                    for row in rows
                ]
        finally:
            self._consumers.discard(consumer)

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Delete the rows for good."""
        ids = [_row_id(d) for d in deliveries]
        async with self._write() as conn:
            for chunk in _chunks(ids):
                await conn.execute(sa.delete(jobs).where(jobs.c.id.in_(chunk)))
        self._forget(ids)

    async def nack(self, deliveries: Sequence[Delivery]) -> None:
        """Make the rows ready again at once."""
        ids = [_row_id(d) for d in deliveries]
        await self._release(ids)
        self._forget(ids)

    # -- inspection ---------------------------------------------------------------------

    async def depth(self, queue: str) -> int:
        """Rows of ``queue`` that are ready (not leased)."""
        name = self._name(queue)
        stmt = sa.select(sa.func.count()).select_from(jobs).where(_ready(name, time.time()))
        async with self._read() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def purge(self, queue: str) -> None:
        """Delete every row of ``queue``, leased or not."""
        name = self._name(queue)
        async with self._write() as conn:
            await conn.execute(sa.delete(jobs).where(jobs.c.queue == name))

    async def ping(self) -> None:
        """``SELECT 1``; raises ``QueueUnavailable`` when the database does not answer."""
        async with self._read() as conn:
            await conn.execute(sa.text("SELECT 1"))

    # -- internals ----------------------------------------------------------------------

    def _name(self, queue: str) -> str:
        try:
            return self._names[queue]
        except KeyError:
            raise ValueError(f"queue {queue!r} was not declared for this WorkQueue") from None

    async def _claim(self, name: str, limit: int) -> list[sa.Row[Any]]:
        now = time.time()
        if not await self._any_ready(name, now):
            return []  # an idle poll costs a read, not a write (SQLite has one writer)
        ids = (
            sa.select(jobs.c.id)
            .where(_ready(name, now))
            .order_by(jobs.c.priority.desc(), jobs.c.id)
            .limit(limit)
        )
        chosen: sa.ColumnElement[bool]
        if self._db.is_sqlite:
            chosen = jobs.c.id.in_(ids.scalar_subquery())
        else:
            # ARRAY(...) is an InitPlan: the locking subquery runs exactly once.
            locked = ids.with_for_update(skip_locked=True).scalar_subquery()
            chosen = jobs.c.id == sa.any_(sa.func.array(locked))
        stmt = (
            sa.update(jobs)
            .where(chosen)
            .values(lease_until=now + self._visibility_timeout, deliveries=jobs.c.deliveries + 1)
            .returning(
                jobs.c.id, jobs.c.priority, jobs.c.body, jobs.c.message_id, jobs.c.deliveries
            )
        )
        async with self._write() as conn:
            rows = list((await conn.execute(stmt)).all())
        rows.sort(key=lambda r: (-r.priority, r.id))
        return rows

    async def _any_ready(self, name: str, now: float) -> bool:
        async with self._read() as conn:
            found = await conn.execute(sa.select(jobs.c.id).where(_ready(name, now)).limit(1))
            return found.first() is not None

    async def _release(self, ids: Iterable[int]) -> None:
        id_list = list(ids)
        if not id_list:
            return
        async with self._write() as conn:
            for chunk in _chunks(id_list):
                await conn.execute(
                    sa.update(jobs).where(jobs.c.id.in_(chunk)).values(lease_until=None)
                )

    def _forget(self, ids: Iterable[int]) -> None:
        for row_id in ids:
            consumer = self._owner.pop(row_id, None)
            if consumer is not None:
                consumer.held.discard(row_id)
                consumer.wake.set()

    async def _heartbeat(self) -> None:
        interval = self._visibility_timeout / 3
        while True:
            await asyncio.sleep(interval)
            ids = list(self._owner)
            if not ids:
                continue
            lease = time.time() + self._visibility_timeout
            try:
                async with self._write() as conn:
                    for chunk in _chunks(ids):
                        await conn.execute(
                            sa.update(jobs).where(jobs.c.id.in_(chunk)).values(lease_until=lease)
                        )
            except QueueUnavailable as exc:
                log.warning("could not extend the lease of %d jobs: %s", len(ids), exc)
            except Exception:
                log.exception("could not extend the lease of %d jobs", len(ids))

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        async with _translated(), self._db.write() as conn:
            yield conn

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        async with _translated(), self._db.read() as conn:
            yield conn


@asynccontextmanager
async def _translated() -> AsyncIterator[None]:
    """Database outages (and a SQLite lock never granted) become ``QueueUnavailable``."""
    try:
        yield
    except QueueUnavailable:
        raise
    except Unavailable as exc:
        raise QueueUnavailable(f"queue database unavailable: {exc.message}") from exc
    except OperationalError as exc:
        raise QueueUnavailable(f"queue database unavailable: {exc.orig}") from exc


def _ready(name: str, now: float) -> sa.ColumnElement[bool]:
    return sa.and_(
        jobs.c.queue == name,
        sa.or_(jobs.c.lease_until.is_(None), jobs.c.lease_until < now),
    )


def _row_id(delivery: Delivery) -> int:
    if not isinstance(delivery.tag, int):
        raise TypeError(f"not a DatabaseQueue delivery: tag {delivery.tag!r}")
    return delivery.tag


def _checked_priority(priority: int) -> int:
    if not 0 <= priority <= MAX_PRIORITY:
        raise ValueError(f"priority {priority} is outside 0..{MAX_PRIORITY}")
    return priority


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), _ID_CHUNK):
        yield ids[start : start + _ID_CHUNK]


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Wait for ``event`` at most ``seconds``.

    ``asyncio.timeout``, not ``wait_for``: on Python 3.11 ``wait_for`` swallows a
    cancellation that arrives as the event is set, and the consumer would never stop.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
