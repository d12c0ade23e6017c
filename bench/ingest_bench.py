"""(a) Ingest throughput and latency: gRPC IngestService.Send and REST /notifications/send.

For the echo baseline and each backend, a server runs as its own process and a load
generator (``--procs`` processes, each with ``--concurrency/procs`` calls in flight over
``--channels`` grpc.aio channels, or an httpx.AsyncClient with as many keep-alive
connections) sends ``--requests`` calls (or for ``--duration`` seconds). With ``--pin``
(the default) the server is pinned to CPU 0 and the generators to CPU 1.

    .venv/bin/python bench/ingest_bench.py --requests 20000 --concurrency 64
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from typing import Any

from common import (
    API_KEY,
    BACKENDS,
    ServerProcess,
    background_load,
    cpu_count,
    cpu_times,
    echo_server,
    exit_on_sigterm,
    machine_busy,
    notify_server,
    pin,
    print_table,
    process_cpu_seconds,
    summarize_ms,
    write_result,
)

N_USERS = 1_000


@dataclass(frozen=True)
class LoadSpec:
    kind: str  # "grpc" or "rest"
    target: str  # host:port for gRPC, base URL for REST
    requests: int  # per process; ignored when duration > 0
    duration: float
    concurrency: int  # per process
    channels: int
    warmup: int
    timeout: float
    cpus: frozenset[int] | None


Caller = Callable[[int, int], Awaitable[None]]  # (request number, worker number)


def _grpc_caller(spec: LoadSpec) -> tuple[Caller, Callable[[], Any]]:
    import grpc
    from google.protobuf import struct_pb2
    from notify.v1 import ingest_pb2, ingest_pb2_grpc

    channels = [grpc.aio.insecure_channel(spec.target) for _ in range(spec.channels)]
    stubs = [ingest_pb2_grpc.IngestServiceStub(c) for c in channels]
    data = struct_pb2.Struct()
    data.update({"source": "bench"})
    reqs = [
        ingest_pb2.SendRequest(
            user_id=f"bench-u{i}", type="comment", title="t", message="m", data=data
        )
        for i in range(N_USERS)
    ]
    md = (("authorization", f"Bearer {API_KEY}"),)

    async def call(i: int, w: int) -> None:
        await stubs[w % len(stubs)].Send(reqs[i % N_USERS], metadata=md, timeout=30)

    async def close() -> None:
        for c in channels:
            await c.close()

    return call, close


def _rest_caller(spec: LoadSpec) -> tuple[Caller, Callable[[], Any]]:
    import httpx

    # One single-connection client per worker: C keep-alive connections in all. (One
    # client with C connections spends O(C) CPU per request scanning its pool, which
    # made httpx itself the bottleneck at C = 64.)
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [
        httpx.AsyncClient(base_url=spec.target, timeout=30, limits=limits)
        for _ in range(spec.concurrency)
    ]
    headers = {"authorization": f"Bearer {API_KEY}", "content-type": "application/json"}
    bodies = [
        json.dumps(
            {
                "user_id": f"bench-u{i}",
                "type": "comment",
                "title": "t",
                "message": "m",
                "data": {"source": "bench"},
            }
        ).encode()
        for i in range(N_USERS)
    ]

    async def call(i: int, w: int) -> None:
        r = await clients[w].post(
            "/notifications/send", content=bodies[i % N_USERS], headers=headers
        )
        if r.status_code != 202:
            raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")

    async def close() -> None:
        for c in clients:
            await c.aclose()

    return call, close


async def _load(spec: LoadSpec, barrier: Barrier) -> dict[str, Any]:
    call, close = _grpc_caller(spec) if spec.kind == "grpc" else _rest_caller(spec)
    latencies: list[float] = []
    errors: list[str] = []
    counter = 0

    async def worker(w: int, budget: list[int], deadline: float, record: bool) -> None:
        nonlocal counter
        while budget[0] > 0 and time.monotonic() < deadline:
            budget[0] -= 1
            counter += 1
            t0 = time.perf_counter()
            try:
                await call(counter, w)
            except Exception as exc:  # counted and reported, never fatal
                if record:
                    errors.append(repr(exc)[:200])
                continue
            if record:
                latencies.append(time.perf_counter() - t0)

    async def run(n: int, seconds: float, record: bool) -> None:
        deadline = time.monotonic() + (seconds if seconds > 0 else spec.timeout)
        budget = [n if seconds <= 0 else 1 << 62]
        await asyncio.gather(
            *(worker(w, budget, deadline, record) for w in range(spec.concurrency))
        )

    try:
        await run(spec.warmup, 0, record=False)
        await asyncio.to_thread(barrier.wait, spec.timeout)
        cpu0, start = time.process_time(), time.monotonic()
        await run(spec.requests, spec.duration, record=True)
        end, cpu1 = time.monotonic(), time.process_time()
    finally:
        await close()
    return {
        "start": start,
        "end": end,
        "cpu": cpu1 - cpu0,
        "latencies": latencies,
        "errors": errors,
    }


def _generator(spec: LoadSpec, barrier: Barrier, out: mp.Queue[dict[str, Any]]) -> None:
    pin(0, set(spec.cpus) if spec.cpus else None)
    try:
        out.put(asyncio.run(_load(spec, barrier)))
    except BaseException as exc:
        barrier.abort()
        out.put({"failed": repr(exc)})


def wait_idle(pid: int, timeout: float = 30.0) -> None:
    """Let the server finish background work (routing) before the next phase."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = process_cpu_seconds(pid)
        time.sleep(0.5)
        if process_cpu_seconds(pid) - before < 0.05:  # under 10 % of a core
            return


