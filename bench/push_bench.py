"""Push throughput: FCM pushes per second through the whole pipeline, against a bare sender.

Per backend, ``notify up`` runs as its own process with FCM pointed at the test suite's FCM
server (``bench/sinks.py fcm``: the OAuth token endpoint and ``messages:send`` over TLS
with HTTP/2, checked as in the tests), in a process of its own. ``--users`` users each have
one active FCM device, written straight into ``device_tokens`` in one statement (as
``delivery_bench.py`` writes preferences; registering them through the API is not what is
measured). This process sends one high-priority notification to each with
``IngestService.SendBatch`` (``--batch`` per call, ``--concurrency`` calls in flight):
send → ingest → router (offline, no email, phone or web push: the inbox and one push) →
push worker → FCM server. ``per_s``: from the first send until the server accepted a send
for every user (counted by registration token, hence ``dup`` and ``missing``);
``accept_per_s``: until the last accepted call.

The baseline, in the same run against the same server, in its own process on the node's
core: one ``httpx.AsyncClient(http2=True)`` (the FCM provider's limits), an access token
from the same token endpoint, and as many workers as the node's high-priority push
concurrency, each posting one message after another: the same messages (the JSON of
``delivery_svc.providers.fcm.message_body``, built per send) to the same tokens.

``--warmup`` other users are pushed to first (the baseline posts as many), so the access
token, the connection and the caches are in place; then the server's counts are reset.
Rate limits are lifted, dedup is off; ``--push-concurrency`` sets
``NOTIFY_PUSH_CONCURRENCY``. ``--profile`` samples the node with ``py-spy`` (as
``delivery_bench.py``; areas: :data:`AREAS`), the raw stacks going to
``bench/results/<name>-profile-<backend>.txt``. ``--pin`` (default): node and baseline on
CPU 0, this process and the FCM server on CPU 1; PostgreSQL, Redis, RabbitMQ unpinned.

    .venv/bin/python bench/push_bench.py                       # 20,000 users, both backends
    .venv/bin/python bench/push_bench.py --users 2000 --backends embedded --profile
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

from common import (
    API_KEY,
    BACKENDS,
    BENCH_DIR,
    RESULTS_DIR,
    ServerProcess,
    _spawn,
    background_load,
    cpu_count,
    exit_on_sigterm,
    free_port,
    notify_server,
    pin,
    print_table,
    write_result,
)
from delivery_bench import (
    COLUMNS,
    LIFTED,
    MESSAGE,
    TITLE,
    Profiler,
    Sink,
    _get,
    _print_profile,
    _row,
    _Samples,
    send_many,
    summarize_profile,
    wait_received,
)

TARGET_PER_S = 5_000
"""The original design's figure."""
TOKEN_PAD = "APA91b" + "x" * 140
"""Registration tokens as long as FCM's (about 160 characters)."""

_PACKAGES = ("notify_core/", "ingest_svc/", "router_svc/", "delivery_svc/", "preference_svc/")
AREAS = (
    ("FCM client (httpx, httpcore, h2, TLS)", ("(httpx/", "(httpcore/", "(h2/", "(hpack/")),
    ("push channel: devices, push_sends, device use", ("(delivery_svc/push.py",)),
    ("router", ("(router_svc/",)),
    ("ingest", ("(ingest_svc/",)),
    ("delivery worker: claim, record, ack", ("(delivery_svc/",)),
    ("SQLAlchemy, database drivers", ("(sqlalchemy/", "(aiosqlite/", "(psycopg")),
    ("queue, cache (pika, redis)", ("(notify_core/queue/", "(pika/", "(redis/")),
    ("gRPC", ("(grpc", "(notify/v1/")),
    ("other Notify code", tuple(f"({p}" for p in _PACKAGES)),
)
"""Where a sample goes: the first area with a frame anywhere on its stack."""


def token(i: int) -> str:
    return f"bench-{i:06d}:{TOKEN_PAD}"


# -- the FCM server ---------------------------------------------------------------------


@dataclass(frozen=True)
class Fcm:
    sink: Sink
    env: dict[str, str]
    """``NOTIFY_FCM_CREDENTIALS``, ``NOTIFY_FCM_ENDPOINT``, ``SSL_CERT_FILE``."""


@contextlib.contextmanager
def fcm_server(cpus: set[int] | None, timeout: float = 30.0) -> Iterator[Fcm]:
    """``bench/sinks.py fcm`` in a child process, with its key, CA and ``fcm.env`` in a
    temporary directory."""
    port, control = free_port(), free_port()
    log = RESULTS_DIR / "sink-fcm.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    with tempfile.TemporaryDirectory(prefix="notify-bench-fcm-") as tmp:
        argv = [sys.executable, str(BENCH_DIR / "sinks.py"), "fcm", "--port", str(port)]
        argv += ["--control-port", str(control), "--dir", tmp]
        proc = _spawn(argv, dict(os.environ), log, cpus, cwd=BENCH_DIR)
        server = ServerProcess("fcm-sink", proc, control, port, log)
        try:
            server.wait_ready("fcm-sink: listening", timeout)
            lines = Path(tmp, "fcm.env").read_text().splitlines()
            env = dict(line.split("=", 1) for line in lines if "=" in line)
            yield Fcm(Sink("fcm", proc, port, control, log), env)
        finally:
            server.stop()


