"""(e) The real-time edge at scale, against a bare ``websockets`` server in the same run.

For each server — the baseline ``bare_ws_server.py`` (``--procs``-many ``websockets``
processes on one port, ``SO_REUSEPORT``) and ``notify up`` on the real backend
(PostgreSQL, Redis, RabbitMQ) with ``NOTIFY_EDGE_PROCESSES=--edge-procs`` — in turn:

(a) **Idle connections.** ``--connections`` WebSocket users (each its own user) connect
    from ``--gen-procs`` load generator processes, each binding its sockets to its own
    source address 127.0.0.<2+i> and opening at most ``--concurrency`` at a time; each
    connection counts once its first frame (``pending``) arrived. The first ``--warmup`` of
    them are opened before the server's memory is read. Then all are held for ``--hold``
    seconds. Reported: the connect rate, connect errors, drops (a held connection closed by
    the server or failing: counted exactly, with close codes), and the resident set of the
    whole server (every process: parent and children, ``VmRSS`` from ``/proc``) before
    and while holding; per connection = difference / (connections - warmup).
(b) **Fan-out.** With the same connections held, one message to every one of them. Notify:
    every user was subscribed to a topic beforehand (``PUT /topics/{topic}/subscribers``,
    10,000 per call) and one ``POST /notifications/send`` with ``"topic"`` (channels
    ``--fanout-channels``) goes through the real pipeline: the topic fan-out, ingest,
    RabbitMQ, the router, Redis pub/sub, the edge processes. Bare: one Redis ``PUBLISH``
    that every process broadcasts to all its connections. Timed from just before the call
    to the last receipt (each generator timestamps the first arrival on each connection,
    same clock); ``accept`` is until the 202 (Notify) or the publish's answer (bare),
    ``fanned_out`` until the topic send reports every subscriber accepted (Notify).
    Rate = received / time to the last receipt.
(c) **Latency.** All connections closed, ``--latency-users`` new users connect, and a paced
    sender in a child process sends ``--rate`` notifications per second for
    ``--duration`` seconds (after ``--latency-warmup`` seconds not counted), each to the
    next user, carrying ``{"t": time.time(), "seq": n}``. Notify: ``latency_bench.py``'s
    sender (gRPC ``IngestService.Send`` or REST). Bare: a Redis ``PUBLISH`` naming the user.
    Latency = receipt - ``t``; overall and per-second p50/p99; plotted with ``--plot``.

The server gets CPU 0 and everything on this side (generators, sender) CPU 1 with
``--pin``; PostgreSQL, Redis and RabbitMQ are unpinned. Every child is stopped on exit,
Ctrl-C or SIGTERM. Results: ``bench/results/<--name>.json``.

    .venv/bin/python bench/ws_scale_bench.py --connections 10000 --hold 30       # debug size
    .venv/bin/python bench/ws_scale_bench.py                                     # full sizes
    .venv/bin/python bench/ws_scale_bench.py --phases c --servers notify --rate 500 --no-pin
    .venv/bin/python bench/ws_scale_bench.py --replot bench/results/ws_scale.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing as mp
import os
import queue
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from bare_ws_server import raise_open_files_limit
from common import (
    API_KEY,
    BENCH_DIR,
    JWT_SECRET,
    POSTGRES_ADMIN_URL,
    REDIS_URL,
    RESULTS_DIR,
    ServerProcess,
    background_load,
    cpu_count,
    cpu_times,
    exit_on_sigterm,
    free_port,
    latency_columns,
    notify_server,
    paced,
    percentile,
    pin,
    print_table,
    process_cpu_seconds,
    summarize_ms,
    write_result,
)
from latency_bench import SendSpec, _sender
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from notify_core.auth import issue_user_token

IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
"""Linux: the port of a socket bound to an address is picked at ``connect``, per 4-tuple,
so one source address serves more than the ephemeral range once per destination."""
MAX_PER_GENERATOR = 18_000
"""Connections one generator process may hold (open-file limit 20,000, hard)."""
NOTIFY_MAX_PER_EDGE = 15_000
TOPIC = "bench-fanout"
TOKEN_TTL = 6 * 3600.0
SERVERS = ("bare", "notify")
PHASES = ("a", "b", "c")


# --- the server's processes ---------------------------------------------------------------


def tree_pids(root: int) -> list[int]:
    """``root`` and every process descended from it (from ``/proc``)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0  # a zombie has none


def tree_rss(root: int) -> int:
    """Resident set of ``root`` and its descendants together, in bytes."""
    total = 0
    for pid in tree_pids(root):
        with contextlib.suppress(OSError):
            total += rss_bytes(pid)
    return total


def tree_cpu(root: int) -> float:
    """CPU seconds used so far by ``root`` and its living descendants."""
    total = 0.0
    for pid in tree_pids(root):
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += process_cpu_seconds(pid)
    return total


def pin_tree(root: int, cpus: set[int] | None) -> None:
    """Pin every thread of ``root`` and its descendants to ``cpus``."""
    if not cpus:
        return
    for pid in tree_pids(root):
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError):
                    pin(int(tid), cpus)


BACKEND_COMMANDS = frozenset(
    {"postgres", "redis-server", "beam.smp", "epmd", "erl_child_setup", "inet_gethost"}
)
"""Process names of PostgreSQL, Redis and RabbitMQ (shared with everyone on the machine)."""


