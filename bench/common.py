"""Shared helpers of the benchmarks: servers in child processes, percentiles, results.

A server (Notify's ``notify up`` or the bare echo server) always runs as a separate
process, so the load generator never shares its event loop. On request the server is
pinned to one CPU (``os.sched_setaffinity``) and the load generator to the other; the
backing services (PostgreSQL, Redis, RabbitMQ) are system processes and are not pinned.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

API_KEY = "bench-producer-key-0001"
JWT_SECRET = "bench-jwt-secret-0123456789abcdef"
POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
BACKENDS = ("embedded", "real")


def exit_on_sigterm() -> None:
    """Turn SIGTERM into ``SystemExit`` so that every ``finally`` runs: servers stopped,
    the database dropped."""

    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))


def pin(pid: int, cpus: set[int] | None) -> None:
    """Restrict ``pid`` (and threads it starts later) to ``cpus``; ``None`` leaves it."""
    if cpus:
        os.sched_setaffinity(pid, cpus)


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system, all threads) used so far by process ``pid``."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_times() -> tuple[float, float, float]:
    """Machine-wide (busy, steal, total) CPU seconds from ``/proc/stat``, all CPUs summed."""
    with open("/proc/stat") as f:
        user, nice, system, idle, iowait, irq, softirq, steal = map(int, f.readline().split()[1:9])
    tick = os.sysconf("SC_CLK_TCK")
    busy = user + nice + system + irq + softirq
    return busy / tick, steal / tick, (busy + idle + iowait + steal) / tick


def machine_busy(before: tuple[float, float, float]) -> dict[str, float]:
    """Busy and stolen share of all CPUs since ``before`` (from :func:`cpu_times`), in %."""
    busy, steal, total = (a - b for a, b in zip(cpu_times(), before, strict=True))
    return {
        "machine_busy_pct": round(100 * busy / total, 1) if total else math.nan,
        "steal_pct": round(100 * steal / total, 1) if total else math.nan,
    }


@dataclass
class ServerProcess:
    """A server in a child process: its ports, its pid, its log file."""

    kind: str
    proc: subprocess.Popen[bytes]
    grpc_port: int
    http_port: int | None
    log: Path
    database_url: str = ""
    """Notify's database (empty for the echo server), for setting up data directly."""
    helpers: list[ServerProcess] = field(default_factory=list)
    """Further ``notify serve`` processes sharing this server's database and queues."""

    @property
    def pids(self) -> list[int]:
        """This process and its helpers."""
        return [self.pid] + [h.pid for h in self.helpers]

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.http_port}/ws"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def wait_ready(self, marker: str, timeout: float) -> None:
        """Wait until the child writes ``marker`` to its log (after it listens)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.kind} server exited with {self.proc.returncode}; "
                    f"log:\n{self.log.read_text()[-2000:]}"
                )
            if marker in self.log.read_text(errors="replace"):
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.kind} server did not come up within {timeout} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _spawn(
    argv: list[str], env: dict[str, str], log: Path, cpus: set[int] | None, cwd: Path
) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    try:
        pin(proc.pid, cpus)
    except OSError:
        proc.kill()
        proc.wait(5)
        raise
    return proc


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards; yields its URL."""
    import psycopg

    name = f"notify_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _cleanup_namespace(namespace: str) -> None:
    """Best effort: delete the Redis keys and the RabbitMQ queue of ``namespace``."""
    with contextlib.suppress(Exception):
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
    with contextlib.suppress(Exception):
        import pika

        from notify_core.constants import QUEUES, queue_name

        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        try:
            channel = connection.channel()
            for queue in QUEUES:
                channel.queue_delete(queue=queue_name(namespace, queue))
        finally:
            connection.close()


