"""(b) Send → WebSocket latency: how long a notification takes to reach a connected user.

Per backend, ``notify up`` runs as its own process. This process connects ``--users``
WebSocket users (and waits for each one's ``pending`` frame); a paced sender, in a child
process so that its client work does not run on the receivers' event loop, sends
``--rate`` notifications per second for ``--duration`` seconds over REST (or gRPC), each
to the next user, each carrying ``data = {"t": time.time(), "seq": n}`` taken just
before the call. A receiver records ``time.time() - t`` on arrival. Sends are scheduled by
absolute time (``start + n / rate``), so a slow call delays neither the next ones nor the
schedule. The first ``--warmup`` seconds of sends are left out of the statistics.

    .venv/bin/python bench/latency_bench.py --users 100 --rate 500 --duration 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import queue
import time
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.process import BaseProcess
from typing import Any

from common import (
    API_KEY,
    BACKENDS,
    JWT_SECRET,
    ServerProcess,
    background_load,
    cpu_count,
    cpu_times,
    exit_on_sigterm,
    latency_columns,
    machine_busy,
    notify_server,
    paced,
    pin,
    print_table,
    process_cpu_seconds,
    summarize_ms,
    write_result,
)
from websockets.asyncio.client import ClientConnection, connect

from notify_core.auth import issue_user_token


@dataclass(frozen=True)
class SendSpec:
    api: str
    base_url: str
    grpc_target: str
    users: tuple[str, ...]
    rate: float
    total: int
    start_at: float  # time.time() of the first send
    max_in_flight: int
    connections: int
    warm: int  # the first sends, not counted


async def _paced_send(spec: SendSpec) -> dict[str, Any]:
    import grpc
    import httpx
    from google.protobuf import struct_pb2
    from notify.v1 import ingest_pb2, ingest_pb2_grpc

    # One client per connection, handed out from a free list: one httpx pool with many
    # connections costs O(connections) CPU per request, which would slow the sender.
    clients = [
        httpx.AsyncClient(
            base_url=spec.base_url,
            timeout=10,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )
        for _ in range(spec.connections)
    ]
    free: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
    for c in clients:
        free.put_nowait(c)
    channel = grpc.aio.insecure_channel(spec.grpc_target)
    stub = ingest_pb2_grpc.IngestServiceStub(channel)
    headers = {"authorization": f"Bearer {API_KEY}"}
    md = (("authorization", f"Bearer {API_KEY}"),)

    async def send_one(seq: int, t: float) -> None:
        user = spec.users[seq % len(spec.users)]
        if spec.api == "grpc":
            data = struct_pb2.Struct()
            data.update({"t": t, "seq": seq})
            req = ingest_pb2.SendRequest(
                user_id=user, type="bench", title="t", message="m", data=data
            )
            await stub.Send(req, metadata=md, timeout=10)
            return
        body = {
            "user_id": user,
            "type": "bench",
            "title": "t",
            "message": "m",
            "data": {"t": t, "seq": seq},
        }
        http = await free.get()
        try:
            r = await http.post("/notifications/send", json=body, headers=headers)
        finally:
            free.put_nowait(http)
        if r.status_code != 202:
            raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")

    try:
        return await paced(send_one, spec)
    finally:
        for c in clients:
            await c.aclose()
        await channel.close()


def _sender(spec: SendSpec, out: mp.Queue[dict[str, Any]]) -> None:
    try:
        out.put(asyncio.run(_paced_send(spec)))
    except BaseException as exc:
        out.put({"failed": repr(exc)})


async def _result(
    out: mp.Queue[dict[str, Any]], proc: BaseProcess, timeout: float
) -> dict[str, Any]:
    """The sender's answer, waited for in short steps so that a cancel is not held up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(queue.Empty):
            result: dict[str, Any] = await asyncio.to_thread(out.get, True, 0.5)
            return result
        if not proc.is_alive() and out.empty():
            raise RuntimeError(f"sender exited with {proc.exitcode} and no result")
    raise TimeoutError(f"no result from the sender within {timeout:.0f} s")


async def _connect(url: str, user: str) -> ClientConnection:
    ws = await connect(
        f"{url}?token={issue_user_token(JWT_SECRET, user)}",
        open_timeout=10,
        compression=None,
        ping_interval=None,
        max_size=1 << 20,
    )
    first = json.loads(await asyncio.wait_for(ws.recv(), 10))
    if first.get("type") != "pending":
        raise RuntimeError(f"expected a pending frame first, got {first!r}")
    return ws


Arrival = tuple[float, float]
"""(receipt - t, receipt - created_at): end to end, and after the server accepted it."""


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def _receive(ws: ClientConnection, got: dict[int, Arrival], arrived: asyncio.Event) -> None:
    with contextlib.suppress(Exception):
        async for raw in ws:
            now = time.time()
            event = json.loads(raw)
            if event.get("type") == "notification":
                n = event["notification"]
                data = n.get("data") or {}
                if "seq" in data:
                    arrival = (now - float(data["t"]), now - _epoch(n["created_at"]))
                    got.setdefault(int(data["seq"]), arrival)
                    arrived.set()


