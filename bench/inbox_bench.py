"""Inbox reads: ``GET /notifications`` and the unread count, 8 concurrent readers.

For each backend a fresh ``notify up`` (``common.notify_server``) gets ``--users`` users
with ``--per-user`` inbox entries each (a third of them read), written straight into its
database; then ``--readers`` keep-alive HTTP/1.1 connections, each one request at a time,
read for ``--duration`` seconds (after ``--warmup`` seconds not counted) each of:

- ``first``: ``GET /notifications`` (the first page, 20 per page: what a client opens);
- ``count``: ``GET /notifications/unread-count``;
- ``page2``: ``GET /notifications?page=2``.

The users are taken in turn, each with its own (long-lived) token. Then the same is read
from ``bare_inbox_server.py`` on the same database: a bare Starlette + uvicorn endpoint
(token check, one statement, ``json.dumps``) as the baseline, in the same run. The server
is pinned to CPU 0 and the load generator (its own process, a minimal HTTP client, so that
the client is not what is measured) to CPU 1 unless ``--no-pin``.

    .venv/bin/python bench/inbox_bench.py                      # both backends, 10 s per mode
    .venv/bin/python bench/inbox_bench.py --backends embedded --duration 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from common import (
    BACKENDS,
    BENCH_DIR,
    JWT_SECRET,
    RESULTS_DIR,
    ServerProcess,
    background_load,
    cpu_count,
    exit_on_sigterm,
    free_port,
    notify_server,
    pin,
    print_table,
    process_cpu_seconds,
    summarize_ms,
    write_result,
)

from notify_core.auth import issue_user_token
from notify_core.db.engine import sync_url
from notify_core.db.schema import notifications

MODES = {
    "first": "/notifications",
    "count": "/notifications/unread-count",
    "page2": "/notifications?page=2",
}


def seed(database_url: str, users: int, per_user: int) -> list[str]:
    """``users`` users with ``per_user`` routed inbox entries each; answers the user ids."""
    ids = [f"reader-{i:05d}" for i in range(users)]
    start = datetime.now(UTC) - timedelta(days=1)
    rows = [
        {
            "id": str(uuid.uuid4()),
            "user_id": user,
            "type": random.choice(["comment", "like", "follow"]),
            "title": f"Notification {k} of {user}",
            "message": "Someone did something on a thing of yours; have a look " * 2,
            "data": {"post": k, "actor": "someone"},
            "priority": "normal",
            "read": k % 3 == 0,
            "clicked": False,
            "created_at": start + timedelta(seconds=k, microseconds=i),
            "routed_at": start + timedelta(seconds=k, microseconds=i),
            "state": "routed",
            "inbox": True,
            "count": 1,
        }
        for i, user in enumerate(ids)
        for k in range(per_user)
    ]
    engine = sa.create_engine(
        sync_url(database_url.replace("postgresql://", "postgresql+psycopg://"))
    )
    with engine.begin() as conn:
        for at in range(0, len(rows), 1000):
            conn.execute(notifications.insert(), rows[at : at + 1000])
    engine.dispose()
    return ids


# --- the load generator (a child process) ------------------------------------------------


async def _reader(
    port: int,
    requests: list[bytes],
    turn: Iterator[int],
    stop_at: float,
    count_from: float,
    out: dict[str, Any],
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while (now := time.perf_counter()) < stop_at:
            writer.write(requests[next(turn) % len(requests)])
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            done = time.perf_counter()
            if now >= count_from:
                if head[9:12] != b"200":
                    out["errors"] += 1
                out["latencies"].append(done - now)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _load(
    port: int, path: str, tokens: list[str], readers: int, warmup: float, duration: float
) -> dict[str, Any]:
    requests = [
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {t}\r\n\r\n".encode()
        for t in tokens
    ]
    out: dict[str, Any] = {"latencies": [], "errors": 0}
    turn = iter(range(10**12))
    begin = time.perf_counter()
    count_from, stop_at = begin + warmup, begin + warmup + duration
    await asyncio.gather(
        *(_reader(port, requests, turn, stop_at, count_from, out) for _ in range(readers))
    )
    return out


def load_process(
    cpus: set[int] | None,
    port: int,
    path: str,
    tokens: list[str],
    readers: int,
    warmup: float,
    duration: float,
) -> dict[str, Any]:
    pin(0, cpus)
    cpu0 = time.process_time()
    out = asyncio.run(_load(port, path, tokens, readers, warmup, duration))
    out["client_cpu_s"] = time.process_time() - cpu0
    return out


# --- phases ----------------------------------------------------------------------------


def measure(
    label: str, server: ServerProcess, backend: str, tokens: list[str], args: argparse.Namespace
) -> list[dict[str, Any]]:
    cpus = {1} if args.pin and cpu_count() > 1 else None
    rows = []
    ctx = mp.get_context("spawn")
    for mode in args.modes.split(","):
        with ctx.Pool(1) as pool:
            cpu0 = process_cpu_seconds(server.pid)
            out = pool.apply(
                load_process,
                (
                    cpus,
                    server.http_port,
                    MODES[mode],
                    tokens,
                    args.readers,
                    args.warmup,
                    args.duration,
                ),
            )
            server_cpu = process_cpu_seconds(server.pid) - cpu0
        lat = out["latencies"]
        row = {
            "backend": backend,
            "server": label,
            "mode": mode,
            "requests": len(lat),
            "req_per_s": round(len(lat) / args.duration, 1),
            "errors": out["errors"],
            **summarize_ms(lat),
            # server CPU over warm-up and run, per request counted (warm-up ones included in
            # the CPU but not the count: an upper bound, steadier than req/s on a busy machine)
            "server_cpu_ms_per_req": round(1000 * server_cpu / max(1, len(lat)), 3),
            "client_cpu_s": round(out["client_cpu_s"], 2),
        }
        print_table([row], list(row))
        rows.append(row)
    return rows


@contextlib.contextmanager
def bare_server(database_url: str, cpus: set[int] | None) -> Iterator[ServerProcess]:
    port = free_port()
    log = RESULTS_DIR / "server-bare-inbox.log"
    log.write_text("")
    argv = [
        sys.executable,
        str(BENCH_DIR / "bare_inbox_server.py"),
        "--database-url",
        database_url,
        "--port",
        str(port),
        "--jwt-secret",
        JWT_SECRET,
    ]
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=BENCH_DIR)
    pin(proc.pid, cpus)
    server = ServerProcess("bare-inbox", proc, 0, port, log)
    try:
        server.wait_ready("bare-inbox: listening", 30)
        yield server
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Notify inbox reads vs a bare Starlette inbox")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--servers", default="notify,bare")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--per-user", type=int, default=30)
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--name", default="inbox")
    args = parser.parse_args()
    exit_on_sigterm()
    busy = background_load()
    server_cpus = {0} if args.pin and cpu_count() > 1 else None
    results: list[dict[str, Any]] = []
    for backend in args.backends.split(","):
        with notify_server(backend, server_cpus) as notify:
            users = seed(notify.database_url, args.users, args.per_user)
            tokens = [issue_user_token(JWT_SECRET, u, ttl=24 * 3600) for u in users]
            servers = args.servers.split(",")
            if "notify" in servers:
                results += measure("notify", notify, backend, tokens, args)
            if "bare" in servers:
                with bare_server(notify.database_url, server_cpus) as bare:
                    results += measure("bare", bare, backend, tokens, args)
    print()
    print_table(results, list(results[0]))
    path = write_result(
        args.name,
        {"params": vars(args), "machine_busy_before_pct": busy, "results": results},
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