@contextlib.contextmanager
def notify_server(
    backend: str,
    cpus: set[int] | None = None,
    timeout: float = 60.0,
    node: str = "up",
    extra_env: Mapping[str, str] | None = None,
    helpers: Sequence[str] = (),
    python: str = sys.executable,
) -> Iterator[ServerProcess]:
    """``notify up`` (``node="up"``) or ``notify serve <node>`` in a child process on
    ``backend`` ("embedded" or "real"); ``serve`` gets ``notify migrate`` first.
    ``extra_env`` adds or overrides settings (``NOTIFY_SMTP_PORT``, ...). ``helpers``
    names services started as further ``notify serve <service>`` processes (each on its
    own ports, the same CPUs) once the server is up: competing consumers of its queues.
    ``python`` is the interpreter (another work tree's ``.venv/bin/python`` runs its code)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="notify-bench-")))
        namespace = f"bench{uuid.uuid4().hex[:12]}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFY_")} | {
            "NOTIFY_HOST": "127.0.0.1",
            "NOTIFY_HTTP_PORT": str(free_port()),
            "NOTIFY_GRPC_PORT": str(free_port()),
            "NOTIFY_API_KEYS": API_KEY,
            "NOTIFY_JWT_SECRET": JWT_SECRET,
            "NOTIFY_NAMESPACE": namespace,
            "NOTIFY_LOG_LEVEL": "WARNING",
            # Never drop a bench client as a slow consumer (the default 1,000 frames is
            # far above the 5 frames/s per user of the latency benchmark anyway).
            "NOTIFY_WS_SEND_QUEUE": "100000",
            # Every send of a benchmark is its own notification: no dedup merging repeated
            # types into one, no in-app rate limit (default 100/min per user) holding them.
            "NOTIFY_DEDUP_WINDOW": "0",
            "NOTIFY_RATE_LIMITS": "inapp=100000000/1h",
        }
        env.update(extra_env or {})
        if backend == "embedded":
            env["NOTIFY_DATABASE_URL"] = f"sqlite:///{tmp / 'notify.db'}"
        else:
            env["NOTIFY_DATABASE_URL"] = stack.enter_context(postgres_database())
            env["NOTIFY_REDIS_URL"] = REDIS_URL
            env["NOTIFY_AMQP_URL"] = AMQP_URL
            stack.callback(_cleanup_namespace, namespace)
        log = BENCH_DIR / "results" / f"server-{backend}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("")
        argv = [python, "-m", "notify_app.cli", "up"]
        if node != "up":
            subprocess.run(
                [python, "-m", "notify_app.cli", "migrate"],
                env=env,
                cwd=tmp,
                check=True,
                capture_output=True,
                timeout=timeout,
            )
            argv = [python, "-m", "notify_app.cli", "serve", node]
        server = ServerProcess(
            backend,
            _spawn(argv, env, log, cpus, cwd=tmp),  # cwd: no stray .env is read
            int(env["NOTIFY_GRPC_PORT"]),
            int(env["NOTIFY_HTTP_PORT"]),
            log,
            env["NOTIFY_DATABASE_URL"],
        )
        stack.callback(server.stop)  # runs before the database is dropped
        server.wait_ready(" up — http", timeout)
        for i, service in enumerate(helpers):
            own = env | {"NOTIFY_HTTP_PORT": str(free_port()), "NOTIFY_GRPC_PORT": str(free_port())}
            helper_log = log.with_name(f"server-{backend}-{service}-{i}.log")
            helper_log.write_text("")
            argv = [python, "-m", "notify_app.cli", "serve", service]
            helper = ServerProcess(
                f"{backend} {service}",
                _spawn(argv, own, helper_log, cpus, cwd=tmp),
                int(own["NOTIFY_GRPC_PORT"]),
                int(own["NOTIFY_HTTP_PORT"]),
                helper_log,
                own["NOTIFY_DATABASE_URL"],
            )
            stack.callback(helper.stop)
            helper.wait_ready(" up — http", timeout)
            server.helpers.append(helper)
        yield server


@contextlib.contextmanager
def echo_server(cpus: set[int] | None = None, timeout: float = 30.0) -> Iterator[ServerProcess]:
    """``bench/echo_server.py`` in a child process."""
    port = free_port()
    log = RESULTS_DIR / "server-echo.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    argv = [sys.executable, str(BENCH_DIR / "echo_server.py"), "--port", str(port)]
    server = ServerProcess(
        "echo", _spawn(argv, dict(os.environ), log, cpus, cwd=BENCH_DIR), port, None, log
    )
    try:
        server.wait_ready("echo: listening", timeout)
        yield server
    finally:
        server.stop()


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0..100, nearest rank) of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarize_ms(
    latencies_s: Sequence[float], ps: Sequence[float] = (50, 90, 99)
) -> dict[str, float]:
    """Percentiles and max of latencies given in seconds, answered in milliseconds."""
    values = sorted(latencies_s)
    out = {f"p{p:g}_ms": round(percentile(values, p) * 1000, 2) for p in ps}
    out["max_ms"] = round(values[-1] * 1000, 2) if values else math.nan
    return out


def background_load(seconds: float = 2.0) -> float:
    """Busy % of all CPUs over ``seconds`` before a run; warns when others use the machine."""
    before = cpu_times()
    time.sleep(seconds)
    busy = machine_busy(before)["machine_busy_pct"]
    if busy > 15:
        print(
            f"WARNING: the machine is already {busy:.0f} % busy before the run; other "
            "processes share the 2 CPUs and the numbers will be lower"
        )
    return busy


def git_state() -> dict[str, Any]:
    """The code under test: HEAD and the files changed in the work tree."""

    def run(*argv: str) -> str:
        try:
            return subprocess.run(
                ["git", *argv], cwd=ROOT, capture_output=True, text=True, timeout=10
            ).stdout.rstrip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    return {
        "head": run("rev-parse", "--short", "HEAD"),
        "changed": [
            line[3:]
            for line in run("status", "--porcelain").splitlines()
            if not line[3:].startswith("bench/")
        ],
    }


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    body = {
        "name": name,
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "git": git_state(),
        **data,
    }
    path.write_text(json.dumps(body, indent=2) + "\n")
    return path


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    cells = [[_fmt(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in cells:
        print("  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:,.1f}" if value >= 100 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


class Pacing(Protocol):
    """How a paced sender sends: ``total`` sends at ``rate`` per second from ``start_at``
    (``time.time()``), the first ``warm`` not timed, at most ``max_in_flight`` outstanding."""

    @property
    def total(self) -> int: ...
    @property
    def rate(self) -> float: ...
    @property
    def start_at(self) -> float: ...
    @property
    def warm(self) -> int: ...
    @property
    def max_in_flight(self) -> int: ...


async def paced(
    send: Callable[[int, float], Awaitable[None]], spec: Pacing, drain: float = 15.0
) -> dict[str, Any]:
    """Call ``send(seq, t)`` for ``seq`` in ``range(spec.total)`` on an absolute schedule
    (``start_at + seq / rate``, ``time.time()`` clock: no drift), ``t`` taken just before.
    Beyond ``max_in_flight`` calls outstanding a send is *skipped* and counted (the server
    does not keep up: do not queue without bound). Calls ``seq < warm`` are not timed.
    Answers the sequence numbers sent, the call times (s) after warm-up, errors, skipped,
    the largest lag behind the schedule and this process's CPU seconds."""
    total, rate, start_at = spec.total, spec.rate, spec.start_at
    warm, max_in_flight = spec.warm, spec.max_in_flight
    ok: list[int] = []
    acks: list[float] = []
    errors: list[str] = []
    skipped = 0
    max_lag = 0.0
    in_flight: set[asyncio.Task[None]] = set()

    async def one(seq: int) -> None:
        t = time.time()
        try:
            await send(seq, t)
        except Exception as exc:  # counted, reported
            errors.append(repr(exc)[:200])
            return
        if seq >= warm:
            acks.append(time.time() - t)
        ok.append(seq)

    loop = asyncio.get_running_loop()
    start = loop.time() + (start_at - time.time())
    cpu0 = time.process_time()
    try:
        for seq in range(total):
            due = start + seq / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if seq >= warm:
                max_lag = max(max_lag, loop.time() - due)
            if len(in_flight) >= max_in_flight:
                skipped += 1
                continue
            task = asyncio.create_task(one(seq))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        if in_flight:
            await asyncio.wait(in_flight, timeout=drain)
    finally:
        for task in in_flight:
            task.cancel()
    return {
        "ok": ok,
        "acks": acks,
        "errors": errors,
        "skipped": skipped,
        "max_lag": max_lag,
        "cpu": time.process_time() - cpu0,
    }


def latency_columns(
    sent: int, latencies: Sequence[float], after_created: Sequence[float], result: dict[str, Any]
) -> dict[str, Any]:
    """The columns latency benchmarks share: what was sent and received, end-to-end and
    after-created percentiles, and the sender's call times, errors, skips and lag
    (``result`` is what :func:`paced` answered)."""
    return {
        "sent_ok": sent,
        "received": len(latencies),
        "lost": sent - len(latencies),
        "send_errors": len(result["errors"]),
        "skipped": result["skipped"],
        **summarize_ms(latencies, (50, 90, 99)),
        "after_created_p50_ms": summarize_ms(after_created, (50,))["p50_ms"],
        "after_created_p99_ms": summarize_ms(after_created, (99,))["p99_ms"],
        "ack_p50_ms": summarize_ms(result["acks"], (50,))["p50_ms"],
        "ack_p99_ms": summarize_ms(result["acks"], (99,))["p99_ms"],
        "sender_max_lag_ms": round(result["max_lag"] * 1000, 2),
    }