async def measure(server: ServerProcess, args: argparse.Namespace) -> dict[str, Any]:
    users = tuple(f"lat-{server.kind}-{i}" for i in range(args.users))
    gate = asyncio.Semaphore(20)

    async def connect_one(user: str) -> ClientConnection:
        async with gate:
            return await _connect(server.ws_url, user)

    sockets = await asyncio.gather(*(connect_one(u) for u in users))
    got: dict[int, Arrival] = {}
    arrived = asyncio.Event()
    readers = [asyncio.create_task(_receive(ws, got, arrived)) for ws in sockets]
    warm = int(args.warmup * args.rate)
    total = warm + int(args.duration * args.rate)
    spec = SendSpec(
        args.api,
        server.base_url,
        server.grpc_target,
        users,
        args.rate,
        total,
        time.time() + 1.0,
        args.max_in_flight,
        args.connections,
        warm,
    )
    ctx = mp.get_context("spawn")
    out: mp.Queue[dict[str, Any]] = ctx.Queue()
    sender = ctx.Process(target=_sender, args=(spec, out))

    async def sample_at(wall: float) -> tuple[float, tuple[float, float, float], float, float]:
        await asyncio.sleep(max(0.0, wall - time.time()))
        return process_cpu_seconds(server.pid), cpu_times(), time.monotonic(), time.process_time()

    first_send = asyncio.create_task(sample_at(spec.start_at))
    try:
        sender.start()
        result = await _result(out, sender, total / args.rate + 60)
        cpu0, machine0, t0, self0 = await first_send
        elapsed = time.monotonic() - t0
        server_cpu = (process_cpu_seconds(server.pid) - cpu0) / elapsed
        receivers_cpu = (time.process_time() - self0) / elapsed
        busy = machine_busy(machine0)
        if "failed" in result:
            raise RuntimeError(f"sender failed: {result['failed']}")
        expected = [s for s in result["ok"] if s >= warm]
        deadline = time.monotonic() + args.drain
        while any(s not in got for s in expected):
            arrived.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrived.wait(), left)
    except BaseException:
        if sender.is_alive():
            sender.terminate()
        raise
    finally:
        first_send.cancel()
        sender.join(10)
        if sender.is_alive():
            sender.kill()
            sender.join(5)
        for ws in sockets:
            await ws.close()
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    latencies = [got[s][0] for s in expected if s in got]
    after_accept = [got[s][1] for s in expected if s in got]
    row: dict[str, Any] = {
        "server": server.kind,
        "api": args.api,
        "users": args.users,
        "rate": args.rate,
        **latency_columns(len(expected), latencies, after_accept, result),
        "server_cpu_pct": round(100 * server_cpu, 1),
        "receivers_cpu_pct": round(100 * receivers_cpu, 1),
        "sender_cpu_pct": round(100 * result["cpu"] / elapsed, 1),
        **busy,
    }
    per_second: dict[int, list[float]] = {}
    for s in expected:
        if s in got:
            per_second.setdefault(int((s - warm) / args.rate), []).append(got[s][0])
    row["per_second_p50_max_ms"] = [
        [summarize_ms(v, (50,))["p50_ms"], summarize_ms(v, ())["max_ms"]]
        for _, v in sorted(per_second.items())
    ]
    if result["errors"]:
        row["first_error"] = result["errors"][0]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description="Notify send → WebSocket latency")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--users", type=int, default=100, help="WebSocket users connected")
    parser.add_argument("--rate", type=float, default=500.0, help="notifications per second")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds sent, not counted")
    parser.add_argument("--drain", type=float, default=5.0, help="wait for late arrivals")
    parser.add_argument("--api", choices=("rest", "grpc"), default="rest")
    parser.add_argument("--max-in-flight", type=int, default=500)
    parser.add_argument("--connections", type=int, default=32, help="REST keep-alive conns")
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="server on CPU 0, this process and the sender on CPU 1",
    )
    parser.add_argument("--name", default="latency")
    args = parser.parse_args()
    exit_on_sigterm()
    cpus = cpu_count()
    pinned = args.pin and cpus > 1
    if pinned:
        pin(0, {1})  # the sender process inherits it
    sharing = (
        f"{cpus} CPUs: server pinned to CPU 0; WebSocket receivers and the paced "
        "sender (a child process) pinned to CPU 1; PostgreSQL/Redis/RabbitMQ unpinned"
        if pinned
        else f"{cpus} CPUs, nothing pinned"
    )
    print(sharing)
    idle_busy = background_load()
    columns = [
        "server",
        "api",
        "rate",
        "sent_ok",
        "received",
        "lost",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "max_ms",
        "after_created_p50_ms",
        "after_created_p99_ms",
        "ack_p50_ms",
        "ack_p99_ms",
        "sender_max_lag_ms",
        "server_cpu_pct",
        "receivers_cpu_pct",
        "sender_cpu_pct",
        "machine_busy_pct",
        "steal_pct",
    ]
    rows: list[dict[str, Any]] = []
    for backend in [b for b in args.backends.split(",") if b]:
        with notify_server(backend, {0} if pinned else None) as server:
            print(f"{backend}: server pid {server.pid} (attach py-spy here)", flush=True)
            rows.append(asyncio.run(measure(server, args)))
        print_table(rows[-1:], columns)
    print()
    print(sharing)
    print_table(rows, columns)
    for r in rows:
        if "first_error" in r:
            print(f"{r['server']}: first send error: {r['first_error']}")
        met = r["p99_ms"] <= 25 and r["lost"] == 0
        print(
            f"{r['server']}: target p99 <= 25 ms at {r['rate']:g}/s with no loss: "
            f"{'met' if met else 'MISSED'}"
        )
    path = write_result(
        args.name,
        {"params": vars(args), "cpu_sharing": sharing, "busy_before_pct": idle_busy, "rows": rows},
    )
    print(f"written {path}")


if __name__ == "__main__":
    main()
