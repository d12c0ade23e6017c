"""The outbox: jobs staged in the caller's transaction, published to RabbitMQ after it.

A service that changes rows and queues work about them stages the jobs in the same
transaction (``WorkQueue.stage``), so the rows and their jobs commit together or not at
all. With RabbitMQ the staged jobs are rows of ``outbox`` in the service's database, and
one relay per process publishes them with publisher confirms and then deletes them:

* right after the commit the caller hands its staged rows to the relay (``flush``), which
  publishes whatever has gathered in one confirm round per queue (many callers' jobs at
  once) and deletes those rows in one statement;
* every ``sweep_interval`` the relay also publishes the rows of its namespace older than
  ``sweep_after``: their process died between the commit and the publish, or RabbitMQ
  did not confirm them. ``FOR UPDATE SKIP LOCKED`` keeps two sweeping processes apart.

A job may be published twice (a crash between the confirm and the delete, or a sweep
overtaking a slow hand-over). That is within the queue's at-least-once contract: every job
names a row, and the row says whether there is still work to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from notify_core.constants import (
    MAX_PRIORITY,
    OUTBOX_BATCH,
    OUTBOX_MAX_PENDING,
    OUTBOX_SWEEP_AFTER_SECONDS,
    OUTBOX_SWEEP_INTERVAL_SECONDS,
)
from notify_core.db.engine import Database
from notify_core.db.schema import outbox
from notify_core.errors import NotifyError
from notify_core.queue.base import Message, Staged

log = logging.getLogger(__name__)

Publish = Callable[[str, Sequence[Message], float], Awaitable[None]]
"""``publish(queue, messages, delay)``: returns once every message is confirmed."""


@dataclass(slots=True)
class _Job:
    row_id: str
    queue: str
    message: Message
    delay: float


@dataclass
class Counters:
    published: int = 0
    swept: int = 0
    failed_publishes: int = 0
    dropped_from_memory: int = 0
    by_queue: dict[str, int] = field(default_factory=dict)


class Outbox:
    """Stages jobs in ``outbox`` rows and relays them with ``publish``.

    ``names`` maps each logical queue to its namespaced name (what the rows store, so that
    deployments sharing one database never publish each other's jobs).
    """

    def __init__(
        self,
        database: Database,
        names: Mapping[str, str],
        publish: Publish,
        *,
        sweep_after: float = OUTBOX_SWEEP_AFTER_SECONDS,
        sweep_interval: float = OUTBOX_SWEEP_INTERVAL_SECONDS,
    ) -> None:
        self._db = database
        self._names = dict(names)
        self._logical = {full: logical for logical, full in self._names.items()}
        self._publish = publish
        self._sweep_after = sweep_after
        self._sweep_interval = sweep_interval
        self._pending: list[_Job] = []
        self._kick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.counters = Counters()

    # -- staging (in the caller's transaction) ------------------------------------------

    async def stage(
        self, conn: AsyncConnection, queue: str, messages: Sequence[Message], delay: float
    ) -> Staged:
        """Insert one ``outbox`` row per message with ``conn`` (the caller's transaction)."""
        if queue not in self._names:
            raise ValueError(f"queue {queue!r} was not declared for this WorkQueue")
        for m in messages:
            if not 0 <= m.priority <= MAX_PRIORITY:
                raise ValueError(f"priority {m.priority} is outside 0..{MAX_PRIORITY}")
        ids = [uuid.uuid4().hex for _ in messages]
        if messages:
            now = time.time()
            await conn.execute(
                sa.insert(outbox),
                [
                    {
                        "id": row_id,
                        "queue": self._names[queue],
                        "priority": m.priority,
                        "body": m.body,
                        "message_id": m.message_id,
                        "delay": max(delay, 0.0),
                        "created_at": now,
                    }
                    for row_id, m in zip(ids, messages, strict=True)
                ],
            )
        return Staged(queue, tuple(messages), max(delay, 0.0), tuple(ids))

    def flush(self, staged: Iterable[Staged]) -> None:
        """After the commit: hand the staged jobs to the relay (never blocks, never raises)."""
        for s in staged:
            self._pending.extend(
                _Job(row_id, s.queue, m, s.delay)
                for row_id, m in zip(s.row_ids, s.messages, strict=True)
            )
        if len(self._pending) > OUTBOX_MAX_PENDING:
            # RabbitMQ is far behind or away: the rows wait in the database for the sweep.
            self.counters.dropped_from_memory += len(self._pending)
            self._pending.clear()
        if self._pending:
            self._kick.set()

    # -- the relay ----------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def close(self, *, timeout: float = 5.0) -> None:
        """Stop the relay after one last try (within ``timeout``) at what was handed over;
        jobs still not published stay in the database for another process's sweep."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        jobs, self._pending = self._pending, []
        if jobs:
            try:
                async with asyncio.timeout(timeout):
                    await self._relay(jobs)
            except (TimeoutError, NotifyError) as exc:
                log.warning("outbox: %d jobs left for the sweep at close (%r)", len(jobs), exc)

    async def _run(self) -> None:
        next_sweep = time.monotonic()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, next_sweep - time.monotonic())):
                    await self._kick.wait()
            self._kick.clear()
            try:
                while self._pending:
                    jobs, self._pending = self._pending, []
                    await self._relay(jobs)
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + self._sweep_interval
                    while await self.sweep_once() == OUTBOX_BATCH:
                        pass
            except asyncio.CancelledError:
                raise
            except NotifyError as exc:
                log.warning("outbox relay: %s; the next sweep publishes what is left", exc)
            except Exception:
                log.exception("outbox relay failed; the next sweep publishes what is left")

    async def _relay(self, jobs: list[_Job]) -> None:
        """Publish handed-over jobs and delete the rows of those confirmed."""
        done: list[str] = []
        for (queue, delay), group in _grouped(jobs).items():
            try:
                await self._publish(queue, [j.message for j in group], delay)
            except NotifyError as exc:
                self.counters.failed_publishes += 1
                log.warning("outbox: %d jobs for %s not published (%s)", len(group), queue, exc)
                continue
            done.extend(j.row_id for j in group)
            self._count(queue, len(group))
        self.counters.published += len(done)
        await self._delete(done)

    async def sweep_once(self, *, older_than: float | None = None) -> int:
        """Publish (and delete) up to ``OUTBOX_BATCH`` rows older than ``older_than``
        seconds (default ``sweep_after``) in one transaction; answer how many."""
        now = time.time()
        cutoff = now - (self._sweep_after if older_than is None else older_than)
        query = (
            sa.select(outbox)
            .where(outbox.c.queue.in_(sorted(self._logical)), outbox.c.created_at < cutoff)
            .order_by(outbox.c.created_at)
            .limit(OUTBOX_BATCH)
        )
        if not self._db.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        async with self._db.write() as conn:
            rows = (await conn.execute(query)).all()
            jobs = [
                _Job(
                    r.id,
                    self._logical[r.queue],
                    Message(bytes(r.body), r.priority, r.message_id),
                    max(0.0, r.created_at + r.delay - now),
                )
                for r in rows
            ]
            for (queue, delay), group in _grouped(jobs).items():
                await self._publish(queue, [j.message for j in group], delay)
                self._count(queue, len(group))
            await _delete_in(conn, [j.row_id for j in jobs])
        if jobs:
            self.counters.swept += len(jobs)
            log.info("outbox: published %d jobs left behind", len(jobs))
        return len(jobs)

    async def _delete(self, ids: list[str]) -> None:
        if ids:
            async with self._db.write() as conn:
                await _delete_in(conn, ids)

    def _count(self, queue: str, n: int) -> None:
        self.counters.by_queue[queue] = self.counters.by_queue.get(queue, 0) + n


async def _delete_in(conn: AsyncConnection, ids: list[str]) -> None:
    for start in range(0, len(ids), 500):
        await conn.execute(sa.delete(outbox).where(outbox.c.id.in_(ids[start : start + 500])))


def _grouped(jobs: Iterable[_Job]) -> dict[tuple[str, float], list[_Job]]:
    """Jobs per (queue, delay to a tenth of a second): one publish call each."""
    out: dict[tuple[str, float], list[_Job]] = {}
    for j in jobs:
        out.setdefault((j.queue, round(j.delay, 1)), []).append(j)
    return out