# -- the pipeline -----------------------------------------------------------------------


def add_devices(database_url: str, users: Sequence[str], first_token: int) -> None:
    """One active FCM device per user, written into the node's database in one statement."""
    import sqlalchemy as sa

    from notify_core.db.schema import device_tokens

    now = datetime.now(UTC)
    rows = [
        {
            "id": str(uuid.uuid4()),
            "user_id": user,
            "platform": "fcm",
            "token": token(first_token + i),
            "device_name": "bench phone",
            "active": True,
            "created_at": now,
            "last_used_at": now,
        }
        for i, user in enumerate(users)
    ]
    url = database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(device_tokens.insert(), rows)
    finally:
        engine.dispose()


@contextlib.asynccontextmanager
async def producer(server: ServerProcess, users: Sequence[str]) -> Any:
    """A ``send(numbers)`` sending one high-priority notification to each ``users[n]`` in
    one ``SendBatch``."""
    import grpc
    from notify.v1 import common_pb2, ingest_pb2, ingest_pb2_grpc

    channels = [grpc.aio.insecure_channel(server.grpc_target) for _ in range(2)]
    stubs = [ingest_pb2_grpc.IngestServiceStub(c) for c in channels]
    md = (("authorization", f"Bearer {API_KEY}"),)

    async def send(numbers: Sequence[int]) -> None:
        batch = ingest_pb2.SendBatchRequest(
            notifications=[
                ingest_pb2.SendRequest(
                    user_id=users[n],
                    type="order",
                    title=TITLE.format(n=n),
                    message=MESSAGE.format(n=n),
                    priority=common_pb2.PRIORITY_HIGH,
                )
                for n in numbers
            ]
        )
        reply = await stubs[numbers[0] % 2].SendBatch(batch, metadata=md, timeout=120)
        if len(reply.ids) != len(numbers):
            raise RuntimeError(f"SendBatch answered {len(reply.ids)} ids for {len(numbers)}")

    try:
        yield send
    finally:
        for c in channels:
            await c.close()


async def measure_pipeline(
    server: ServerProcess,
    fcm: Fcm,
    args: argparse.Namespace,
    profile_to: Path | None,
) -> dict[str, Any]:
    """Warm-up users first (then the counts are reset), then one push to each user."""
    warm = [f"warm-{i}" for i in range(args.warmup)]
    users = [f"user-{i}" for i in range(args.users)]
    target = fcm.sink
    async with producer(server, warm + users) as send:
        await target.reset()
        sent = await send_many(send, 0, args.warmup, args.concurrency, args.batch)
        if sent["errors"]:
            raise RuntimeError(f"warm-up sends failed: {sent['errors'][0]}")
        got = await wait_received(target, args.warmup, args.stall)
        if got["unique"] < args.warmup:
            raise RuntimeError(
                f"only {got['unique']} of {args.warmup} warm-up pushes arrived; see {server.log}"
            )
        await target.reset()
        profiler = Profiler(server.pid, profile_to) if profile_to else None
        samples = _Samples(server.pids, target.pid)
        sending = asyncio.create_task(
            send_many(send, args.warmup, args.users, args.concurrency, args.batch)
        )
        stats = await wait_received(target, args.users, args.stall)
        usage = samples.take()
        sampled = profiler.stop() if profiler else 0.0
        sent = await sending
    row = _row("push", server.kind, "grpc-batch", sent, stats, usage, args.users, args.concurrency)
    row["refused"] = stats["refused"]
    if profiler is not None:
        row["profile"] = summarize_profile(profiler.out, sampled, profiler.rate, areas_of=AREAS)
    return row


def node_env(fcm: Fcm, args: argparse.Namespace) -> dict[str, str]:
    limits = ",".join(f"{c}={LIFTED}/1h" for c in ("email", "inapp", "push", "webpush", "sms"))
    env = fcm.env | {"NOTIFY_DEDUP_WINDOW": "0", "NOTIFY_RATE_LIMITS": limits}
    if args.push_concurrency:
        env["NOTIFY_PUSH_CONCURRENCY"] = args.push_concurrency
    return env