def measure(server: ServerProcess, kind: str, args: argparse.Namespace) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    procs = args.procs
    target = server.grpc_target if kind == "grpc" else server.base_url
    spec = LoadSpec(
        kind=kind,
        target=target,
        requests=max(1, args.requests // procs),
        duration=args.duration,
        concurrency=max(1, args.concurrency // procs),
        channels=args.channels,
        warmup=max(args.warmup // procs, 1),
        timeout=args.timeout,
        cpus=frozenset({1}) if args.pin and cpu_count() > 1 else None,
    )
    barrier = ctx.Barrier(procs + 1)
    out: mp.Queue[dict[str, Any]] = ctx.Queue()
    workers = [ctx.Process(target=_generator, args=(spec, barrier, out)) for _ in range(procs)]
    results: list[dict[str, Any]] = []
    try:
        for w in workers:
            w.start()
        try:
            barrier.wait(args.timeout)
        except threading.BrokenBarrierError:
            raise RuntimeError(f"load generator failed: {out.get(timeout=10)}") from None
        cpu0, machine0 = process_cpu_seconds(server.pid), cpu_times()
        results = [out.get(timeout=args.timeout + 60) for _ in workers]
        cpu1, busy = process_cpu_seconds(server.pid), machine_busy(machine0)
    except BaseException:
        for w in workers:
            if w.is_alive():
                w.terminate()  # interrupted or failed: do not wait for the load to finish
        raise
    finally:
        for w in workers:
            w.join(10)
            if w.is_alive():
                w.kill()
                w.join(5)
    failed = [r["failed"] for r in results if "failed" in r]
    if failed:
        raise RuntimeError(f"load generator failed: {failed[0]}")
    latencies = [x for r in results for x in r["latencies"]]
    errors = [e for r in results for e in r["errors"]]
    elapsed = max(r["end"] for r in results) - min(r["start"] for r in results)
    row: dict[str, Any] = {
        "server": server.kind,
        "api": kind,
        "ok": len(latencies),
        "errors": len(errors),
        "seconds": round(elapsed, 2),
        "req_per_s": round(len(latencies) / elapsed, 1),
        **summarize_ms(latencies),
        "server_cpu_pct": round(100 * (cpu1 - cpu0) / elapsed, 1),
        "gen_cpu_pct": round(100 * sum(r["cpu"] for r in results) / elapsed, 1),
        **busy,
    }
    if errors:
        row["first_error"] = errors[0]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description="Notify ingest throughput vs a bare gRPC echo")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--requests", type=int, default=20_000, help="per server and API")
    parser.add_argument("--duration", type=float, default=0.0, help="seconds instead of -n")
    parser.add_argument("--concurrency", type=int, default=64, help="calls in flight in all")
    parser.add_argument("--channels", type=int, default=2, help="gRPC channels per process")
    parser.add_argument("--procs", type=int, default=1, help="load generator processes")
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument("--timeout", type=float, default=300.0, help="bound on each phase")
    parser.add_argument("--apis", default="grpc,rest")
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="server on CPU 0, generators on CPU 1",
    )
    parser.add_argument(
        "--node",
        choices=("up", "ingest"),
        default="up",
        help="'up': the whole node (ingest, router, edge...) on the server core; "
        "'ingest': `notify serve ingest` alone (gRPC only: it has no HTTP edge)",
    )
    parser.add_argument("--name", default="ingest")
    args = parser.parse_args()
    exit_on_sigterm()
    backends = [b for b in args.backends.split(",") if b]
    apis = [a for a in args.apis.split(",") if a]
    server_cpus = {0} if args.pin and cpu_count() > 1 else None
    sharing = (
        f"{cpu_count()} CPUs: server pinned to CPU 0, {args.procs} load generator process(es) "
        "pinned to CPU 1; PostgreSQL/Redis/RabbitMQ unpinned (share both)"
        if server_cpus
        else f"{cpu_count()} CPUs, nothing pinned: server, generators and backends share them"
    )
    print(sharing)
    idle_busy = background_load()
    rows: list[dict[str, Any]] = []
    if "grpc" in apis:
        with echo_server(server_cpus) as echo:
            rows.append(measure(echo, "grpc", args))
            print_table(rows[-1:], ["server", "api", "req_per_s", "p50_ms", "p99_ms"])
    for backend in backends:
        with notify_server(backend, server_cpus, node=args.node) as server:
            for api in apis:
                if args.node != "up" and api == "rest":
                    continue
                wait_idle(server.pid)
                row = measure(server, api, args)
                if args.node != "up":
                    row["server"] = f"{backend} ({args.node} only)"
                rows.append(row)
                print_table(rows[-1:], ["server", "api", "req_per_s", "p50_ms", "p99_ms"])
    echo_rps = next((r["req_per_s"] for r in rows if r["server"] == "echo"), None)
    for r in rows:
        if echo_rps and r["api"] == "grpc":
            r["pct_of_echo"] = round(100 * r["req_per_s"] / echo_rps, 1)
    print()
    print(sharing)
    columns = [
        "server",
        "api",
        "ok",
        "errors",
        "req_per_s",
        "pct_of_echo",
        "p50_ms",
        "p99_ms",
        "max_ms",
        "server_cpu_pct",
        "gen_cpu_pct",
        "machine_busy_pct",
    ]
    print_table(rows, columns)
    for r in rows:
        if "first_error" in r:
            print(f"{r['server']}/{r['api']}: first error: {r['first_error']}")
    print("target: gRPC ingest >= 60 % of echo with durability on")
    params = {k: v for k, v in vars(args).items()}
    path = write_result(
        args.name,
        {"params": params, "cpu_sharing": sharing, "busy_before_pct": idle_busy, "rows": rows},
    )
    print(f"written {path}")


if __name__ == "__main__":
    main()