def backends_cpu() -> dict[int, float]:
    """CPU seconds used so far by each PostgreSQL, Redis and RabbitMQ process alive now."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                text = f.read()
            if text[text.index("(") + 1 : text.rindex(")")] in BACKEND_COMMANDS:
                fields = text.rsplit(")", 1)[1].split()
                out[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
        except (OSError, ValueError, IndexError):
            continue
    return out


def bench_cpu() -> float:
    """CPU seconds of this process, its living descendants (generators, servers) and the
    children it has already waited for (senders)."""
    with open("/proc/self/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    reaped = (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    return tree_cpu(os.getpid()) + reaped


class Usage:
    """CPU over a stretch of time: the server's and the generators' (% of one CPU) and, as
    % of the whole machine, this benchmark's processes, the backends, and the rest: other
    people's work."""

    def __init__(self, server_pids: Sequence[int], generators: Sequence[int] = ()) -> None:
        self.server_pids = list(server_pids)
        self.generators = list(generators)
        self.gens0 = self._gens_cpu()
        self.t0 = time.monotonic()
        self.machine0 = cpu_times()
        self.server0 = self._server_cpu()
        self.bench0 = bench_cpu()
        self.backends0 = backends_cpu()

    def _server_cpu(self) -> float:
        return sum(tree_cpu(pid) for pid in self.server_pids)

    def _gens_cpu(self) -> float:
        total = 0.0
        for pid in self.generators:
            with contextlib.suppress(OSError, IndexError, ValueError):
                total += process_cpu_seconds(pid)
        return total

    def done(self) -> dict[str, float]:
        elapsed = time.monotonic() - self.t0
        gens = self._gens_cpu() - self.gens0
        busy, steal, total = (a - b for a, b in zip(cpu_times(), self.machine0, strict=True))
        bench = bench_cpu() - self.bench0
        # per process: one that ended meanwhile counts nothing, one that started all of it
        backends = sum(max(0.0, t - self.backends0.get(p, 0.0)) for p, t in backends_cpu().items())
        server = self._server_cpu() - self.server0
        if elapsed <= 0 or total <= 0:
            return {}
        return {
            "server_cpu_pct": round(100 * server / elapsed, 1),
            "generators_cpu_pct": round(100 * gens / elapsed, 1),
            "machine_busy_pct": round(100 * busy / total, 1),
            "bench_pct": round(100 * bench / total, 1),
            "backends_pct": round(100 * backends / total, 1),
            "others_pct": round(max(0.0, 100 * (busy - bench - backends) / total), 1),
            "steal_pct": round(100 * steal / total, 1),
        }


class LoadSeries:
    """:class:`Usage` second by second, for the plot: call :meth:`tick` often."""

    def __init__(self, server_pids: Sequence[int], generators: Sequence[int]) -> None:
        self.points: list[dict[str, float]] = []
        self._server_pids = list(server_pids)
        self._generators = list(generators)
        self._start = time.monotonic()
        self._usage = Usage(self._server_pids, self._generators)

    def tick(self) -> None:
        if time.monotonic() - self._usage.t0 < 1.0:
            return
        used, self._usage = self._usage.done(), Usage(self._server_pids, self._generators)
        self.points.append({"t": round(self._usage.t0 - self._start, 1), **used})


@contextlib.contextmanager
def bare_server(procs: int, channel: str, cpus: set[int] | None) -> Iterator[ServerProcess]:
    """``bare_ws_server.py`` in a child process (its own processes below it)."""
    port = free_port()
    log = RESULTS_DIR / "server-bare.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    argv = [
        sys.executable,
        str(BENCH_DIR / "bare_ws_server.py"),
        "--port",
        str(port),
        "--procs",
        str(procs),
        "--channel",
        channel,
        "--redis-url",
        REDIS_URL,
    ]
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, cwd=BENCH_DIR, stdout=out, stderr=subprocess.STDOUT)
    server = ServerProcess("bare", proc, 0, port, log)
    try:
        pin(proc.pid, cpus)
        server.wait_ready("bare: listening", 60)
        pin_tree(proc.pid, cpus)
        yield server
    finally:
        server.stop()


# --- load generator processes ---------------------------------------------------------------


@dataclass(frozen=True)
class GenSpec:
    index: int
    source_ip: str
    concurrency: int
    open_timeout: float


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text[:160]


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