async def run_backend(
    backend: str, fcm: Fcm, args: argparse.Namespace, server_cpus: set[int] | None
) -> dict[str, Any]:
    with notify_server(backend, server_cpus, extra_env=node_env(fcm, args)) as server:
        print(f"{backend}: server pid {server.pid}", flush=True)
        warm = [f"warm-{i}" for i in range(args.warmup)]
        users = [f"user-{i}" for i in range(args.users)]
        started = time.monotonic()
        # Warm-up users' tokens follow the measured users', so that user-i holds token(i),
        # the token the baseline sends message i to.
        add_devices(server.database_url, users, 0)
        add_devices(server.database_url, warm, args.users)
        print(f"{backend}: devices written in {time.monotonic() - started:.1f} s", flush=True)
        profile_to = RESULTS_DIR / f"{args.name}-profile-{backend}.txt" if args.profile else None
        return await measure_pipeline(server, fcm, args, profile_to)


# -- the bare baseline (a child process) ------------------------------------------------


@dataclass(frozen=True)
class BareSpec:
    endpoint: str
    credentials: str
    ca_file: str
    workers: int
    total: int
    warmup: int
    cpus: frozenset[int] | None


async def _bare_run(spec: BareSpec, go: Event, out: mp.Queue[dict[str, Any]]) -> dict[str, Any]:
    import json
    import ssl

    import httpx

    from delivery_svc.providers.base import PushMessage
    from delivery_svc.providers.fcm import message_body
    from delivery_svc.transport.google_oauth import AccessTokens, load_service_account
    from notify_core.constants import FCM_MAX_CONNECTIONS, FCM_SCOPE

    account = load_service_account(spec.credentials)
    client = httpx.AsyncClient(
        http2=True,
        verify=ssl.create_default_context(cafile=spec.ca_file),
        timeout=30,
        limits=httpx.Limits(
            max_connections=FCM_MAX_CONNECTIONS, max_keepalive_connections=FCM_MAX_CONNECTIONS
        ),
    )
    bearer = await AccessTokens(account, client, scope=FCM_SCOPE).get()
    url = f"{spec.endpoint}/v1/projects/{account.project_id}/messages:send"
    headers = {"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"}
    errors: list[str] = []
    numbers: Iterator[int] = iter(())

    async def post(n: int) -> None:
        message = PushMessage(
            send_id=str(uuid.uuid4()),
            token=token(n),
            title=TITLE.format(n=n),
            body=MESSAGE.format(n=n),
            data={"notification_id": str(uuid.uuid4()), "type": "order"},
            priority="high",
            ttl=86_400,
        )
        body = json.dumps(message_body(message), ensure_ascii=False).encode()
        r = await client.post(url, content=body, headers=headers)
        if r.status_code != 200:
            errors.append(f"HTTP {r.status_code}: {r.text[:200]}")

    async def worker() -> None:
        for n in numbers:
            await post(n)

    try:
        numbers = iter(range(spec.total, spec.total + spec.warmup))
        await asyncio.gather(*(worker() for _ in range(spec.workers)))
        if errors:
            raise RuntimeError(f"warm-up posts failed: {errors[0]}")
        out.put({"ready": True})
        if not await asyncio.to_thread(go.wait, 300):
            raise TimeoutError("no go from the bench")
        numbers = iter(range(spec.total))
        start = time.time()
        await asyncio.gather(*(worker() for _ in range(spec.workers)))
        end = time.time()
    finally:
        await client.aclose()
    ok = spec.total - len(errors)
    return {"first_send": start, "last_ack": end, "ok": ok, "errors": errors}


def _bare(spec: BareSpec, go: Event, out: mp.Queue[dict[str, Any]]) -> None:
    pin(0, set(spec.cpus) if spec.cpus else None)
    try:
        out.put(asyncio.run(_bare_run(spec, go, out)))
    except BaseException as exc:
        out.put({"failed": repr(exc)})


def high_concurrency(args: argparse.Namespace) -> int:
    """The node's push deliveries in flight for high priority."""
    from delivery_svc.config_push import PUSH_CONCURRENCY

    env = {"NOTIFY_PUSH_CONCURRENCY": args.push_concurrency} if args.push_concurrency else {}
    return int(PUSH_CONCURRENCY.read(env)["high"])


async def measure_bare(fcm: Fcm, args: argparse.Namespace, cpus: set[int] | None) -> dict[str, Any]:
    workers = high_concurrency(args)
    spec = BareSpec(
        fcm.env["NOTIFY_FCM_ENDPOINT"],
        fcm.env["NOTIFY_FCM_CREDENTIALS"],
        fcm.env["SSL_CERT_FILE"],
        workers,
        args.users,
        args.warmup,
        frozenset(cpus) if cpus else None,
    )
    ctx = mp.get_context("spawn")
    go = ctx.Event()
    out: mp.Queue[dict[str, Any]] = ctx.Queue()
    proc = ctx.Process(target=_bare, args=(spec, go, out))
    await fcm.sink.reset()
    proc.start()
    try:
        await asyncio.to_thread(_get, out, 120)
        await wait_received(fcm.sink, args.warmup, args.stall)
        await fcm.sink.reset()
        samples = _Samples([proc.pid or 0], fcm.sink.pid)
        go.set()
        stats = await wait_received(fcm.sink, args.users, args.stall)
        usage = samples.take()
        result = await asyncio.to_thread(_get, out, 60)
    finally:
        go.set()
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join(5)
    row = _row("push", "baseline (httpx h2)", "-", result, stats, usage, args.users, workers)
    row["refused"] = stats["refused"]
    return row


