"""The digest scheduler's lease, its runs and its metrics, on SQLite and PostgreSQL, with
the digest delivery worker sending through the real SMTP provider to a local aiosmtpd
server: two schedulers racing send each user one digest, a holder that lost the lease
writes nothing, a run left by a dead node is carried on from its counts, due users start a
run on their own."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from delivery_svc.channels import FailoverEmail
from delivery_svc.digests import digest_worker
from delivery_svc.providers.smtp import SmtpProvider
from digest_svc import runs, store
from digest_svc.config_digest import DigestSettings
from digest_svc.metrics import DigestMetrics
from digest_svc.runner import DigestRunner
from digest_svc.scheduler import DigestService
from notify_core.cache.memory import MemoryBackends
from notify_core.config import Settings
from notify_core.constants import DIGEST_LEASE, DIGEST_QUEUE
from notify_core.db.engine import Database
from notify_core.db.lease import Lease, lease_holder
from notify_core.db.migrate import upgrade
from notify_core.db.schema import (
    digest_runs,
    digests,
    leases,
    new_id,
    notification_deliveries,
    notification_preferences,
    notifications,
)
from notify_core.db.shown import shown_deliveries
from notify_core.domain import DeliveryStatus, shown_status
from notify_core.errors import LeaseLost
from notify_core.queue.database import DatabaseQueue
from tests.support.digests import seed, sent_in_digest
from tests.support.ids import uid
from tests.support.smtp import Inbox
from tests.support.waiting import eventually

SETTINGS = DigestSettings(interval=3600.0, lease=30.0, batch=4, concurrency=4)
LATER = timedelta(days=1, hours=1)
"""A run this far ahead finds every daily user due."""


@pytest.fixture(params=["embedded", "real"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    url = (
        f"sqlite:///{tmp_path / 'digest.db'}"
        if request.param == "embedded"
        else request.getfixturevalue("postgres_url")
    )
    await asyncio.to_thread(upgrade, url)
    database = Database(url)
    async with database.write() as conn:  # the session's PostgreSQL database is shared
        await conn.execute(notification_preferences.update().values(digest_enabled=False))
        await conn.execute(leases.delete())
        await conn.execute(digest_runs.update().values(status="succeeded"))
    try:
        yield database
    finally:
        await database.close()


@asynccontextmanager
async def sending(db: Database, port: int) -> AsyncIterator[DatabaseQueue]:
    """A queue on ``db`` and the digest delivery worker consuming it, sending to ``port``."""
    queue = DatabaseQueue(db, uid("digest-test"), [DIGEST_QUEUE])
    await queue.start()
    email = FailoverEmail(SmtpProvider(host="127.0.0.1", port=port, starttls="never"))
    worker = asyncio.create_task(
        digest_worker(Settings(), db, queue, email, SETTINGS.concurrency).run()
    )
    try:
        yield queue
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        await queue.close()
        await email.close()


def service(
    db: Database,
    queue: DatabaseQueue,
    holder: str,
    *,
    clock: Callable[[], datetime] | None = None,
    metrics: DigestMetrics | None = None,
) -> DigestService:
    runner = DigestRunner(
        db,
        MemoryBackends(),
        "digest-test",
        queue,
        email_from="Notify <n@x.test>",
        settings=SETTINGS,
        metrics=metrics,
    )
    extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
    return DigestService(db, runner, SETTINGS, holder=holder, **extra)


def per_user(inbox: Inbox, users: list[str]) -> dict[str, int]:
    return {u: len(inbox.to(f"{u}@example.com")) for u in users}


async def received(inbox: Inbox, users: list[str], total: int) -> dict[str, int]:
    """Each user's digests once ``total`` have arrived (the delivery worker sends them)."""
    return await eventually(lambda: per_user(inbox, users), lambda got: sum(got.values()) >= total)


