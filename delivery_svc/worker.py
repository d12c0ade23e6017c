"""The delivery worker of one channel: claim, send, record, then acknowledge.

For each priority the channel's queue is consumed with its own concurrency
(``NOTIFY_DELIVERY_CONCURRENCY``; high before normal before low by having more in flight).
What a job names is a row of a table (:class:`Rows`): a notification delivery
(:class:`DeliveryRows`, the email and webhook channels) or a digest
(:class:`delivery_svc.digests.DigestRows`); both carry the same status, lease and retry
columns, so one path claims, sends, records and retries them. A batch of jobs goes
through four steps:

1. **Claim** the rows in one statement: ``pending``, due ``retrying``, or ``sending`` with
   an expired lease become ``sending`` with a fresh lease and one more attempt. A row
   another worker holds gets its job back after the lease; a row already settled (sent,
   failed, ...) is never sent again: that is what stops a redelivered job from sending
   twice.
2. **Send** the claimed ones concurrently through the channel.
3. **Record** every outcome in one transaction *before* acknowledging: sent (with the
   provider's message id), retrying (with the time of the next try, its error, and its
   delayed job staged in that same transaction, so a retry is never left without a job),
   or failed (dead letter: permanent errors, or the retry schedule spent). If the database
   connection drops, the record is tried again for up to half the lease: the sends went
   out, and a lease left to run out would send them all again.
4. **Acknowledge** the jobs.

A crash between 2 and 3 is the one place a message can go out twice: the provider took it
and we did not write it down. The stable Message-ID / webhook-id lets receivers drop it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from delivery_svc.breaker import Breaker
from delivery_svc.jobs import delivery_message
from delivery_svc.providers.base import Outcome
from delivery_svc.retry import retry_delay
from notify_core.constants import (
    SEND_LEASE_SECONDS,
    delivery_queue,
)
from notify_core.db.bulk import update_many
from notify_core.db.engine import Database
from notify_core.db.schema import notification_deliveries as deliveries
from notify_core.db.schema import notifications
from notify_core.domain import PRIORITIES, DeliveryEvent, DeliveryStatus, sources, target
from notify_core.errors import NotifyError, Unavailable
from notify_core.queue.base import Delivery, Message, WorkQueue, job_ids

log = logging.getLogger(__name__)


class Channel(Protocol):
    """What a worker needs of a channel: turn claimed rows into sends."""

    name: str

    async def send_all(self, rows: Sequence[Mapping[str, Any]]) -> list[Outcome]:
        """Send one message per row (as :meth:`Rows.load` answers it); answer each outcome
        in order. Never raises for one message's failure."""
        ...

    def breakers(self) -> list[Breaker]:
        """The channel's circuit breakers, for operators."""
        ...


class Rows(Protocol):
    """The table a worker claims its sends from, and what it reads and writes besides.

    ``table`` has the columns ``id``, ``status`` (moved along
    :data:`~notify_core.domain.TRANSITIONS` by claimed, sent, retry and gave up),
    ``attempts``, ``hold_until`` (the lease while sending, the next try while retrying),
    ``provider``, ``provider_message_id``, ``recipient``, ``sent_at``, ``dead_at`` and the
    error column named by ``error``."""

    table: sa.Table
    error: str
    key: str
    """The key of a loaded row's id (what ``send_all`` gets and the job names)."""

    def scope(self) -> sa.ColumnElement[bool]:
        """The rows of ``table`` that are this worker's (its channel's)."""
        ...

    async def load(self, conn: AsyncConnection, ids: list[str]) -> list[dict[str, Any]]:
        """The claimed rows as the channel sends them, each with ``key``, ``attempts`` and
        ``priority``."""
        ...

    async def held(self, conn: AsyncConnection, ids: list[str]) -> list[tuple[str, str, datetime]]:
        """Of ``ids``, those another worker is sending: (id, priority, lease end)."""
        ...

    async def settled(
        self, conn: AsyncConnection, sent: list[str], failed: list[str], now: datetime
    ) -> None:
        """What else changes, in the recording transaction, when rows are sent or fail for
        good."""
        ...