# -- main -------------------------------------------------------------------------------


def cpu_per_push(row: dict[str, Any]) -> None:
    """Add the CPU milliseconds per accepted push of the sender (the node, or the bare
    sender) and of the FCM server: less bent by other load on the machine than ``per_s``."""
    pushes = row["unique"] or 1
    for column, pct in (("cpu_ms_per_push", "server_cpu_pct"), ("fcm_ms_per_push", "sink_cpu_pct")):
        row[column] = round(row[pct] / 100 * row["seconds"] * 1000 / pushes, 2)


PUSH_COLUMNS = [*COLUMNS, "refused", "cpu_ms_per_push", "fcm_ms_per_push"]


def _report(rows: list[dict[str, Any]], sharing: str, args: argparse.Namespace) -> None:
    print()
    print(sharing)
    print(
        f"NOTIFY_PUSH_CONCURRENCY={args.push_concurrency or '(default)'} "
        f"(high: {high_concurrency(args)}), producer: SendBatch of {args.batch}, "
        f"{args.concurrency} in flight"
    )
    print_table(rows, PUSH_COLUMNS)
    bare = next((r for r in rows if r["server"].startswith("baseline")), None)
    for r in rows:
        if "first_error" in r:
            print(f"{r['server']}: first send error: {r['first_error']}")
        if "profile" in r:
            _print_profile(f"{r['server']} push", r["profile"])
    for r in rows:
        if r is bare:
            continue
        ratio = r["per_s"] / bare["per_s"] if bare and bare["per_s"] else float("nan")
        r["ratio_to_bare"] = round(ratio, 3)
        met = r["per_s"] >= TARGET_PER_S and r["missing"] == 0
        print(
            f"{r['server']}: {r['per_s']:,.0f} pushes/s, {100 * ratio:.1f} % of the bare "
            f"sender; target >= {TARGET_PER_S:,}/s: {'met' if met else 'MISSED'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="Notify FCM push throughput")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--users", type=int, default=20_000, help="one push to each")
    parser.add_argument("--warmup", type=int, default=500, help="users pushed to first")
    parser.add_argument("--batch", type=int, default=100, help="notifications per SendBatch")
    parser.add_argument("--concurrency", type=int, default=4, help="SendBatch calls in flight")
    parser.add_argument(
        "--push-concurrency",
        default="",
        help="NOTIFY_PUSH_CONCURRENCY, e.g. high=200 (default: the node's); the baseline "
        "runs as many workers as its high value",
    )
    parser.add_argument("--stall", type=float, default=30.0, help="give up after no progress")
    parser.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--profile", action="store_true", help="py-spy the node's runs")
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="node and baseline sender on CPU 0; producer and FCM server on CPU 1",
    )
    parser.add_argument("--name", default="push")
    args = parser.parse_args()
    exit_on_sigterm()
    cpus = cpu_count()
    pinned = args.pin and cpus > 1
    server_cpus = {0} if pinned else None
    side_cpus = {1} if pinned else None
    if pinned:
        pin(0, {1})
    sharing = (
        f"{cpus} CPUs: node and baseline sender pinned to CPU 0; the producer (this "
        "process) and the FCM server pinned to CPU 1; PostgreSQL/Redis/RabbitMQ unpinned"
        if pinned
        else f"{cpus} CPUs, nothing pinned"
    )
    print(sharing)
    idle_busy = background_load()
    rows: list[dict[str, Any]] = []
    with fcm_server(side_cpus) as fcm:
        if args.baseline:
            rows.append(asyncio.run(measure_bare(fcm, args, server_cpus)))
            cpu_per_push(rows[-1])
            print_table(rows[-1:], PUSH_COLUMNS)
        for backend in [b for b in args.backends.split(",") if b]:
            rows.append(asyncio.run(run_backend(backend, fcm, args, server_cpus)))
            cpu_per_push(rows[-1])
            print_table(rows[-1:], PUSH_COLUMNS)
    _report(rows, sharing, args)
    result = dict(params=vars(args), cpu_sharing=sharing, busy_before_pct=idle_busy, rows=rows)
    path = write_result(args.name, result)
    print(f"written {path}")


if __name__ == "__main__":
    main()