async def test_one_holder_at_a_time_and_a_lost_lease_is_noticed(db: Database) -> None:
    now = datetime.now(UTC)
    clock_a = [now]
    a = Lease(db, "test-lease", "a", ttl=10.0, clock=lambda: clock_a[0])
    b = Lease(db, "test-lease", "b", ttl=10.0)
    assert await a.acquire()
    assert not await b.acquire()
    assert await a.acquire()  # renewed
    assert (await lease_holder(db, "test-lease"))[0] == "a"  # type: ignore[index]
    # a stalls: its lease runs out, b takes it
    async with db.write() as conn:
        await conn.execute(
            leases.update().where(leases.c.name == "test-lease").values(expires_at=now)
        )
    assert await b.acquire()
    clock_a[0] = now + timedelta(seconds=1)
    async with db.write() as conn:
        assert not await a.renew_in(conn)  # fencing: a finds out when it writes
    assert not a.held()
    await a.release()  # not a's any more: b keeps it
    assert (await lease_holder(db, "test-lease"))[0] == "b"  # type: ignore[index]
    await b.release()
    assert await lease_holder(db, "test-lease") is None


async def test_a_holder_that_lost_the_lease_records_nothing(db: Database) -> None:
    a = Lease(db, DIGEST_LEASE, "a", ttl=30.0)
    assert await a.acquire()
    run = await runs.request_run(db, None, "manual")
    async with db.write() as conn:
        await conn.execute(leases.update().values(holder="b"))
    user = f"lost-{uuid.uuid4().hex[:8]}"
    batch = store.Batch(
        digests=[
            {
                "id": new_id(),
                "user_id": user,
                "period_key": "daily:2026-01-01",
                "status": "sent",
                "run_id": run.id,
                "slot_at": datetime.now(UTC),
            }
        ],
        next_at={user: datetime.now(UTC)},
    )
    queue = DatabaseQueue(db, uid("digest-test"), [DIGEST_QUEUE])
    with pytest.raises(LeaseLost):
        await store.record(db, queue, a, run.id, batch, run.counts)
    async with db.read() as conn:
        found = await conn.execute(sa.select(digests.c.id).where(digests.c.user_id == user))
        assert found.first() is None


async def test_two_schedulers_racing_send_each_user_one_digest(
    db: Database,
    smtp: tuple[Inbox, int],
) -> None:
    inbox, port = smtp
    users = await seed(db, 30)
    later = datetime.now(UTC) + LATER
    async with sending(db, port) as queue:
        a, b = service(db, queue, "node-a"), service(db, queue, "node-b")
        await a.request(later)
        await b.request(later + timedelta(minutes=1))
        done = await asyncio.gather(a.tick(), b.tick(), a.tick(), b.tick())
        assert sum(1 for r in done if r is not None) >= 1
        assert await received(inbox, users, 30) == dict.fromkeys(users, 1)
        await eventually(lambda: _marked(db, users), lambda n: n == 60)
    for r in await runs.list_runs(db, 2):
        assert r.status == "succeeded" and r.holder in ("node-a", "node-b")
    assert {r.holder for r in await runs.list_runs(db, 2)} != {"node-a", "node-b"}
    assert await _marked(db, users) == 60


async def _marked(db: Database, users: list[str]) -> int:
    """The users' put-aside emails that read ``digest_sent``."""
    async with db.read() as conn:
        return int((await conn.execute(sent_in_digest(users))).scalar_one())


async def test_due_users_start_a_run_of_their_own(
    db: Database,
    smtp: tuple[Inbox, int],
) -> None:
    inbox, port = smtp
    users = await seed(db, 3)
    later = datetime.now(UTC) + LATER
    async with sending(db, port) as queue:
        scheduler = service(db, queue, "node-a", clock=lambda: later)
        run = await scheduler.tick()
        assert run is not None and run.trigger == "schedule" and run.as_of == later
        assert run.counts.sent == 3
        assert await received(inbox, users, 3) == dict.fromkeys(users, 1)
        assert await scheduler.tick() is None  # nobody due any more: no run


