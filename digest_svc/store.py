"""What a digest run reads and writes: schedules, due users, their items, the record.

- :func:`sync_schedules` keeps ``digest_schedules`` in step with the preferences: a row per
  digest-enabled user, recomputed whenever their preferences row changed (its
  ``updated_at``), removed when they switch digests off.
- :func:`due_page` reads due users a page at a time, with their preferences;
  :func:`load_items` their put-aside emails (delivery rows ``digested`` that no digest
  carries, by the partial index ``idx_deliveries_digested``).
- :func:`record` writes one batch's outcome in one transaction, fenced by the scheduler
  lease: the ``digests`` rows (unique per user and period, ``pending`` with their rendered
  message), the items they carry marked with the digest's id (a carried item's one
  write: it reads ``digest_sent`` through its digest once that is sent) or dropped
  (``skipped``), each user's next due time, the run's counts, and one job per new digest
  staged on the digest delivery queue (:data:`~notify_core.constants.DIGEST_QUEUE`),
  which the delivery worker consumes (:mod:`delivery_svc.digests`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from delivery_svc.api import delivery_message
from digest_svc.content import TYPE_SWITCHED_OFF, Item
from digest_svc.runs import Counts, write_counts
from digest_svc.schedule import Schedule, first_digest_at
from notify_core.constants import DIGEST_PRIORITY, DIGEST_QUEUE, DIGEST_SYNC_BATCH
from notify_core.db.bulk import insert_new, update_many
from notify_core.db.engine import Database
from notify_core.db.lease import Lease
from notify_core.db.schema import (
    digest_schedules,
    digests,
    notification_deliveries,
    notification_preferences,
    notifications,
)
from notify_core.domain import DeliveryEvent, DeliveryStatus, target
from notify_core.errors import LeaseLost
from notify_core.queue.base import Staged, WorkQueue
from preference_svc.api import StoredPreferences, from_row

log = logging.getLogger(__name__)

_MAX_PARAMS = 30_000
"""Bind parameters per statement (SQLite allows 32,766, psycopg 65,535)."""


def zone_of(name: str) -> ZoneInfo:
    """The user's zone (the preferences' ``timezone``); UTC for a name the system's time
    zone database does not know (validated when it was stored, so this is rare)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown time zone %r in preferences; digests use UTC", name)
        return ZoneInfo("UTC")


def schedule_of(row: Any) -> Schedule:
    return Schedule(row.digest_frequency, row.digest_hour, row.digest_weekday)


def batched(rows: Sequence[Any], size: int) -> Iterator[list[Any]]:
    """``rows`` in lists of ``size`` (the last one shorter)."""
    it = iter(rows)
    while chunk := list(islice(it, max(1, size))):
        yield chunk


def _insert(conn: AsyncConnection) -> Any:
    return sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert


# --- schedules --------------------------------------------------------------------------


async def sync_schedules(db: Database) -> int:
    """Bring ``digest_schedules`` in step with the preferences; answer how many users'
    schedules were (re)computed."""
    p, s = notification_preferences, digest_schedules
    query = (
        sa.select(
            p.c.user_id,
            p.c.digest_frequency,
            p.c.digest_hour,
            p.c.digest_weekday,
            p.c.timezone,
            p.c.updated_at,
            s.c.next_at,
        )
        .select_from(p.outerjoin(s, s.c.user_id == p.c.user_id))
        .where(
            p.c.digest_enabled.is_(sa.true()),
            sa.or_(s.c.user_id.is_(None), s.c.synced_at != p.c.updated_at),
        )
    )
    async with db.read() as conn:
        changed = list(await conn.execute(query))
    values = [
        {
            "user_id": r.user_id,
            "next_at": first_digest_at(
                r.updated_at, r.next_at, schedule_of(r), zone_of(r.timezone)
            ),
            "synced_at": r.updated_at,
        }
        for r in changed
    ]
    enabled = sa.select(p.c.user_id).where(
        p.c.user_id == s.c.user_id, p.c.digest_enabled.is_(sa.true())
    )
    async with db.write() as conn:
        for chunk in batched(values, DIGEST_SYNC_BATCH):
            stmt = _insert(conn)(s).values(chunk)
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[s.c.user_id],
                    set_={"next_at": stmt.excluded.next_at, "synced_at": stmt.excluded.synced_at},
                )
            )
        await conn.execute(s.delete().where(~sa.exists(enabled)))
    return len(values)


def _due(as_of: datetime) -> Any:
    """Schedules joined with preferences: the users due at ``as_of``."""
    p, s = notification_preferences, digest_schedules
    return (
        s.join(p, p.c.user_id == s.c.user_id),
        sa.and_(s.c.next_at <= as_of, p.c.digest_enabled.is_(sa.true())),
    )


async def due_count(db: Database, as_of: datetime) -> int:
    """Users due at ``as_of``."""
    joined, due = _due(as_of)
    query = sa.select(sa.func.count()).select_from(joined).where(due)
    async with db.read() as conn:
        return int((await conn.execute(query)).scalar_one())


@dataclass(frozen=True, slots=True)
class DueUser:
    user_id: str
    preferences: StoredPreferences
    schedule: Schedule
    zone: ZoneInfo
    next_at: datetime


