"""Routing: decisions per second with a warm preference cache, and the cache hit rate.

Per backend, in this process (no server, no queue consumer: the router's own ``route``
is called the way its consumer calls it, ``--batch`` notifications at a time):

- **embedded**: a fresh SQLite file, in-memory cache, presence and rate limiter;
- **real**: a fresh PostgreSQL database, Redis (a unique namespace, deleted at the end).

``--users`` users exist, half of them with stored preferences (email, a webhook URL,
per-type overrides, quiet hours for some). ``--notifications`` accepted notifications are
inserted straight into the database (types and group keys vary, so some merge), then
routed: pass 1 starts with a cold cache, pass 2 routes as many new ones for the same users
with the cache warm. Each notification is decided on all six channels; ``rows_per_n`` is
how many ``notification_deliveries`` rows that wrote per notification (a row per channel
the plan considered; older versions wrote six).

Then the default send, in rows per notification: ``--default-sends`` normal-priority
notifications without channels or group key to users with only an email address, routed
once with the users offline and once with each user connected (presence recorded).

For "is routing the bottleneck", the same run measures ingest — ``Ingest.send`` from 64
concurrent callers, group commit, routing jobs in the same transaction (embedded) or
confirmed to nowhere (real: the queue is the database queue here too, to keep RabbitMQ out
of a routing measurement) — on the same database, in the same process.

``--profile`` writes a pyinstrument profile of the warm pass to
``bench/results/routing-profile-<backend>.txt``.

    .venv/bin/python bench/routing_bench.py --users 2000 --notifications 20000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from common import (
    BACKENDS,
    REDIS_URL,
    RESULTS_DIR,
    _cleanup_namespace,
    background_load,
    postgres_database,
    print_table,
    write_result,
)
from notify.v1 import ingest_pb2

from ingest_svc.core import Ingest
from notify_core.cache.base import CacheBackends
from notify_core.cache.factory import create_cache_backends
from notify_core.constants import QUEUES
from notify_core.db.engine import Database
from notify_core.db.migrate import upgrade
from notify_core.db.schema import notification_deliveries, notification_preferences, notifications
from notify_core.queue.database import DatabaseQueue
from preference_svc.store import PreferenceStore
from router_svc.inputs import Routing
from router_svc.worker import Router

TYPES = ("comment", "like", "follow", "mention", "order")


def preference_rows(users: list[str]) -> list[dict[str, Any]]:
    rows = []
    for i, user in enumerate(users[::2]):
        row: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "user_id": user,
            "email_address": f"{user}@example.com",
            "webhook_url": "https://hooks.example.com/x" if i % 3 == 0 else None,
            "preferences": {"like": {"email": False}},
            "timezone": "Europe/Paris",
            "quiet_hours_start": datetime(2000, 1, 1, 22).time() if i % 4 == 0 else None,
            "quiet_hours_end": datetime(2000, 1, 1, 7).time() if i % 4 == 0 else None,
        }
        rows.append(row)
    return rows


def notification_rows(users: list[str], count: int, rng: random.Random) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        {
            "id": str(uuid.uuid4()),
            "user_id": rng.choice(users),
            "type": rng.choice(TYPES),
            "title": "Bench",
            "message": "Someone did something",
            "data": {"actor": "Alice", "n": i},
            "priority": rng.choices(("high", "normal", "low"), (1, 8, 1))[0],
            "group_key": f"g{rng.randrange(count // 4 or 1)}",  # as ingest stores it
            "created_at": now + timedelta(microseconds=i),
            "state": "accepted",
        }
        for i in range(count)
    ]


async def insert(db: Database, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 1000):
        async with db.write() as conn:
            await conn.execute(table.insert(), rows[start : start + 1000])


async def route_all(router: Router, ids: list[str], batch: int) -> tuple[float, float]:
    """Route ``ids`` ``batch`` at a time: the wall-clock and this process's CPU seconds
    (all its threads: SQLite's included; not the PostgreSQL or Redis servers')."""
    started, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(ids), batch):
        await router.route(ids[start : start + batch])
    return time.perf_counter() - started, time.process_time() - cpu


async def rows_per_notification(db: Database, ids: list[str]) -> float:
    """``notification_deliveries`` rows per notification among ``ids``."""
    d = notification_deliveries.c
    total = 0
    async with db.read() as conn:
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            found = await conn.scalar(
                sa.select(sa.func.count()).where(d.notification_id.in_(chunk))
            )
            total += int(found or 0)
    return total / max(1, len(ids))


async def default_send_rows(
    db: Database, router: Router, backends: CacheBackends, count: int, batch: int
) -> dict[str, float]:
    """Rows per notification of the default send (normal priority, no channels, no group
    key) to users with only an email address: offline, then connected."""
    out: dict[str, float] = {}
    for label in ("offline", "online"):
        users = [f"d{label}{i:06d}" for i in range(count)]
        await insert(
            db,
            notification_preferences,
            [
                {"id": str(uuid.uuid4()), "user_id": u, "email_address": f"{u}@example.com"}
                for u in users
            ],
        )
        if label == "online":
            for u in users:
                await backends.presence.connect(u, f"c-{u}", ttl=600.0)
        now = datetime.now(UTC)
        rows = [
            {
                "id": str(uuid.uuid4()),
                "user_id": u,
                "type": "comment",
                "title": "Bench",
                "message": "Someone commented",
                "priority": "normal",
                "created_at": now + timedelta(microseconds=i),
                "state": "accepted",
            }
            for i, u in enumerate(users)
        ]
        await insert(db, notifications, rows)
        ids = [r["id"] for r in rows]
        await route_all(router, ids, batch)
        out[f"default_{label}_rows_per_n"] = round(await rows_per_notification(db, ids), 2)
    return out


async def ingest_rate(db: Database, queue: DatabaseQueue, users: list[str], count: int) -> float:
    ingest = Ingest(db, queue)
    await ingest.start()
    sent = 0

    async def worker() -> None:
        nonlocal sent
        while sent < count:
            sent += 1
            request = ingest_pb2.SendRequest(
                user_id=random.choice(users), type="comment", title="t", message="m"
            )
            await ingest.send([request])

    started = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(64)])
    elapsed = time.perf_counter() - started
    await ingest.close()
    return sent / elapsed


async def run_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    async with contextlib.AsyncExitStack() as stack:
        if backend == "embedded":
            tmp = stack.enter_context(
                __import__("tempfile").TemporaryDirectory(prefix="notify-route-")
            )
            url, redis_url, namespace = f"sqlite:///{tmp}/bench.db", None, "bench"
        else:
            url = stack.enter_context(postgres_database()).replace(
                "postgresql://", "postgresql+psycopg://"
            )
            redis_url, namespace = REDIS_URL, f"bench-{uuid.uuid4().hex[:8]}"
            stack.callback(_cleanup_namespace, namespace)
        await asyncio.to_thread(upgrade, url)
        db = Database(url)
        stack.push_async_callback(db.close)
        backends = create_cache_backends(redis_url, namespace)
        stack.push_async_callback(backends.close)
        store = PreferenceStore(db, backends.cache, namespace)
        queue = DatabaseQueue(db, namespace, list(QUEUES))
        router = Router(db, queue, backends, store, namespace, Routing())
        rng = random.Random(7)
        users = [f"u{i:06d}" for i in range(args.users)]
        await insert(db, notification_preferences, preference_rows(users))

        out: dict[str, Any] = {"backend": backend}
        for label in ("cold", "warm"):
            rows = notification_rows(users, args.notifications, rng)
            await insert(db, notifications, rows)
            hits, misses = store.hits, store.misses
            ids = [r["id"] for r in rows]
            if label == "warm" and args.profile:
                from pyinstrument import Profiler

                profiler = Profiler(async_mode="enabled")
                profiler.start()
                elapsed, cpu = await route_all(router, ids, args.batch)
                profiler.stop()
                path = RESULTS_DIR / f"routing-profile-{backend}.txt"
                path.write_text(profiler.output_text(unicode=True, show_all=False))
                out["profile"] = str(path)
            else:
                elapsed, cpu = await route_all(router, ids, args.batch)
            looked = (store.hits - hits) + (store.misses - misses)
            out[f"{label}_per_s"] = round(len(ids) / elapsed)
            out[f"{label}_decisions_per_s"] = round(6 * len(ids) / elapsed)
            out[f"{label}_cpu_us_per_n"] = round(1e6 * cpu / len(ids))
            out[f"{label}_hit_rate_pct"] = round(100 * (store.hits - hits) / max(1, looked), 1)
            out[f"{label}_rows_per_n"] = round(await rows_per_notification(db, ids), 2)
        async with db.read() as conn:
            states = dict(
                (
                    await conn.execute(
                        sa.select(notifications.c.state, sa.func.count()).group_by(
                            notifications.c.state
                        )
                    )
                ).all()
            )
        out["routed"] = states.get("routed", 0)
        out["merged"] = states.get("merged", 0)
        out.update(await default_send_rows(db, router, backends, args.default_sends, args.batch))
        out["ingest_per_s"] = round(await ingest_rate(db, queue, users, args.notifications))
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--notifications", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--default-sends", type=int, default=1_000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--name", default="routing")
    args = parser.parse_args()
    RESULTS_DIR.mkdir(exist_ok=True)
    busy = background_load()
    rows = [asyncio.run(run_backend(b, args)) for b in args.backends.split(",")]
    print_table(
        rows,
        [
            "backend",
            "cold_per_s",
            "warm_per_s",
            "warm_decisions_per_s",
            "cold_hit_rate_pct",
            "warm_hit_rate_pct",
            "warm_cpu_us_per_n",
            "warm_rows_per_n",
            "default_offline_rows_per_n",
            "default_online_rows_per_n",
            "routed",
            "merged",
            "ingest_per_s",
        ],
    )
    write_result(args.name, {"params": vars(args), "machine_busy_before_pct": busy, "rows": rows})


if __name__ == "__main__":
    main()
