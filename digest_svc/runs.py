"""Digest runs in the database (table ``digest_runs``): requested, taken, counted, finished.

A run is requested (``queued``: by the scheduler when users are due, by ``RunDigest`` or
``notify digest run``), taken by the node holding the scheduler lease (``running``), and
ends ``succeeded`` or ``failed``. Its counts are written in the same transaction as the
digests they count, so after a crash they are exactly what was recorded; a run left
``running`` by a holder that died is queued again by the next holder and carries on from
those counts (``attempts`` says how often it was taken).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from notify_core.constants import DIGEST_MAX_AHEAD_DAYS, DIGEST_RUNS_MAX_LIMIT
from notify_core.db.engine import Database
from notify_core.db.schema import digest_runs as t
from notify_core.db.schema import new_id, utcnow
from notify_core.domain import DigestRunStatus
from notify_core.errors import InvalidArgument, NotFound

PHASES = ("query", "render", "send", "record")
"""Where a run's time goes: reading users and items, rendering, handing the digests to
the delivery queue (staging and flushing their jobs), recording."""


@dataclass
class Counts:
    """What a run has done so far (mutable while it goes; written with each batch).

    ``sent``: digests the run handed to delivery (written ``pending`` and queued); their
    own outcome is their ``digests`` row's status. ``failed`` stays for the record of
    older runs: a run no longer sends, so it fails none."""

    due: int = 0
    processed: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    items: int = 0
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    failed_by_reason: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped += n
        self.skipped_by_reason[reason] = self.skipped_by_reason.get(reason, 0) + n

    def fail(self, reason: str, n: int = 1) -> None:
        self.failed += n
        self.failed_by_reason[reason] = self.failed_by_reason.get(reason, 0) + n

    def values(self) -> dict[str, Any]:
        return {
            "due": self.due,
            "processed": self.processed,
            "sent": self.sent,
            "failed": self.failed,
            "skipped": self.skipped,
            "items": self.items,
            "skipped_by_reason": dict(self.skipped_by_reason),
            "failed_by_reason": dict(self.failed_by_reason),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


@dataclass(frozen=True, slots=True)
class Run:
    id: str
    trigger: str
    status: str
    as_of: datetime
    holder: str | None
    attempts: int
    counts: Counts
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def duration(self) -> float | None:
        """Seconds from the first start to the end (or until now, while it runs)."""
        if self.started_at is None:
            return None
        return ((self.finished_at or utcnow()) - self.started_at).total_seconds()

    @property
    def done(self) -> bool:
        return self.status in (DigestRunStatus.SUCCEEDED, DigestRunStatus.FAILED)


def _run(row: Any) -> Run:
    timings = dict.fromkeys(PHASES, 0.0) | dict(row.timings or {})
    return Run(
        id=row.id,
        trigger=row.trigger,
        status=row.status,
        as_of=row.as_of,
        holder=row.holder,
        attempts=row.attempts,
        counts=Counts(
            due=row.due,
            processed=row.processed,
            sent=row.sent,
            failed=row.failed,
            skipped=row.skipped,
            items=row.items,
            skipped_by_reason=dict(row.skipped_by_reason or {}),
            failed_by_reason=dict(row.failed_by_reason or {}),
            timings=timings,
        ),
        error=row.error,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def check_as_of(as_of: datetime, now: datetime) -> None:
    """A run's clock may be in the past (what was due then is due still), but at most
    ``DIGEST_MAX_AHEAD_DAYS`` ahead: a run far ahead would move every user's next digest
    that far."""
    if as_of.tzinfo is None:
        raise InvalidArgument("as_of", "must carry a time zone")
    if as_of > now + timedelta(days=DIGEST_MAX_AHEAD_DAYS):
        raise InvalidArgument(
            "as_of", f"must be at most {DIGEST_MAX_AHEAD_DAYS} days ahead, got {as_of.isoformat()}"
        )


async def request_run(db: Database, as_of: datetime | None, trigger: str) -> Run:
    """Queue a run "as of" ``as_of`` (None: now; see :func:`check_as_of`)."""
    now = utcnow()
    if as_of is not None:
        check_as_of(as_of, now)
    async with db.write() as conn:
        row = (
            await conn.execute(
                t.insert()
                .values(
                    id=new_id(),
                    trigger=trigger,
                    status=DigestRunStatus.QUEUED,
                    as_of=as_of or now,
                    created_at=now,
                    skipped_by_reason={},
                    failed_by_reason={},
                    timings={},
                )
                .returning(*t.c)
            )
        ).one()
    return _run(row)


async def get_run(db: Database, run_id: str) -> Run:
    if not run_id:
        raise InvalidArgument("id", "is required")
    async with db.read() as conn:
        row = (await conn.execute(sa.select(t).where(t.c.id == run_id))).first()
    if row is None:
        raise NotFound(f"digest run {run_id} not found")
    return _run(row)


async def list_runs(db: Database, limit: int) -> list[Run]:
    """The latest runs, newest first."""
    if not 1 <= limit <= DIGEST_RUNS_MAX_LIMIT:
        raise InvalidArgument("limit", f"must be 1 to {DIGEST_RUNS_MAX_LIMIT}, got {limit}")
    query = sa.select(t).order_by(t.c.created_at.desc(), t.c.id).limit(limit)
    async with db.read() as conn:
        return [_run(r) for r in await conn.execute(query)]


async def requeue_running(db: Database) -> int:
    """Queue again the runs left ``running``: called by the lease holder when it carries
    out none, so their node died, or stopped, or lost the lease. Answers how many."""
    async with db.write() as conn:
        result = await conn.execute(
            t.update()
            .where(t.c.status == DigestRunStatus.RUNNING)
            .values(status=DigestRunStatus.QUEUED)
        )
    return int(result.rowcount or 0)


async def take_next(db: Database, holder: str) -> Run | None:
    """The oldest queued run, now ``running`` for ``holder`` (the lease holder: nobody
    else takes runs, so no lock is needed beyond its transaction)."""
    now = utcnow()
    async with db.write() as conn:
        row = (
            await conn.execute(
                sa.select(t.c.id)
                .where(t.c.status == DigestRunStatus.QUEUED)
                .order_by(t.c.created_at, t.c.id)
                .limit(1)
            )
        ).first()
        if row is None:
            return None
        taken = (
            await conn.execute(
                t.update()
                .where(t.c.id == row.id, t.c.status == DigestRunStatus.QUEUED)
                .values(
                    status=DigestRunStatus.RUNNING,
                    holder=holder,
                    attempts=t.c.attempts + 1,
                    started_at=sa.func.coalesce(t.c.started_at, now),
                )
                .returning(*t.c)
            )
        ).first()
    return None if taken is None else _run(taken)


async def has_queued(db: Database) -> bool:
    async with db.read() as conn:
        found = await conn.execute(
            sa.select(t.c.id).where(t.c.status == DigestRunStatus.QUEUED).limit(1)
        )
        return found.first() is not None


async def write_counts(conn: AsyncConnection, run_id: str, counts: Counts) -> None:
    """The run's counts, in the caller's transaction (the one recording what they count)."""
    await conn.execute(t.update().where(t.c.id == run_id).values(**counts.values()))


async def finish(
    db: Database, run_id: str, status: str, counts: Counts, error: str | None = None
) -> Run:
    async with db.write() as conn:
        row = (
            await conn.execute(
                t.update()
                .where(t.c.id == run_id)
                .values(status=status, error=error, finished_at=utcnow(), **counts.values())
                .returning(*t.c)
            )
        ).one()
    return _run(row)


async def release(db: Database, run_id: str, error: str | None, *, queue: bool = True) -> None:
    """A run this node stops carrying out: queued again (the node shuts down), or left
    running with the error (it failed; the scheduler's next look queues it again). Its
    counts stay as recorded."""
    values: dict[str, Any] = {"error": error}
    if queue:
        values["status"] = DigestRunStatus.QUEUED
    async with db.write() as conn:
        await conn.execute(
            t.update()
            .where(t.c.id == run_id, t.c.status == DigestRunStatus.RUNNING)
            .values(**values)
        )