class DeliveryRows:
    """``notification_deliveries`` of one channel, joined with their notifications."""

    table = deliveries
    error = "error_message"
    key = "delivery_id"

    def __init__(self, channel: str) -> None:
        self._channel = channel

    def scope(self) -> sa.ColumnElement[bool]:
        return deliveries.c.channel == self._channel

    async def load(self, conn: AsyncConnection, ids: list[str]) -> list[dict[str, Any]]:
        if not ids:
            return []
        result = await conn.execute(
            sa.select(
                deliveries.c.id.label("delivery_id"),
                deliveries.c.channel,
                deliveries.c.attempts,
                notifications,
            )
            .join(notifications, notifications.c.id == deliveries.c.notification_id)
            .where(deliveries.c.id.in_(ids))
        )
        return [dict(r._mapping) for r in result]

    async def held(self, conn: AsyncConnection, ids: list[str]) -> list[tuple[str, str, datetime]]:
        d = deliveries.c
        others = await conn.execute(
            sa.select(d.id, d.hold_until, notifications.c.priority)
            .join(notifications, notifications.c.id == d.notification_id)
            .where(d.id.in_(ids), d.status == DeliveryStatus.SENDING)
        )
        return [(r.id, r.priority, r.hold_until) for r in others]

    async def settled(
        self, conn: AsyncConnection, sent: list[str], failed: list[str], now: datetime
    ) -> None:
        return None


@dataclass
class Counters:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    duplicates_skipped: int = 0
    by_error: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Outcome:
    row: Mapping[str, Any]
    result: Outcome
    retry_in: float | None = None