async def test_a_run_left_by_a_dead_node_carries_on_from_its_counts(
    db: Database,
    smtp: tuple[Inbox, int],
) -> None:
    inbox, port = smtp
    users = await seed(db, 10)
    later = datetime.now(UTC) + LATER
    async with sending(db, port) as queue:
        await _carry_on(db, queue, inbox, users, later)


async def _carry_on(
    db: Database, queue: DatabaseQueue, inbox: Inbox, users: list[str], later: datetime
) -> None:
    first = service(db, queue, "node-a")
    run = await first.request(later)
    # node-a took the run, sent and recorded 4 users, and died holding the lease
    assert await first.lease.acquire()
    await store.sync_schedules(db)
    taken = await runs.take_next(db, "node-a")
    assert taken is not None and taken.id == run.id
    page = await store.due_page(db, later, "", 4)
    counts = taken.counts
    counts.processed, counts.sent, counts.items = 4, 4, 8
    async with db.write() as conn:
        await runs.write_counts(conn, run.id, counts)
        for u in page:
            await conn.execute(
                store.digest_schedules.update()
                .where(store.digest_schedules.c.user_id == u.user_id)
                .values(next_at=later + timedelta(days=1))
            )
        await conn.execute(
            leases.update().values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    second = service(db, queue, "node-b")
    done = await second.tick()
    assert done is not None and done.id == run.id and done.status == "succeeded"
    assert done.attempts == 2 and done.holder == "node-b"
    assert (done.counts.due, done.counts.processed, done.counts.sent) == (10, 10, 10)
    got = await received(inbox, users, 6)
    assert sum(got.values()) == 6
    assert {u.user_id for u in page} == {u for u, n in got.items() if n == 0}


async def test_runs_are_counted_in_metrics(
    db: Database,
    smtp: tuple[Inbox, int],
) -> None:
    _, port = smtp
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    users = await seed(db, 5)
    async with db.write() as conn:  # one of them has no address any more
        await conn.execute(
            notification_preferences.update()
            .where(notification_preferences.c.user_id == users[0])
            .values(email_address=None)
        )
    async with sending(db, port) as queue:
        scheduler = service(db, queue, "node-a", metrics=DigestMetrics(meter))
        await scheduler.request(datetime.now(UTC) + LATER)
        run = await scheduler.tick()
    assert run is not None and run.counts.sent == 4
    data = reader.get_metrics_data()
    assert data is not None
    points: dict[str, list[Any]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points[metric.name] = list(metric.data.data_points)
    assert points["notify.digest.sent"][0].value == 4
    assert points["notify.digest.items"][0].value == 8
    (skipped,) = points["notify.digest.skipped"]
    assert (skipped.value, dict(skipped.attributes)) == (1, {"reason": "no email address"})
    (duration,) = points["notify.digest.run.duration"]
    assert duration.count == 1 and dict(duration.attributes) == {"status": "succeeded"}


async def _state(db: Database, users: list[str]) -> tuple[int, int, dict[str, datetime], int]:
    """The users' digests, their items a digest carries, their next due times, and the
    users processed by every run."""
    d, n = notification_deliveries, notifications
    async with db.read() as conn:
        written = await conn.scalar(sa.select(sa.func.count()).where(digests.c.user_id.in_(users)))
        carried = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(d.join(n, n.c.id == d.c.notification_id))
            .where(n.c.user_id.in_(users), d.c.digest_id.is_not(None))
        )
        schedules = {
            r.user_id: r.next_at
            for r in await conn.execute(
                sa.select(store.digest_schedules).where(store.digest_schedules.c.user_id.in_(users))
            )
        }
        processed = await conn.scalar(sa.select(sa.func.sum(digest_runs.c.processed)))
    return int(written or 0), int(carried or 0), schedules, int(processed or 0)


async def test_a_batch_failing_part_way_writes_nothing(db: Database) -> None:
    """The record of a batch is one transaction: a statement failing after the digests
    were inserted and their items marked (a schedule that cannot be written) leaves no
    digest, no mark, no moved schedule, no count and no job; the same batch written
    whole afterwards records everything."""
    lease = Lease(db, DIGEST_LEASE, "a", ttl=30.0)
    assert await lease.acquire()
    users = await seed(db, 3, items=4)
    await store.sync_schedules(db)
    later = datetime.now(UTC) + LATER
    items = await store.load_items(db, users, later)
    run = await runs.request_run(db, later, "manual")
    batch = store.Batch()
    for user in users:
        ident = new_id()
        batch.digests.append(
            {
                "id": ident,
                "user_id": user,
                "period_key": "daily:2026-01-01",
                "status": "pending",
                "run_id": run.id,
                "items": len(items[user]),
                "message": {},
                "slot_at": later,
                "created_at": datetime.now(UTC),
            }
        )
        batch.carried[ident] = [i.delivery_id for i in items[user]]
        batch.next_at[user] = later + timedelta(days=1)
    counts = runs.Counts(processed=3, sent=3, items=12)
    queue = DatabaseQueue(db, uid("digest-test"), [DIGEST_QUEUE])
    await queue.start()
    try:
        before = await _state(db, users)
        assert before[:2] == (0, 0) and len(before[2]) == 3
        broken = store.Batch(
            batch.digests,
            batch.carried,
            [],
            {**batch.next_at, users[-1]: None},  # type: ignore[dict-item]
        )
        with pytest.raises(sa.exc.IntegrityError):
            await store.record(db, queue, lease, run.id, broken, counts)
        assert await _state(db, users) == before
        assert await queue.depth(DIGEST_QUEUE) == 0

        done = await store.record(db, queue, lease, run.id, batch, counts)
        queue.flush(done.staged)
        written, carried, schedules, processed = await _state(db, users)
        assert (written, carried, processed - before[3]) == (3, 12, 3)
        assert schedules == batch.next_at
        assert await queue.depth(DIGEST_QUEUE) == 3
    finally:
        await queue.purge(DIGEST_QUEUE)
        await queue.close()
        await lease.release()


DIGEST_STATES = [None, "pending", "sending", "retrying", "sent", "failed"]


async def test_the_shown_status_in_sql_is_the_pure_function(db: Database) -> None:
    """``shown_status_sql`` answers what ``shown_status`` answers, for every delivery
    status carried by no digest or by one in each of its statuses."""
    user = f"shown-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    nid, expected = new_id(), {}
    notes = [
        {
            "id": nid,
            "user_id": user,
            "type": "t",
            "title": "t",
            "message": "m",
            "priority": "low",
            "created_at": now,
        }
    ]
    carriers, rows = [], []
    for k, digest in enumerate(DIGEST_STATES):
        ident = None if digest is None else new_id()
        if ident is not None:
            carriers.append(
                {
                    "id": ident,
                    "user_id": user,
                    "period_key": f"daily:{k}",
                    "status": digest,
                    "run_id": "r",
                    "slot_at": now,
                    "sent_at": now if digest == "sent" else None,
                }
            )
        for status in DeliveryStatus:
            row = new_id()
            rows.append(
                {
                    "id": row,
                    "notification_id": nid,
                    "channel": "email",
                    "status": status.value,
                    "digest_id": ident,
                    "created_at": now,
                }
            )
            sent_at = now if digest == "sent" else None
            expected[row] = (shown_status(status, digest), sent_at)
    async with db.write() as conn:
        await conn.execute(notifications.insert(), notes)
        await conn.execute(digests.insert(), carriers)
        await conn.execute(notification_deliveries.insert(), rows)
    async with db.read() as conn:
        found = await conn.execute(
            shown_deliveries().where(notification_deliveries.c.notification_id == nid)
        )
        got = {r.id: (r.status, r.sent_at) for r in found}
    assert got == expected
    # stored so (one per carrier state), and derived (digested, carried by a sent digest)
    assert sum(1 for s, _ in got.values() if s == "digest_sent") == len(DIGEST_STATES) + 1