class Swarm:
    """The connections of one generator process, and what arrives on them."""

    def __init__(self, spec: GenSpec) -> None:
        self.spec = spec
        self.conns: dict[str, ClientConnection] = {}
        self.readers: set[asyncio.Task[None]] = set()
        self.closing = False
        self.drops: Counter[str] = Counter()
        self.marker: str | None = None
        self.fanout: list[float] = []
        self.latency: dict[int, tuple[float, float]] = {}

    async def serve(self, pipe: Connection) -> None:
        """Answer the bench process's commands until it says ``exit`` or goes away."""
        while True:
            try:
                name, *rest = await asyncio.to_thread(pipe.recv)
            except EOFError:
                return
            if name == "exit":
                await self.close_all()
                pipe.send(None)
                return
            reply: Any
            if name == "connect":
                reply = await self.connect_many(*rest)
            elif name == "status":
                reply = self.status()
            elif name == "expect":
                self.marker, self.fanout = str(rest[0]), []
                reply = None
            elif name == "fanout_count":
                reply = len(self.fanout)
            elif name == "fanout":
                reply = self.fanout
            elif name == "latency_reset":
                self.latency = {}
                reply = None
            elif name == "latency_count":
                reply = len(self.latency)
            elif name == "latency":
                reply = self.latency
            elif name == "close_all":
                reply = await self.close_all()
            else:
                reply = {"error": f"unknown command {name!r}"}
            pipe.send(reply)

    def status(self) -> dict[str, Any]:
        return {"open": len(self.conns), "drops": sum(self.drops.values()), "why": self.drops}

    async def connect_many(
        self, kind: str, host: str, port: int, users: Sequence[str]
    ) -> dict[str, Any]:
        errors: Counter[str] = Counter()
        todo = iter(users)
        took: list[float] = []

        async def worker() -> None:
            for user in todo:
                began = time.perf_counter()
                try:
                    await self.open_one(kind, host, port, user)
                    took.append(time.perf_counter() - began)
                except Exception as exc:  # counted and reported
                    errors[_short(exc)] += 1

        started = time.time()
        await asyncio.gather(*(worker() for _ in range(self.spec.concurrency)))
        return {
            "opened": len(took),
            "took": took,
            "errors": sum(errors.values()),
            "why": errors,
            "started": started,
            "finished": time.time(),
        }

    async def open_one(self, kind: str, host: str, port: int, user: str) -> None:
        if kind == "notify":
            path = f"/ws?token={issue_user_token(JWT_SECRET, user, TOKEN_TTL)}"
        else:
            path = f"/?user={user}"
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ws: ClientConnection | None = None
        try:
            async with asyncio.timeout(self.spec.open_timeout):
                sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                sock.bind((self.spec.source_ip, 0))
                sock.setblocking(False)
                await loop.sock_connect(sock, (host, port))
                ws = await connect(
                    f"ws://{host}:{port}{path}",
                    sock=sock,
                    compression=None,
                    ping_interval=None,  # the server pings; the client answers
                    open_timeout=self.spec.open_timeout,
                    close_timeout=5,
                    max_size=1 << 20,
                )
                first = json.loads(await ws.recv())
            if first.get("type") != "pending":
                raise RuntimeError(f"expected pending first, got {str(first)[:100]}")
        except BaseException:
            if ws is not None:
                ws.transport.abort()
            sock.close()
            raise
        self.conns[user] = ws
        task = asyncio.create_task(self._read(user, ws))
        self.readers.add(task)
        task.add_done_callback(self.readers.discard)

    async def _read(self, user: str, ws: ClientConnection) -> None:
        why = ""
        try:
            async for raw in ws:
                self._on_frame(raw)
        except ConnectionClosed:
            pass
        except Exception as exc:
            why = _short(exc)
        if self.closing:
            return
        self.conns.pop(user, None)
        self.drops[why or f"close {ws.close_code} {ws.close_reason or ''}".strip()] += 1

    def _on_frame(self, raw: str | bytes) -> None:
        now = time.time()
        event = json.loads(raw)
        if event.get("type") != "notification":
            return
        n = event.get("notification") or {}
        data = n.get("data") or {}
        if self.marker is not None and data.get("run") == self.marker:
            self.fanout.append(now)
        elif "seq" in data:
            created = n.get("created_at")
            after = now - _epoch(created) if created else math.nan
            self.latency.setdefault(int(data["seq"]), (now - float(data["t"]), after))

    async def close_all(self) -> int:
        """Close every connection (not counted as drops); answer how many."""
        self.closing = True
        conns = list(self.conns.values())
        todo = iter(conns)

        async def worker() -> None:
            for ws in todo:
                try:
                    await asyncio.wait_for(ws.close(), 10)
                except Exception:
                    ws.transport.abort()

        try:
            await asyncio.gather(*(worker() for _ in range(max(1, self.spec.concurrency))))
            if self.readers:
                await asyncio.wait(list(self.readers), timeout=30)
        finally:
            self.conns.clear()
            self.closing = False
        return len(conns)


