"""Digests end to end: N users with M put-aside emails each, digested into a local SMTP
server; users per minute, and where the time goes (query, render, send, record).

Per backend, in this process (as ``routing_bench.py`` does for the router): a fresh
database (PostgreSQL: a new database; embedded: a SQLite file), migrated, seeded straight
into the tables (``--users`` users with digests on, spread over time zones and hours, 10 %
weekly; ``--items`` low-priority notifications each, with their ``email`` delivery row
``digested`` as the router leaves it; the other channels' rows are not written). Then a
``DigestService`` — the real runner, the rate limiter on Redis (real) or in memory
(embedded) — syncs the schedules and carries out one run as of eight days ahead, when
every user is due, handing the digests to ``deliver.digest.low`` (the database queue, on
the benchmark's database), while the digest delivery worker (``--concurrency`` in flight)
sends them through the real SMTP provider (``NOTIFY_SMTP_POOL`` connections). The time is
until every digest is recorded sent; ``run_s`` is the run's own part.

The SMTP server is a child process (``digest_bench.py sink``): a minimal asyncio SMTP
responder (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) that accepts everything and counts
messages by Message-ID; aiosmtpd costs about as much CPU per message as the sender, which
would make this a benchmark of the sink on a 2-core machine (``--sink aiosmtpd`` to see).

With ``--pin`` (default) this process runs on CPU 0 and the sink on CPU 1; PostgreSQL and
Redis are not pinned.

    .venv/bin/python bench/digest_bench.py                          # 100,000 x 20, PostgreSQL
    .venv/bin/python bench/digest_bench.py --users 10000 --backends embedded,real
    .venv/bin/python bench/digest_bench.py --profile                # pyinstrument, to results/
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from common import (
    REDIS_URL,
    RESULTS_DIR,
    _cleanup_namespace,
    background_load,
    cpu_times,
    free_port,
    machine_busy,
    pin,
    postgres_database,
    print_table,
    process_cpu_seconds,
    write_result,
)

ZONES = (
    "UTC",
    "Europe/Paris",
    "America/New_York",
    "America/Los_Angeles",
    "Asia/Tokyo",
    "Asia/Kolkata",
    "Australia/Sydney",
    "America/Sao_Paulo",
)
TYPES = (("comment", "post"), ("mention", None), ("follow", "user"), ("like", "photo"))

# --- the SMTP sink (a child process) ----------------------------------------------------

_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)
_EHLO = b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"


class _Tally:
    def __init__(self) -> None:
        self.ids: dict[bytes, int] = {}
        self.received = 0
        self.first_at = 0.0
        self.last_at = 0.0

    def add(self, message: bytes) -> None:
        now = time.time()
        self.first_at = self.first_at or now
        self.last_at = now
        self.received += 1
        head = message.split(b"\r\n\r\n", 1)[0]
        found = _MESSAGE_ID.search(head)
        key = found.group(1) if found else b""
        self.ids[key] = self.ids.get(key, 0) + 1

    def stats(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "unique": len(self.ids),
            "first_at": self.first_at,
            "last_at": self.last_at,
        }


class _Session(asyncio.Protocol):
    """One SMTP session: commands line by line; in DATA, bytes until CRLF.CRLF."""

    def __init__(self, tally: _Tally) -> None:
        self.tally = tally
        self.buffer = b""
        self.in_data = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"220 sink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if self.in_data:
                end = self.buffer.find(b"\r\n.\r\n")
                if end < 0:
                    return
                self.tally.add(self.buffer[:end])
                self.buffer = self.buffer[end + 5 :]
                self.in_data = False
                self.transport.write(b"250 OK\r\n")
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                return
            line, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
            verb = line[:4].upper()
            if verb == b"EHLO":
                self.transport.write(_EHLO)
            elif verb == b"DATA":
                self.in_data = True
                self.buffer = b"\r\n" + self.buffer  # the message may be empty
                self.transport.write(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                self.transport.write(b"221 bye\r\n")
                self.transport.close()
                return
            else:  # HELO, MAIL, RCPT, RSET, NOOP
                self.transport.write(b"250 OK\r\n")


async def _serve_sink(port: int, control_port: int, kind: str) -> None:
    tally = _Tally()
    if kind == "aiosmtpd":
        from aiosmtpd.controller import Controller

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                tally.add(envelope.original_content or envelope.content)
                return "250 OK"

        Controller(Handler(), hostname="127.0.0.1", port=port).start()
    else:
        loop = asyncio.get_running_loop()
        await loop.create_server(lambda: _Session(tally), "127.0.0.1", port, backlog=1024)

    async def control(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        command = (await reader.readline()).strip()
        if command == b"reset":
            tally.__init__()  # type: ignore[misc]
        writer.write(json.dumps(tally.stats()).encode() + b"\n")
        await writer.drain()
        writer.close()

    await asyncio.start_server(control, "127.0.0.1", control_port)
    print("sink: listening", flush=True)
    await asyncio.Event().wait()


def sink_stats(control_port: int) -> dict[str, Any]:
    with socket.create_connection(("127.0.0.1", control_port), 5) as sock:
        sock.sendall(b"stats\n")
        data = b""
        while not data.endswith(b"\n"):
            data += sock.recv(4096)
    result: dict[str, Any] = json.loads(data)
    return result


@contextlib.contextmanager
def sink(kind: str, cpus: set[int] | None) -> Iterator[tuple[int, int, int]]:
    """The sink in a child process: ``(smtp port, control port, pid)``."""
    port, control = free_port(), free_port()
    argv = [sys.executable, __file__, "sink", "--port", str(port), "--control-port", str(control)]
    proc = subprocess.Popen([*argv, "--sink", kind], stdout=subprocess.PIPE, text=True)
    try:
        pin(proc.pid, cpus)
        assert proc.stdout is not None
        if "listening" not in proc.stdout.readline():
            raise RuntimeError("the SMTP sink did not start")
        yield port, control, proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


# --- seeding ----------------------------------------------------------------------------


def rows(users: int, items: int, seed: int) -> Iterator[tuple[dict[str, Any], list[Any]]]:
    """Per user: its preferences, and its notifications (type, group key, title, age)."""
    rng = random.Random(seed)
    for i in range(users):
        user = f"u{i:07d}"
        prefs = {
            "user_id": user,
            "timezone": rng.choice(ZONES),
            "digest_hour": rng.randrange(24),
            "digest_frequency": "weekly" if rng.random() < 0.1 else "daily",
            "digest_weekday": rng.randint(1, 7),
            "email_address": f"{user}@example.com",
        }
        notes = []
        for j in range(items):
            type_, noun = rng.choice(TYPES)
            key = f"{noun}:{rng.randrange(4)}" if noun else None
            notes.append((type_, key, f"{type_} {j} for {user}", items - j))
        yield prefs, notes


def _line(values: list[Any]) -> str:
    """One line of COPY's text format."""
    out = []
    for v in values:
        if v is None:
            out.append("\\N")
        else:
            out.append(str(v).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n"))
    return "\t".join(out) + "\n"


def seed_postgres(url: str, users: int, items: int) -> None:
    """COPY the rows in (psycopg), then VACUUM ANALYZE."""
    import psycopg

    now = datetime.now(UTC)
    prefs, notes, deliveries = io.StringIO(), io.StringIO(), io.StringIO()
    for p, items_ in rows(users, items, 7):
        prefs.write(_line([str(uuid.uuid4()), *p.values(), now, now, True]))
        for type_, key, title, age in items_:
            nid = str(uuid.uuid4())
            created = now - timedelta(minutes=age)
            notes.write(
                _line(
                    [
                        nid,
                        p["user_id"],
                        type_,
                        title,
                        "Someone did something",
                        "low",
                        key,
                        created,
                        "routed",
                        False,
                    ]
                )
            )
            deliveries.write(_line([str(uuid.uuid4()), nid, "email", "digested", created]))
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    tables = (
        (
            "notification_preferences",
            "id, user_id, timezone, digest_hour, digest_frequency, digest_weekday, "
            "email_address, created_at, updated_at, digest_enabled",
            prefs,
        ),
        (
            "notifications",
            "id, user_id, type, title, message, priority, group_key, created_at, state, inbox",
            notes,
        ),
        ("notification_deliveries", "id, notification_id, channel, status, created_at", deliveries),
    )
    with psycopg.connect(dsn) as conn:
        with conn.cursor() as cur:
            for table, columns, buffer in tables:
                with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    copy.write(buffer.getvalue())
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")


async def seed_sqlite(db: Any, users: int, items: int) -> None:
    from notify_core.db.schema import (
        notification_deliveries,
        notification_preferences,
        notifications,
    )

    now = datetime.now(UTC)
    batch_p: list[dict[str, Any]] = []
    batch_n: list[dict[str, Any]] = []
    batch_d: list[dict[str, Any]] = []

    async def flush() -> None:
        async with db.write() as conn:
            await conn.execute(notification_preferences.insert(), batch_p)
            await conn.execute(notifications.insert(), batch_n)
            await conn.execute(notification_deliveries.insert(), batch_d)
        batch_p.clear(), batch_n.clear(), batch_d.clear()

    for p, items_ in rows(users, items, 7):
        batch_p.append({"id": str(uuid.uuid4()), **p, "digest_enabled": True, "updated_at": now})
        for type_, key, title, age in items_:
            nid = str(uuid.uuid4())
            created = now - timedelta(minutes=age)
            batch_n.append(
                {
                    "id": nid,
                    "user_id": p["user_id"],
                    "type": type_,
                    "title": title,
                    "message": "Someone did something",
                    "priority": "low",
                    "group_key": key,
                    "created_at": created,
                    "state": "routed",
                }
            )
            batch_d.append(
                {
                    "id": str(uuid.uuid4()),
                    "notification_id": nid,
                    "channel": "email",
                    "status": "digested",
                    "created_at": created,
                }
            )
        if len(batch_p) >= 1000:
            await flush()
    if batch_p:
        await flush()


# --- the run ----------------------------------------------------------------------------


async def run_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    from delivery_svc.channels import FailoverEmail
    from delivery_svc.digests import digest_worker
    from delivery_svc.providers.smtp import SmtpProvider
    from digest_svc.config_digest import DigestSettings
    from digest_svc.runner import DigestRunner
    from digest_svc.scheduler import DigestService
    from notify_core.cache.factory import create_cache_backends
    from notify_core.config import Settings
    from notify_core.constants import DIGEST_QUEUE
    from notify_core.db.engine import Database
    from notify_core.db.migrate import upgrade
    from notify_core.queue.database import DatabaseQueue
    from template_svc.templates import Templates

    with contextlib.ExitStack() as stack:
        namespace = f"digestbench{uuid.uuid4().hex[:8]}"
        if backend == "real":
            url = stack.enter_context(postgres_database())
            url = url.replace("postgresql://", "postgresql+psycopg://")
            redis_url: str | None = REDIS_URL
            stack.callback(_cleanup_namespace, namespace)
        else:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="notify-digest-"))
            url, redis_url = f"sqlite:///{tmp}/bench.db", None
        await asyncio.to_thread(upgrade, url)
        db = Database(url, pool_size=4)
        clock = time.perf_counter()
        if backend == "real":
            await asyncio.to_thread(seed_postgres, url, args.users, args.items)
        else:
            await seed_sqlite(db, args.users, args.items)
        seeded = time.perf_counter() - clock
        print(f"{backend}: seeded {args.users:,} users x {args.items} in {seeded:.0f} s")

        port, control, sink_pid = stack.enter_context(sink(args.sink, {1} if args.pin else None))
        if args.pin:
            pin(os.getpid(), {0})
        backends = create_cache_backends(redis_url, namespace)
        provider = SmtpProvider(host="127.0.0.1", port=port, starttls="never", pool_size=args.pool)
        settings = DigestSettings(
            interval=3600.0,
            lease=600.0,
            page=args.page,
            batch=args.batch,
            concurrency=args.concurrency,
        )
        queue = DatabaseQueue(db, namespace, [DIGEST_QUEUE])
        await queue.start()
        email = FailoverEmail(provider)
        worker = digest_worker(Settings(), db, queue, email, args.concurrency)
        runner = DigestRunner(
            db,
            backends,
            namespace,
            queue,
            email_from="Notify <digest@bench.test>",
            settings=settings,
            templates=Templates(db),
            signing_secret="bench-signing-secret-0123456789",
            public_url="https://notify.example.com",
        )
        service = DigestService(db, runner, settings, holder="bench")
        sending = asyncio.create_task(worker.run())
        try:
            assert await service.lease.acquire()
            clock = time.perf_counter()
            from digest_svc import store

            synced = await store.sync_schedules(db)
            sync_seconds = time.perf_counter() - clock
            print(f"{backend}: {synced:,} schedules in {sync_seconds:.1f} s; running")

            busy = background_load()
            before_cpu = (process_cpu_seconds(os.getpid()), process_cpu_seconds(sink_pid))
            before_machine = cpu_times()
            profiler = None
            if args.profile:
                from pyinstrument import Profiler

                profiler = Profiler(async_mode="enabled")
                profiler.start()
            clock = time.perf_counter()
            await service.request(datetime.now(UTC) + timedelta(days=8))
            run = await service.tick()
            run_seconds = time.perf_counter() - clock
            assert run is not None
            while True:  # until the digest worker has recorded every digest
                if not await store.undelivered(db, run.id):
                    break
                await asyncio.sleep(0.05)
            wall = time.perf_counter() - clock
            if profiler is not None:
                profiler.stop()
                out = RESULTS_DIR / f"digest-profile-{backend}.txt"
                out.write_text(profiler.output_text(unicode=False, show_all=False))
                print(f"profile: {out}")
            machine = machine_busy(before_machine)
            cpu = process_cpu_seconds(os.getpid()) - before_cpu[0]
            sink_cpu = process_cpu_seconds(sink_pid) - before_cpu[1]
        finally:
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
            await queue.close()
            await email.close()
            await backends.close()
            await db.close()
        assert run is not None
        received = sink_stats(control)
        c = run.counts
        return {
            "backend": backend,
            "users": args.users,
            "items_per_user": args.items,
            "due": c.due,
            "sent": c.sent,
            "skipped": c.skipped,
            "failed": c.failed,
            "received": received["received"],
            "unique": received["unique"],
            "wall_s": round(wall, 2),
            "run_s": round(run_seconds, 2),
            "users_per_min": round(c.processed / wall * 60),
            "query_s": round(c.timings["query"], 2),
            "render_s": round(c.timings["render"], 2),
            "send_s": round(c.timings["send"], 2),
            "record_s": round(c.timings["record"], 2),
            "sync_s": round(sync_seconds, 2),
            "seed_s": round(seeded, 1),
            "bench_cpu_pct": round(100 * cpu / wall),
            "sink_cpu_pct": round(100 * sink_cpu / wall),
            "busy_before_pct": busy,
            **machine,
            "skipped_by_reason": c.skipped_by_reason,
            "failed_by_reason": c.failed_by_reason,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    sink_cmd = sub.add_parser("sink")
    sink_cmd.add_argument("--port", type=int, required=True)
    sink_cmd.add_argument("--control-port", type=int, required=True)
    sink_cmd.add_argument("--sink", choices=("raw", "aiosmtpd"), default="raw")
    parser.add_argument("--backends", default="real")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--page", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--pool", type=int, default=16, help="SMTP connections")
    parser.add_argument("--sink", choices=("raw", "aiosmtpd"), default="raw")
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--name", default="digest")
    args = parser.parse_args()
    if args.command == "sink":
        asyncio.run(_serve_sink(args.port, args.control_port, args.sink))
        return
    results = [asyncio.run(run_backend(b, args)) for b in args.backends.split(",")]
    print_table(
        results,
        [
            "backend",
            "users",
            "sent",
            "unique",
            "wall_s",
            "run_s",
            "users_per_min",
            "query_s",
            "render_s",
            "send_s",
            "record_s",
            "sync_s",
            "bench_cpu_pct",
            "sink_cpu_pct",
            "machine_busy_pct",
        ],
    )
    params = {k: v for k, v in vars(args).items() if k != "command"}
    path = write_result(args.name, {"params": params, "results": results})
    print(f"results: {path}")


if __name__ == "__main__":
    main()