async def due_page(db: Database, as_of: datetime, after: str, limit: int) -> list[DueUser]:
    """The next ``limit`` users due at ``as_of`` whose id sorts after ``after``."""
    p, s = notification_preferences, digest_schedules
    joined, due = _due(as_of)
    query = (
        sa.select(p, s.c.next_at)
        .select_from(joined)
        .where(due, s.c.user_id > after)
        .order_by(s.c.user_id)
        .limit(limit)
    )
    async with db.read() as conn:
        rows = list(await conn.execute(query))
    return [
        DueUser(r.user_id, from_row(r), schedule_of(r), zone_of(r.timezone), r.next_at)
        for r in rows
    ]


async def load_items(
    db: Database, user_ids: Sequence[str], as_of: datetime
) -> dict[str, list[Item]]:
    """Each user's emails put aside for the digest up to ``as_of``, oldest first; not those
    a digest already carries (it is on its way: they settle with its outcome)."""
    n, d = notifications, notification_deliveries
    query = (
        sa.select(
            d.c.id.label("delivery_id"),
            n.c.id,
            n.c.user_id,
            n.c.type,
            n.c.title,
            n.c.message,
            n.c.data,
            n.c.group_key,
            n.c.count.label("merged"),
            n.c.locale,
            n.c.created_at,
        )
        .select_from(n.join(d, d.c.notification_id == n.c.id))
        .where(
            n.c.user_id.in_(user_ids),
            d.c.status == DeliveryStatus.DIGESTED,
            d.c.channel == "email",
            d.c.digest_id.is_(None),
            d.c.created_at <= as_of,
        )
        .order_by(n.c.user_id, n.c.created_at)
    )
    found: dict[str, list[Item]] = {u: [] for u in user_ids}
    async with db.read() as conn:
        rows = await conn.execute(query)
        # Unpacked by position: a Row's attribute access cost four times the Item itself.
        for did, nid, user, type_, title, text, data, key, merged, locale, at in rows:
            found[user].append(Item(did, nid, type_, title, text, key, merged, locale, at, data))
    return found


async def sent_periods(db: Database, wanted: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of the (user, period) pairs already have their digest."""
    if not wanted:
        return set()
    users = sorted({u for u, _ in wanted})
    periods = sorted({k for _, k in wanted})
    query = sa.select(digests.c.user_id, digests.c.period_key).where(
        digests.c.user_id.in_(users), digests.c.period_key.in_(periods)
    )
    async with db.read() as conn:
        found = {(r.user_id, r.period_key) for r in await conn.execute(query)}
    return found & set(wanted)


# --- recording --------------------------------------------------------------------------


@dataclass
class Batch:
    """What one batch of users came to, ready to be written in one transaction."""

    digests: list[dict[str, Any]] = field(default_factory=list)
    """``digests`` rows (``pending``, with their message)."""
    carried: dict[str, list[str]] = field(default_factory=dict)
    """Per digest id: the delivery ids it carries."""
    dropped: list[str] = field(default_factory=list)
    """Delivery ids of types switched off since: marked ``skipped``."""
    next_at: dict[str, datetime] = field(default_factory=dict)
    """Per user: when next due."""


@dataclass
class Recorded:
    """What :func:`record` wrote: the digests, and their staged jobs."""

    written: set[str]
    """Ids of the digests written (one missing was recorded for its period already)."""
    staged: list[Staged]
    """Their delivery jobs, to ``queue.flush`` once committed."""
    staging: float = 0.0
    """Seconds spent staging the jobs (the run's ``send`` phase: the hand-over)."""


async def record(
    db: Database,
    queue: WorkQueue,
    lease: Lease,
    run_id: str,
    batch: Batch,
    counts: Counts,
) -> Recorded:
    """Write ``batch`` and the run's ``counts``, and stage a delivery job for each digest
    written, in one transaction, if this node still holds the lease (else
    :class:`LeaseLost`, nothing written). A digest not written was recorded by someone
    else for its period already, and its items are left to that one."""
    d = notification_deliveries
    out = Recorded(set(), [])
    async with db.write() as conn:
        if not await lease.renew_in(conn):
            raise LeaseLost(f"the lease {lease.name!r} is no longer held by {lease.holder}")
        written: set[str] = await insert_new(conn, digests, "id", batch.digests)
        await update_many(
            conn,
            d,
            "id",
            [
                {"id": delivery, "digest_id": digest}
                for digest, carried in batch.carried.items()
                if digest in written
                for delivery in carried
            ],
            where=d.c.status == DeliveryStatus.DIGESTED,
        )
        for chunk in batched(batch.dropped, _MAX_PARAMS):
            await conn.execute(
                d.update()
                .where(d.c.id.in_(chunk), d.c.status == DeliveryStatus.DIGESTED)
                .values(
                    status=target(DeliveryEvent.DIGEST_DROPPED), error_message=TYPE_SWITCHED_OFF
                )
            )
        await update_many(
            conn,
            digest_schedules,
            "user_id",
            [{"user_id": u, "next_at": at} for u, at in batch.next_at.items()],
        )
        await write_counts(conn, run_id, counts)
        if written:
            clock = time.perf_counter()
            jobs = [delivery_message(i, DIGEST_PRIORITY) for i in sorted(written)]
            out.staged.append(await queue.stage(conn, DIGEST_QUEUE, jobs))
            out.staging = time.perf_counter() - clock
    out.written = written
    return out


async def undelivered(db: Database, run_id: str) -> int:
    """The digests of a run still waiting for their first send or being sent (not those
    sent, failed, or waiting for a retry)."""
    query = (
        sa.select(sa.func.count())
        .select_from(digests)
        .where(
            digests.c.run_id == run_id,
            digests.c.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING]),
        )
    )
    async with db.read() as conn:
        return int((await conn.execute(query)).scalar_one())