class DeliveryWorker:
    def __init__(
        self,
        database: Database,
        queue: WorkQueue,
        channel: Channel,
        *,
        concurrency: Mapping[str, int],
        schedule: Sequence[float],
        lease: float = SEND_LEASE_SECONDS,
        draw: Callable[[], float] = random.random,
        rows: Rows | None = None,
        priorities: Sequence[str] = PRIORITIES,
    ) -> None:
        self._db = database
        self._queue = queue
        self._channel = channel
        self._rows: Rows = rows if rows is not None else DeliveryRows(channel.name)
        self._priorities = tuple(priorities)
        self._concurrency = concurrency
        self._schedule = tuple(schedule)
        self._lease = lease
        self._draw = draw
        self.counters = Counters()

    @property
    def channel(self) -> str:
        return self._channel.name

    def breakers(self) -> list[Breaker]:
        """The circuit breakers of this worker's channel (providers, webhook hosts)."""
        return self._channel.breakers()

    async def run(self) -> None:
        await asyncio.gather(*[self._consume(p) for p in self._priorities])

    async def _consume(self, priority: str) -> None:
        name = delivery_queue(self._channel.name, priority)
        size = self._concurrency.get(priority, 1)
        while True:
            try:
                async for batch in self._queue.consume(name, prefetch=2 * size, max_batch=size):
                    await self.handle(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s consumer stopped; restarting in 1 s", name)
                await asyncio.sleep(1.0)

    async def handle(self, batch: list[Delivery]) -> None:
        ids = job_ids(batch, log)
        try:
            claimed_at = time.monotonic()
            claimed, later = await self._claim(ids)
            if later:
                await self._queue.publish(
                    delivery_queue(self._channel.name, later[0][1]),
                    [delivery_message(i, p) for i, p, _ in later],
                    delay=max(w for _, _, w in later),
                )
            results = await self._channel.send_all(claimed) if claimed else []
            outcomes = [self._outcome(r, res) for r, res in zip(claimed, results, strict=True)]
            await self._record_while_leased(outcomes, claimed_at)
        except NotifyError as exc:
            log.warning("delivery batch failed (%s); jobs go back to the queue", exc)
            await self._queue.nack(batch)
            await asyncio.sleep(0.5)
            return
        await self._queue.ack(batch)

    async def _claim(
        self, ids: list[str]
    ) -> tuple[list[dict[str, Any]], list[tuple[str, str, float]]]:
        """Claim the sendable rows; answer them (as the channel sends them) and the rows
        held by another worker, with how long until their lease ends."""
        if not ids:
            return [], []
        now = datetime.now(UTC)
        lease = now + timedelta(seconds=self._lease)
        table = self._rows.table
        d = table.c
        pending, retrying, sending = sources(DeliveryEvent.CLAIMED)
        claimable = sa.or_(
            d.status == pending,
            sa.and_(d.status == retrying, d.hold_until <= now + timedelta(seconds=1)),
            sa.and_(d.status == sending, d.hold_until < now),  # its lease lapsed
        )
        async with self._db.write() as conn:
            got = await conn.execute(
                table.update()
                .where(d.id.in_(ids), self._rows.scope(), claimable)
                .values(
                    status=target(DeliveryEvent.CLAIMED), attempts=d.attempts + 1, hold_until=lease
                )
                .returning(d.id)
            )
            mine = [r.id for r in got]
            rows = await self._rows.load(conn, mine)
            taken = set(mine)
            others = await self._rows.held(conn, [i for i in ids if i not in taken])
            later = [(i, p, max(1.0, (until - now).total_seconds())) for i, p, until in others]
        self.counters.duplicates_skipped += len(ids) - len(mine) - len(later)
        return rows, later

    def _outcome(self, row: Mapping[str, Any], result: Outcome) -> _Outcome:
        if not result.retryable:
            return _Outcome(row, result)
        wait = retry_delay(
            row["attempts"], self._schedule, draw=self._draw(), retry_after=result.retry_after
        )
        return _Outcome(row, result, wait)

    async def _record_while_leased(self, outcomes: list[_Outcome], claimed_at: float) -> None:
        """``_record``, tried again while the database is unavailable, until half the lease
        of these claims has passed (then the error goes up and the lease decides)."""
        pause = 0.1
        while True:
            try:
                await self._record(outcomes)
                return
            except Unavailable as exc:
                if time.monotonic() + pause - claimed_at > self._lease / 2:
                    raise
                log.warning("recording %d sends failed (%s); trying again", len(outcomes), exc)
            await asyncio.sleep(pause)
            pause = min(2 * pause, 2.0)

    def _sort(
        self, outcomes: list[_Outcome], now: datetime
    ) -> tuple[
        list[dict[str, Any]],
        list[dict[str, Any]],
        list[dict[str, Any]],
        dict[float, list[tuple[str, Message]]],
    ]:
        """The rows of the sent, failed and retrying outcomes (``id`` and the values of each
        row's own columns), and the retry jobs by delay (errors are counted by kind on the
        way)."""
        sent: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        retrying: list[dict[str, Any]] = []
        retries: dict[float, list[tuple[str, Message]]] = {}
        ident, error = self._rows.key, self._rows.error
        for o in outcomes:
            row = o.row
            if o.result.ok:
                sent.append(
                    {
                        "id": row[ident],
                        "provider": o.result.provider,
                        "provider_message_id": o.result.provider_id,
                        "recipient": o.result.recipient,
                    }
                )
                continue
            key = o.result.kind
            self.counters.by_error[key] = self.counters.by_error.get(key, 0) + 1
            if o.retry_in is None:
                failed.append(
                    {"id": row[ident], "provider": o.result.provider, error: o.result.message}
                )
            else:
                retrying.append(
                    {
                        "id": row[ident],
                        error: o.result.message,
                        "hold_until": now + timedelta(seconds=o.retry_in),
                    }
                )
                # One delay per batch keeps the publish grouped; the largest wins.
                retries.setdefault(round(o.retry_in, 3), []).append(
                    (
                        delivery_queue(self._channel.name, row["priority"]),
                        delivery_message(row[ident], row["priority"]),
                    )
                )
        return sent, failed, retrying, retries

    async def _record(self, outcomes: list[_Outcome]) -> None:
        """Write every outcome, and stage the retry jobs, in one transaction: one
        set-based ``UPDATE`` per kind of outcome (:func:`~notify_core.db.bulk.update_many`)."""
        if not outcomes:
            return
        now = datetime.now(UTC)
        table, error = self._rows.table, self._rows.error
        sent, failed, retrying, retries = self._sort(outcomes, now)
        async with self._db.write() as conn:
            for rows, same in (
                (
                    sent,
                    {
                        "status": target(DeliveryEvent.SENT),
                        "sent_at": now,
                        error: None,
                        "hold_until": None,
                    },
                ),
                (
                    failed,
                    {"status": target(DeliveryEvent.GAVE_UP), "dead_at": now, "hold_until": None},
                ),
                (retrying, {"status": target(DeliveryEvent.RETRY)}),
            ):
                await update_many(conn, table, "id", rows, also=same)
            await self._rows.settled(conn, [r["id"] for r in sent], [r["id"] for r in failed], now)
            staged = [
                await self._queue.stage(conn, queue, batch, delay=delay)
                for delay, messages in retries.items()
                for queue, batch in _by_queue(messages).items()
            ]
        self._queue.flush(staged)
        self.counters.sent += len(sent)
        self.counters.failed += len(failed)
        self.counters.retried += len(retrying)


def _by_queue(messages: list[tuple[str, Message]]) -> dict[str, list[Message]]:
    out: dict[str, list[Message]] = {}
    for queue, message in messages:
        out.setdefault(queue, []).append(message)
    return out