def _generator_main(spec: GenSpec, pipe: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the bench process stops us
    raise_open_files_limit()
    asyncio.run(Swarm(spec).serve(pipe))


class Generators:
    """The load generator processes, each answering commands over its pipe."""

    def __init__(self, count: int, concurrency: int, open_timeout: float) -> None:
        ctx = mp.get_context("spawn")
        self.procs: list[BaseProcess] = []
        self.pipes: list[Connection] = []
        for i in range(count):
            ours, theirs = ctx.Pipe(duplex=True)
            spec = GenSpec(i, f"127.0.0.{2 + i}", concurrency, open_timeout)
            proc = ctx.Process(target=_generator_main, args=(spec, theirs), daemon=True)
            proc.start()
            theirs.close()
            self.procs.append(proc)
            self.pipes.append(ours)

    def __len__(self) -> int:
        return len(self.procs)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.pid is not None]

    def call(
        self,
        commands: Sequence[tuple[Any, ...]] | tuple[Any, ...],
        tick: Callable[[], None] | None = None,
        timeout: float = 3600.0,
    ) -> list[Any]:
        """Send each generator its command (or all the same one); answer their replies in
        order, calling ``tick`` about once a second while waiting."""
        if isinstance(commands, tuple):
            commands = [commands] * len(self.pipes)
        for pipe, command in zip(self.pipes, commands, strict=True):
            pipe.send(command)
        replies: list[Any] = [None] * len(self.pipes)
        waiting = set(range(len(self.pipes)))
        deadline = time.monotonic() + timeout
        while waiting:
            if time.monotonic() > deadline:
                raise TimeoutError(f"generators {sorted(waiting)} did not answer {commands[0]}")
            for i in list(waiting):
                if self.pipes[i].poll(0.05):
                    replies[i] = self.pipes[i].recv()
                    waiting.discard(i)
                elif not self.procs[i].is_alive():
                    raise RuntimeError(f"generator {i} exited with {self.procs[i].exitcode}")
            if tick is not None:
                tick()
        return replies

    def status(self) -> dict[str, Any]:
        replies = self.call(("status",))
        why: Counter[str] = Counter()
        for r in replies:
            why.update(r["why"])
        return {
            "open": sum(r["open"] for r in replies),
            "drops": sum(r["drops"] for r in replies),
            "drop_reasons": dict(why),
        }

    def stop(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(("exit",))
        deadline = time.monotonic() + 60
        for proc in self.procs:
            proc.join(max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        for pipe in self.pipes:
            pipe.close()


def split(users: Sequence[str], parts: int) -> list[list[str]]:
    n = len(users)
    return [list(users[i * n // parts : (i + 1) * n // parts]) for i in range(parts)]


# --- one server, all phases ----------------------------------------------------------------


class Sampler:
    """Called while waiting: peak server RSS and, for Notify, its PostgreSQL connections."""

    def __init__(self, root: int, database_url: str) -> None:
        self.root = root
        self.peak_rss = 0
        self.peak_pg = 0
        self.peak_pg_overall = 0
        self._last = 0.0
        self._pg: Any = None
        self._db = database_url.rsplit("/", 1)[-1] if database_url.startswith("postgres") else ""
        if self._db:
            with contextlib.suppress(Exception):
                import psycopg

                self._pg = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True)

    def __call__(self) -> None:
        now = time.monotonic()
        if now - self._last < 1.0:
            return
        self._last = now
        self.peak_rss = max(self.peak_rss, tree_rss(self.root))
        if self._pg is not None:
            with contextlib.suppress(Exception):
                row = self._pg.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (self._db,)
                ).fetchone()
                self.peak_pg = max(self.peak_pg, int(row[0]))

    def take_peak_pg(self) -> int:
        """The most PostgreSQL connections seen since the last call."""
        self._last = 0.0
        self()
        peak, self.peak_pg = self.peak_pg, 0
        self.peak_pg_overall = max(self.peak_pg_overall, peak)
        return peak

    def close(self) -> None:
        if self._pg is not None:
            self._pg.close()


def settled_rss(root: int, seconds: float = 3.0) -> int:
    time.sleep(seconds)
    return tree_rss(root)


def connect_users(
    gens: Generators, kind: str, server: ServerProcess, users: Sequence[str], sampler: Sampler
) -> dict[str, Any]:
    parts = split(users, len(gens))
    replies = gens.call(
        [("connect", kind, "127.0.0.1", server.http_port, part) for part in parts], sampler
    )
    why: Counter[str] = Counter()
    for r in replies:
        why.update(r["why"])
    opened = sum(r["opened"] for r in replies)
    seconds = max(r["finished"] for r in replies) - min(r["started"] for r in replies)
    took = [t for r in replies for t in r["took"]]
    return {
        "attempted": len(users),
        "opened": opened,
        "errors": sum(r["errors"] for r in replies),
        "error_reasons": dict(why.most_common(5)),
        "seconds": round(seconds, 2),
        "per_second": round(opened / seconds, 1) if seconds > 0 else math.nan,
        "handshake": summarize_ms(took, (50, 99)),
    }


def phase_a(
    gens: Generators,
    kind: str,
    server: ServerProcess,
    users: Sequence[str],
    args: argparse.Namespace,
    sampler: Sampler,
) -> dict[str, Any]:
    warm, rest = users[: args.warmup], users[args.warmup :]
    warm_connect = connect_users(gens, kind, server, warm, sampler)
    rss_before = settled_rss(server.pid)
    print(f"  {kind}: {warm_connect['opened']} warm-up; RSS {rss_before / 2**20:.0f} MiB")
    usage = Usage(server.pids, gens.pids)
    connected = connect_users(gens, kind, server, rest, sampler)
    connect_usage = usage.done()
    print(
        f"  {kind}: opened {connected['opened']:,} in {connected['seconds']:.1f} s "
        f"({connected['per_second']:,.0f}/s), errors {connected['errors']} "
        f"{connected['error_reasons'] or ''}",
        flush=True,
    )
    rss_connected = settled_rss(server.pid)
    timeline: list[dict[str, Any]] = []
    usage, t0 = Usage(server.pids, gens.pids), time.monotonic()
    end = t0 + args.hold
    interval = Usage(server.pids, gens.pids)
    while True:
        now = time.monotonic()
        st = gens.status()
        rss = tree_rss(server.pid)
        load, interval = interval.done(), Usage(server.pids, gens.pids)
        timeline.append(
            {"t": round(now - t0, 1), "rss_mib": round(rss / 2**20, 1), **st, "usage": load}
        )
        if now >= end:
            break
        print(
            f"  {kind}: holding {now - t0:5.0f}/{args.hold:.0f} s: open {st['open']:,}, "
            f"drops {st['drops']}, RSS {rss / 2**20:,.0f} MiB",
            flush=True,
        )
        time.sleep(min(args.sample, max(0.0, end - time.monotonic())))
    hold_s = time.monotonic() - t0
    hold_usage = usage.done()
    st = timeline[-1]
    rss_held = tree_rss(server.pid)
    new = connected["opened"]
    per = (rss_held - rss_before) / new if new else math.nan
    return {
        "server": kind,
        "connections": warm_connect["opened"] + new,
        "warmup_connections": warm_connect["opened"],
        "connect": connected,
        "peak_pg_connections": sampler.take_peak_pg(),
        "connect_per_s": connected["per_second"],
        "handshake_p99_ms": connected["handshake"]["p99_ms"],
        "connect_errors": connected["errors"] + warm_connect["errors"],
        "connect_usage": connect_usage,
        "hold_s": round(hold_s, 1),
        "open_after_hold": st["open"],
        "drops": st["drops"],
        "drop_reasons": st["drop_reasons"],
        "rss_before_mib": round(rss_before / 2**20, 1),
        "rss_connected_mib": round(rss_connected / 2**20, 1),
        "rss_held_mib": round(rss_held / 2**20, 1),
        "kib_per_conn": round(per / 1024, 2),
        "kib_per_conn_at_connect": round((rss_connected - rss_before) / new / 1024, 2)
        if new
        else math.nan,
        "hold_server_cpu_pct": hold_usage.get("server_cpu_pct", math.nan),
        "hold_others_pct": hold_usage.get("others_pct", math.nan),
        "hold_usage": hold_usage,
        "processes": len(tree_pids(server.pid)),
        "timeline": timeline,
    }


def _frame(data: dict[str, Any], user: str = "*") -> str:
    """A frame shaped like Notify's ``notification`` event, for the bare server to send."""
    notification = {
        "id": str(uuid.uuid4()),
        "user_id": user,
        "type": "bench",
        "title": "t",
        "message": "m",
        "data": data,
        "priority": "normal",
        "read": False,
        "created_at": datetime.now(UTC).isoformat(),
    }
    return json.dumps({"type": "notification", "notification": notification}, separators=(",", ":"))


def phase_b(
    gens: Generators,
    kind: str,
    server: ServerProcess,
    args: argparse.Namespace,
    sampler: Sampler,
    channel: str,
) -> dict[str, Any]:
    import httpx
    import redis

    before = gens.status()
    expected = before["open"]
    marker = uuid.uuid4().hex
    gens.call(("expect", marker))
    usage = Usage(server.pids, gens.pids)
    fanned_out_at: float | None = None
    send_id = ""
    http = httpx.Client(
        base_url=server.base_url, headers={"authorization": f"Bearer {API_KEY}"}, timeout=60
    )
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()  # connected before the clock starts
    done = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
    done.subscribe(f"{channel}:done")  # the bare processes' reports
    try:
        t0 = time.time()
        if kind == "notify":
            body = {
                "topic": TOPIC,
                "type": "bench",
                "title": "t",
                "message": "m",
                "data": {"run": marker, "t": t0},
                "channels": args.fanout_channels.split(","),
            }
            r = http.post("/notifications/send", json=body)
            accepted_at = time.time()
            if r.status_code != 202:
                raise RuntimeError(f"topic send: HTTP {r.status_code}: {r.text[:200]}")
            send_id = r.json()["id"]
        else:
            text = _frame({"run": marker, "t": t0})
            client.publish(channel, json.dumps({"to": "*", "text": text}))
            accepted_at = time.time()
            fanned_out_at = accepted_at
        received, progress_at, last_poll = 0, time.time(), 0.0
        deadline = t0 + args.fanout_timeout
        while received < expected and time.time() < deadline:
            time.sleep(0.2)
            sampler()
            if fanned_out_at is None and time.time() - last_poll >= 0.5:
                last_poll = time.time()
                state = http.get(f"/topic-sends/{send_id}").json()
                if state.get("state") == "done":
                    fanned_out_at = time.time()
            count = sum(gens.call(("fanout_count",)))
            if count > received:
                received, progress_at = count, time.time()
            elif fanned_out_at is not None and time.time() - progress_at > args.stall:
                break  # nothing new for a while after everything was accepted
        elapsed = time.time() - t0
        written: list[dict[str, Any]] = []
        while kind == "bare" and len(written) < args.procs and time.time() < deadline:
            message = done.get_message(timeout=1.0)
            if message is not None and message.get("type") == "message":
                written.append(json.loads(message["data"]))
    finally:
        http.close()
        done.close()
        client.close()
    used = usage.done()
    times = sorted(t - t0 for part in gens.call(("fanout",)) for t in part)
    after = gens.status()
    last = times[-1] if times else math.nan
    return {
        "server": kind,
        "expected": expected,
        "received": len(times),
        "missing": expected - len(times),
        "accept_ms": round((accepted_at - t0) * 1000, 1),
        "fanned_out_s": round(fanned_out_at - t0, 2) if fanned_out_at else math.nan,
        "written_s": round(max(w["finished"] for w in written) - t0, 3) if written else math.nan,
        "written_by": [[w["connections"], round(w["seconds"], 3)] for w in written],
        "first_s": round(times[0], 3) if times else math.nan,
        "p50_s": round(percentile(times, 50), 3),
        "p99_s": round(percentile(times, 99), 3),
        "last_s": round(last, 3),
        "per_second": round(len(times) / last, 1) if times and last > 0 else math.nan,
        "elapsed_s": round(elapsed, 2),
        **used,
        "drops_during": after["drops"] - before["drops"],
        "peak_pg_connections": sampler.take_peak_pg(),
        "send_id": send_id,
    }


@dataclass(frozen=True)
class BareSendSpec:
    redis_url: str
    channel: str
    users: tuple[str, ...]
    rate: float
    total: int
    start_at: float
    max_in_flight: int
    warm: int


async def _bare_paced_send(spec: BareSendSpec) -> dict[str, Any]:
    """The bare server's sender: one Redis ``PUBLISH`` per message, paced like
    ``latency_bench``'s (absolute schedule, at most ``max_in_flight`` outstanding)."""
    import redis.asyncio as aioredis

    pool = aioredis.BlockingConnectionPool.from_url(spec.redis_url, max_connections=64, timeout=10)
    client = aioredis.Redis(connection_pool=pool)

    async def send_one(seq: int, t: float) -> None:
        user = spec.users[seq % len(spec.users)]
        text = _frame({"t": t, "seq": seq}, user)
        await client.publish(spec.channel, json.dumps({"to": user, "text": text}))

    try:
        return await paced(send_one, spec)
    finally:
        await client.aclose()
        await pool.aclose()


def _bare_sender(spec: BareSendSpec, out: mp.Queue[dict[str, Any]]) -> None:
    try:
        out.put(asyncio.run(_bare_paced_send(spec)))
    except BaseException as exc:
        out.put({"failed": repr(exc)})


def _sender_result(
    out: mp.Queue[dict[str, Any]], proc: BaseProcess, timeout: float, tick: Callable[[], None]
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tick()
        with contextlib.suppress(queue.Empty):
            result: dict[str, Any] = out.get(True, 0.5)
            return result
        if not proc.is_alive() and out.empty():
            raise RuntimeError(f"sender exited with {proc.exitcode} and no result")
    raise TimeoutError(f"no result from the sender within {timeout:.0f} s")


def phase_c(
    gens: Generators,
    kind: str,
    server: ServerProcess,
    args: argparse.Namespace,
    sampler: Sampler,
    channel: str,
) -> dict[str, Any]:
    users = tuple(f"lat{i:06d}" for i in range(args.latency_users))
    connected = connect_users(gens, kind, server, users, sampler)
    print(
        f"  {kind}: {connected['opened']:,} latency users connected in "
        f"{connected['seconds']:.1f} s, errors {connected['errors']}",
        flush=True,
    )
    gens.call(("latency_reset",))
    warm = int(args.latency_warmup * args.rate)
    total = warm + int(args.duration * args.rate)
    start_at = time.time() + 1.0
    ctx = mp.get_context("spawn")
    out: mp.Queue[dict[str, Any]] = ctx.Queue()
    if kind == "notify":
        spec: Any = SendSpec(
            args.latency_api,
            server.base_url,
            server.grpc_target,
            users,
            args.rate,
            total,
            start_at,
            args.max_in_flight,
            32,
            warm,
        )
        sender = ctx.Process(target=_sender, args=(spec, out))
    else:
        spec = BareSendSpec(
            REDIS_URL, channel, users, args.rate, total, start_at, args.max_in_flight, warm
        )
        sender = ctx.Process(target=_bare_sender, args=(spec, out))
    try:
        sender.start()
        while time.time() < start_at + warm / args.rate:
            time.sleep(0.05)
        usage, t0 = Usage(server.pids, gens.pids), time.monotonic()
        load = LoadSeries(server.pids, gens.pids)

        def tick() -> None:
            sampler()
            load.tick()

        result = _sender_result(out, sender, total / args.rate + 60, tick)
        elapsed = time.monotonic() - t0
        used = usage.done()
        if "failed" in result:
            raise RuntimeError(f"sender failed: {result['failed']}")
        expected = [s for s in result["ok"] if s >= warm]
        # late is not lost: wait while they keep coming, up to --drain-max
        deadline = time.monotonic() + args.drain_max
        arrived, progress_at = -1, time.monotonic()
        while time.monotonic() < deadline:
            count = sum(gens.call(("latency_count",)))
            if count >= len(result["ok"]):
                break
            if count > arrived:
                arrived, progress_at = count, time.monotonic()
            elif time.monotonic() - progress_at > args.drain:
                break
            time.sleep(0.5)
        drained_s = time.monotonic() - t0 - elapsed
    finally:
        sender.join(10)
        if sender.is_alive():
            sender.terminate()
            sender.join(5)
    got: dict[int, tuple[float, float]] = {}
    for part in gens.call(("latency",)):
        got.update(part)
    latencies = [got[s][0] for s in expected if s in got]
    after_created = [got[s][1] for s in expected if s in got and not math.isnan(got[s][1])]
    per_second: dict[int, list[float]] = {}
    for s in expected:
        if s in got:
            per_second.setdefault(int((s - warm) / args.rate), []).append(got[s][0])
    series = [
        {
            "second": sec,
            "received": len(v),
            "p50_ms": summarize_ms(v, (50,))["p50_ms"],
            "p99_ms": summarize_ms(v, (99,))["p99_ms"],
        }
        for sec, v in sorted(per_second.items())
    ]
    row: dict[str, Any] = {
        "server": kind,
        "users": connected["opened"],
        "rate": args.rate,
        **latency_columns(len(expected), latencies, after_created, result),
        "drained_s": round(drained_s, 1),
        "sender_cpu_pct": round(100 * result["cpu"] / elapsed, 1),
        **used,
        "worst_second_p99_ms": max((p["p99_ms"] for p in series), default=math.nan),
        "peak_pg_connections": sampler.take_peak_pg(),
        "per_second": series,
        "load_per_second": load.points,
    }
    if result["errors"]:
        row["first_error"] = result["errors"][0]
    return row


def run_server(
    kind: str, gens: Generators, args: argparse.Namespace, cpus: set[int] | None
) -> dict[str, Any]:
    phases = set(args.phases.split(","))
    users = [f"u{i:06d}" for i in range(args.connections)]
    channel = f"bare-ws-bench-{uuid.uuid4().hex[:8]}"
    out: dict[str, Any] = {"server": kind}
    with contextlib.ExitStack() as stack:
        if kind == "bare":
            server = stack.enter_context(bare_server(args.procs, channel, cpus))
        else:
            env = {
                "NOTIFY_EDGE_PROCESSES": str(args.edge_procs),
                "NOTIFY_DEDUP_WINDOW": "0",
                "NOTIFY_RATE_LIMITS": "inapp=1000000/1m",
            }
            helpers = [h for h in args.helpers.split(",") if h]
            server = stack.enter_context(
                notify_server("real", cpus, 120, extra_env=env, helpers=helpers)
            )
            for pid in server.pids:
                pin_tree(pid, cpus)
        out["processes"] = len(tree_pids(server.pid))
        print(f"{kind}: server pid {server.pid}, {out['processes']} processes", flush=True)
        sampler = Sampler(server.pid, server.database_url)
        stack.callback(sampler.close)
        if kind == "notify" and "b" in phases:
            out["subscribe_s"] = subscribe_all(server, users)
            print(f"  notify: {len(users):,} users subscribed in {out['subscribe_s']:.1f} s")
        if phases & {"a", "b"}:
            out["a"] = phase_a(gens, kind, server, users, args, sampler)
            print_table([out["a"]], A_COLUMNS)
        if "b" in phases:
            out["b"] = phase_b(gens, kind, server, args, sampler, channel)
            print_table([out["b"]], B_COLUMNS)
        closed = sum(gens.call(("close_all",), sampler))
        print(f"  {kind}: closed {closed:,} connections", flush=True)
        if "c" in phases:
            out["c"] = phase_c(gens, kind, server, args, sampler, channel)
            print_table([out["c"]], C_COLUMNS)
            gens.call(("close_all",), sampler)
        out["peak_rss_mib"] = round(sampler.peak_rss / 2**20, 1)
        out["peak_pg_connections"] = max(sampler.peak_pg_overall, sampler.take_peak_pg())
    return out


def subscribe_all(server: ServerProcess, users: Sequence[str]) -> float:
    import httpx

    started = time.monotonic()
    with httpx.Client(
        base_url=server.base_url, headers={"authorization": f"Bearer {API_KEY}"}, timeout=120
    ) as http:
        for i in range(0, len(users), 10_000):
            r = http.put(f"/topics/{TOPIC}/subscribers", json={"user_ids": users[i : i + 10_000]})
            if r.status_code != 200:
                raise RuntimeError(f"subscribe: HTTP {r.status_code}: {r.text[:200]}")
    return time.monotonic() - started


# --- report -------------------------------------------------------------------------------

A_COLUMNS = [
    "server",
    "connections",
    "connect_per_s",
    "handshake_p99_ms",
    "connect_errors",
    "hold_s",
    "open_after_hold",
    "drops",
    "rss_before_mib",
    "rss_held_mib",
    "kib_per_conn",
    "hold_server_cpu_pct",
    "hold_others_pct",
]
B_COLUMNS = [
    "server",
    "expected",
    "received",
    "missing",
    "accept_ms",
    "fanned_out_s",
    "written_s",
    "first_s",
    "p50_s",
    "p99_s",
    "last_s",
    "per_second",
    "server_cpu_pct",
    "machine_busy_pct",
    "others_pct",
]
C_COLUMNS = [
    "server",
    "users",
    "rate",
    "sent_ok",
    "lost",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "max_ms",
    "worst_second_p99_ms",
    "ack_p50_ms",
    "ack_p99_ms",
    "server_cpu_pct",
    "sender_cpu_pct",
    "machine_busy_pct",
    "others_pct",
]


def summary(runs: list[dict[str, Any]]) -> None:
    by = {r["server"]: r for r in runs}
    bare, ours = by.get("bare", {}), by.get("notify", {})
    for phase, columns in (("a", A_COLUMNS), ("b", B_COLUMNS), ("c", C_COLUMNS)):
        rows = [r[phase] for r in runs if phase in r]
        if rows:
            print(f"\n({phase})")
            print_table(rows, columns)
    if "a" in bare and "a" in ours:
        ratio = ours["a"]["kib_per_conn"] / bare["a"]["kib_per_conn"]
        a = ours["a"]
        met = ratio <= 1.3 and a["drops"] == 0 and a["connect_errors"] == 0
        print(
            f"(a) memory per connection: notify {a['kib_per_conn']:.1f} KiB = {ratio:.2f}x bare; "
            f"{a['connections']:,} held {a['hold_s']:.0f} s, {a['drops']} dropped: "
            f"{'met' if met else 'MISSED'} (target <= 1.3x, none dropped)"
        )
    if "b" in bare and "b" in ours:
        frac = ours["b"]["per_second"] / bare["b"]["per_second"]
        print(
            f"(b) fan-out rate: notify {ours['b']['per_second']:,.0f}/s vs bare "
            f"{bare['b']['per_second']:,.0f}/s = {100 * frac:.1f} %: "
            f"{'met' if frac >= 0.7 and ours['b']['missing'] == 0 else 'MISSED'} (target >= 70 %)"
        )
    if "c" in ours:
        c = ours["c"]
        print(
            f"(c) notify p50 {c['p50_ms']:.1f} / p99 {c['p99_ms']:.1f} ms at {c['rate']:g}/s with "
            f"{c['users']:,} users, {c['lost']} lost: "
            f"{'met' if c['p99_ms'] <= 50 and c['lost'] == 0 else 'MISSED'} (target p99 <= 50 ms)"
        )


def plot(runs: list[dict[str, Any]], path: Path, title: str) -> bool:
    """Per-second p50 and p99 of (c) for each server and, when recorded, below it the CPU
    that other people's work took meanwhile, as a PNG; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (.venv/bin/pip install matplotlib)")
        return False
    load_ax: Any = None
    if any(r.get("c", {}).get("load_per_second") for r in runs):
        fig, (ax, load_ax) = plt.subplots(
            2, 1, figsize=(9, 6), dpi=100, sharex=True, gridspec_kw={"height_ratios": [3, 1]}
        )
    else:
        fig, ax = plt.subplots(figsize=(9, 4.5), dpi=100)
    palettes = {"notify": ["tab:blue", "tab:cyan", "tab:purple"], "bare": ["tab:gray", "black"]}
    used: Counter[str] = Counter()
    rates = {r.get("c", {}).get("rate") for r in runs if r.get("c")}
    for run in runs:
        c = run.get("c", {})
        series = c.get("per_second") or []
        if not series:
            continue
        palette = palettes.get(run["server"], ["tab:red"])
        color = palette[used[run["server"]] % len(palette)]
        used[run["server"]] += 1
        label = "Notify" if run["server"] == "notify" else "bare websockets"
        if len(rates) > 1:
            label += f" {c['rate']:g}/s"
        xs = [p["second"] for p in series]
        ax.plot(xs, [p["p99_ms"] for p in series], color=color, label=f"{label} p99")
        ax.plot(xs, [p["p50_ms"] for p in series], color=color, ls="--", label=f"{label} p50")
        load = c.get("load_per_second") or []
        if load and load_ax is not None:
            load_ax.plot(
                [p["t"] for p in load],
                [p.get("others_pct", math.nan) for p in load],
                color=color,
                label=f"during {label}",
            )
    ax.axhline(50, color="tab:red", lw=0.8, ls=":", label="target p99 50 ms")
    ax.set_yscale("log")
    ax.set_ylabel("send → receipt, ms (log)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    bottom = ax if load_ax is None else load_ax
    bottom.set_xlabel("second of the measured sends (after warm-up)")
    if load_ax is not None:
        load_ax.set_ylabel("others' CPU,\n% of machine", fontsize=8)
        load_ax.set_ylim(0, 100)
        load_ax.grid(True, alpha=0.3)
        load_ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    print(f"plot written to {path}")
    return True


def plot_title(params: dict[str, Any]) -> str:
    rate = "" if math.isnan(params["rate"]) else f"{params['rate']:g}/s "
    pinned = "server on CPU 0" if params.get("pin") else "unpinned"
    return (
        f"send → WebSocket receipt, {rate}to {params['latency_users']:,} users "
        f"(Notify: {params['latency_api']} sends, {params['edge_procs']} edge processes; {pinned})"
    )


# --- main ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description="Idle connections, fan-out and latency at scale")
    parser.add_argument("--servers", default=",".join(SERVERS), help="bare,notify (in order)")
    parser.add_argument("--phases", default=",".join(PHASES), help="a,b,c")
    parser.add_argument("--connections", type=int, default=100_000, help="(a) and (b)")
    parser.add_argument("--warmup", type=int, default=1_000, help="of them, before the RSS")
    parser.add_argument("--hold", type=float, default=300.0, help="(a) seconds held")
    parser.add_argument("--sample", type=float, default=15.0, help="status every S s held")
    parser.add_argument("--gen-procs", type=int, default=8, help="load generator processes")
    parser.add_argument("--procs", type=int, default=8, help="bare server processes")
    parser.add_argument("--edge-procs", type=int, default=8, help="NOTIFY_EDGE_PROCESSES")
    parser.add_argument(
        "--helpers",
        default="",
        help="services run as further `notify serve` processes beside Notify's `notify up`, "
        "e.g. router (competing consumers; their CPU counts as the server's; (b), (c) only)",
    )
    parser.add_argument("--concurrency", type=int, default=4, help="opens per generator")
    parser.add_argument("--open-timeout", type=float, default=60.0)
    parser.add_argument("--fanout-channels", default="inapp")
    parser.add_argument("--fanout-timeout", type=float, default=900.0)
    parser.add_argument("--stall", type=float, default=30.0, help="(b) give up after S s idle")
    parser.add_argument("--latency-users", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=1_000.0, help="(c) sends per second")
    parser.add_argument("--duration", type=float, default=30.0, help="(c) measured seconds")
    parser.add_argument("--latency-warmup", type=float, default=5.0)
    parser.add_argument("--latency-api", choices=("grpc", "rest"), default="grpc")
    parser.add_argument("--max-in-flight", type=int, default=1_000)
    parser.add_argument("--drain", type=float, default=15.0, help="(c) S s with no arrival: lost")
    parser.add_argument("--drain-max", type=float, default=600.0, help="(c) longest wait after")
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="server on CPU 0; generators and sender on CPU 1",
    )
    parser.add_argument("--plot", default=str(BENCH_DIR / "latency-over-time.png"))
    parser.add_argument(
        "--replot", help="only draw the plot of (c) from these result files (comma-separated)"
    )
    parser.add_argument("--name", default="ws_scale")
    args = parser.parse_args()
    if args.replot:
        files = [json.loads(Path(f).read_text()) for f in args.replot.split(",") if f]
        drawn = [run for saved in files for run in saved["runs"] if "c" in run]
        params = dict(files[0]["params"])
        if len({run["c"]["rate"] for run in drawn}) > 1:
            params["rate"] = math.nan  # named per line instead
        plot(drawn, Path(args.plot), plot_title(params))
        return
    exit_on_sigterm()
    per_gen = math.ceil(max(args.connections, args.latency_users) / args.gen_procs)
    if per_gen > MAX_PER_GENERATOR:
        parser.error(f"{per_gen} connections per generator: use more --gen-procs")
    if args.gen_procs > 250:
        parser.error("--gen-procs: at most 250 (source addresses 127.0.0.2-251)")
    servers = [s for s in args.servers.split(",") if s]
    if "notify" in servers and args.connections / args.edge_procs > 0.95 * NOTIFY_MAX_PER_EDGE:
        parser.error(f"--edge-procs: {args.connections} connections need more than that")
    if args.helpers and "a" in args.phases.split(","):
        parser.error("--helpers: phase (a) reads the memory of notify up's processes only")
    cpus = cpu_count()
    pinned = args.pin and cpus > 1
    if pinned:
        pin(0, {1})  # generators and senders inherit it
    sharing = (
        f"{cpus} CPUs: server processes pinned to CPU 0; load generators and senders to "
        "CPU 1; PostgreSQL/Redis/RabbitMQ unpinned"
        if pinned
        else f"{cpus} CPUs, nothing pinned"
    )
    print(sharing)
    busy_before = background_load()
    gens = Generators(args.gen_procs, args.concurrency, args.open_timeout)
    runs: list[dict[str, Any]] = []
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    try:
        for kind in servers:
            runs.append(run_server(kind, gens, args, {0} if pinned else None))
            write_result(
                args.name,
                {
                    "params": vars(args),
                    "cpu_sharing": sharing,
                    "busy_before_pct": busy_before,
                    "started": started,
                    "runs": runs,
                },
            )
    finally:
        gens.stop()
    print()
    print(sharing + f"; machine {busy_before:.0f} % busy before the run")
    summary(runs)
    if "c" in args.phases and args.plot:
        plot(runs, Path(args.plot), plot_title(vars(args)))
    print(f"written {RESULTS_DIR / (args.name + '.json')}")


if __name__ == "__main__":
    main()
