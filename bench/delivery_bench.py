"""Delivery throughput: emails and webhooks per second through the whole pipeline.

Per backend, ``notify up`` runs as its own process, configured to send email through a
local SMTP server and webhooks to a local HTTP receiver (``bench/sinks.py``, each its own
process, so their CPU is visible and separate). This process sends notifications (gRPC
``IngestService.Send`` or REST, ``--concurrency`` calls in flight) to users who are
offline and have an email address (the email run) or a webhook URL and no address (the
webhook run); each notification then goes send → ingest → router → delivery worker →
SMTP server / webhook receiver. Measured: from the first send to the last message the
receiver got (``per_s``), and from the first send to the last accepted call
(``accept_per_s``). Every message is counted by its Message-ID / webhook-id, so
duplicates and missing ones are reported too.

The baselines, in the same run against the same receivers: a bare sender in its own
process, on the core the node gets, with as many connections and sends in flight as the
node's SMTP pool (``aiosmtplib``, each message built with the stdlib ``email`` package:
multipart text + HTML, Message-ID, Date, List-Unsubscribe) or its webhook concurrency
(one ``httpx.AsyncClient``, a signed JSON POST per message), sending as many messages.

Rate limits are lifted and dedup is off (``NOTIFY_RATE_LIMITS``, ``NOTIFY_DEDUP_WINDOW=0``);
``--smtp-pool`` and ``--delivery-concurrency`` set ``NOTIFY_SMTP_POOL`` and
``NOTIFY_DELIVERY_CONCURRENCY``. The users' preferences are written straight into the
node's database before the run (the preference API accepts only https webhook URLs).
With ``--profile``, ``py-spy`` samples the node during each measured run (GIL holders only,
100/s, non-blocking); the top frames and the share of each area (:data:`AREAS`) are
printed, the raw stacks written to ``bench/results/<name>-profile-<backend>-<channel>.txt``.

With ``--pin`` (the default) the node and the baseline senders run on CPU 0; this process
(the producer), the SMTP server and the webhook receiver on CPU 1; PostgreSQL, Redis and
RabbitMQ are not pinned.

    .venv/bin/python bench/delivery_bench.py --messages 10000
    .venv/bin/python bench/delivery_bench.py --backends embedded --channels email --profile
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import multiprocessing as mp
import os
import queue
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

from common import (
    API_KEY,
    BACKENDS,
    BENCH_DIR,
    RESULTS_DIR,
    ROOT,
    ServerProcess,
    _spawn,
    background_load,
    cpu_count,
    cpu_times,
    exit_on_sigterm,
    free_port,
    machine_busy,
    notify_server,
    pin,
    print_table,
    process_cpu_seconds,
    write_result,
)
from sinks import ask

from notify_core.constants import SMTP_POOL_DEFAULT

SENDER = "Notify <no-reply@bench.test>"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"delivery-bench-secret-0123456789").decode()
TITLE = "Order {n} has shipped"
MESSAGE = (
    "Hello! Your order {n} has shipped and should arrive on Thursday.\n"
    "Track it any time from your account page. Thank you for shopping with us."
)
LIFTED = 100_000_000
"""Per user and channel: far more than any run sends."""


# -- receivers --------------------------------------------------------------------------


@dataclass
class Sink:
    """A receiver from ``bench/sinks.py`` in its own process."""

    kind: str
    proc: subprocess.Popen[bytes]
    port: int
    control_port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def stats(self) -> dict[str, Any]:
        return await ask(self.control_port)

    async def reset(self) -> None:
        await ask(self.control_port, "reset")


@contextlib.contextmanager
def sink(kind: str, cpus: set[int] | None, timeout: float = 20.0) -> Iterator[Sink]:
    port, control = free_port(), free_port()
    log = RESULTS_DIR / f"sink-{kind}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    argv = [sys.executable, str(BENCH_DIR / "sinks.py"), kind, "--port", str(port)]
    argv += ["--control-port", str(control)]
    proc = _spawn(argv, dict(os.environ), log, cpus, cwd=BENCH_DIR)
    server = ServerProcess(f"{kind}-sink", proc, control, port, log)
    try:
        server.wait_ready(f"{kind}-sink: listening", timeout)
        yield Sink(kind, proc, port, control, log)
    finally:
        server.stop()


async def wait_received(target: Sink, expected: int, stall: float) -> dict[str, Any]:
    """The receiver's stats once it holds ``expected`` distinct messages, or once nothing
    new arrived for ``stall`` seconds."""
    last, changed = -1, time.monotonic()
    while True:
        stats = await target.stats()
        if stats["unique"] >= expected:
            return stats
        if stats["unique"] != last:
            last, changed = stats["unique"], time.monotonic()
        elif time.monotonic() - changed > stall:
            return stats
        await asyncio.sleep(0.05)


# -- the producer (this process) --------------------------------------------------------


Send = Callable[[Sequence[int]], Awaitable[None]]
"""Sends notifications ``numbers``: one call (``len(numbers)`` is the batch size)."""


@contextlib.asynccontextmanager
async def producer(server: ServerProcess, api: str, users: Sequence[str], concurrency: int) -> Any:
    """A ``send(numbers)`` that sends each notification ``n`` to user ``n mod len(users)``:
    ``Send`` (gRPC) or ``POST /notifications/send`` (REST) one at a time, ``SendBatch``
    (grpc-batch) in one call."""
    if api in ("grpc", "grpc-batch"):
        import grpc
        from notify.v1 import ingest_pb2, ingest_pb2_grpc

        channels = [grpc.aio.insecure_channel(server.grpc_target) for _ in range(2)]
        stubs = [ingest_pb2_grpc.IngestServiceStub(c) for c in channels]
        md = (("authorization", f"Bearer {API_KEY}"),)

        def request(n: int) -> Any:
            return ingest_pb2.SendRequest(
                user_id=users[n % len(users)],
                type="order",
                title=TITLE.format(n=n),
                message=MESSAGE.format(n=n),
            )

        async def send(numbers: Sequence[int]) -> None:
            stub = stubs[numbers[0] % len(stubs)]
            if api == "grpc":
                (n,) = numbers
                await stub.Send(request(n), metadata=md, timeout=60)
                return
            batch = ingest_pb2.SendBatchRequest(notifications=[request(n) for n in numbers])
            reply = await stub.SendBatch(batch, metadata=md, timeout=60)
            if len(reply.ids) != len(numbers):
                raise RuntimeError(f"SendBatch answered {len(reply.ids)} ids for {len(numbers)}")

        try:
            yield send
        finally:
            for c in channels:
                await c.close()
        return

    import httpx

    # One single-connection client per call in flight (see README: one client with many
    # connections spends its CPU scanning the pool).
    free: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
    clients = [
        httpx.AsyncClient(
            base_url=server.base_url,
            timeout=60,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )
        for _ in range(concurrency)
    ]
    for c in clients:
        free.put_nowait(c)
    headers = {"authorization": f"Bearer {API_KEY}"}

    async def post(numbers: Sequence[int]) -> None:
        (n,) = numbers
        body = {
            "user_id": users[n % len(users)],
            "type": "order",
            "title": TITLE.format(n=n),
            "message": MESSAGE.format(n=n),
        }
        client = await free.get()
        try:
            r = await client.post("/notifications/send", json=body, headers=headers)
        finally:
            free.put_nowait(client)
        if r.status_code != 202:
            raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")

    try:
        yield post
    finally:
        for c in clients:
            await c.aclose()


async def send_many(
    send: Send, first: int, count: int, concurrency: int, batch: int = 1
) -> dict[str, Any]:
    """Send notifications ``first .. first+count-1`` with ``concurrency`` calls of ``batch``
    notifications in flight."""
    numbers = range(first, first + count)
    calls = iter(numbers[i : i + batch] for i in range(0, count, batch))
    errors: list[str] = []
    ok = 0

    async def worker() -> None:
        nonlocal ok
        for call in calls:
            try:
                await send(call)
            except Exception as exc:  # counted and reported
                errors.append(repr(exc)[:200])
            else:
                ok += len(call)

    start = time.time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"first_send": start, "last_ack": time.time(), "ok": ok, "errors": errors}


# -- profiling --------------------------------------------------------------------------


class Profiler:
    """``py-spy record`` on a pid until :meth:`stop` (SIGINT makes it write its file)."""

    def __init__(self, pid: int, out: Path, rate: int = 100) -> None:
        exe = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which(
            "py-spy"
        )
        if exe is None:
            raise RuntimeError("py-spy is not installed: .venv/bin/pip install py-spy")
        self.out = out
        self.rate = rate
        self.started = time.monotonic()
        argv = [exe, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw"]
        argv += ["--gil", "--nonblocking", "--output", str(out)]
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )

    def stop(self) -> float:
        """Stop sampling; answer the seconds sampled."""
        seconds = time.monotonic() - self.started
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return seconds


_PACKAGES = (
    "notify_core/",
    "ingest_svc/",
    "router_svc/",
    "delivery_svc/",
    "preference_svc/",
    "realtime_svc/",
    "template_svc/",
    "digest_svc/",
)


def _frame(raw: str) -> str:
    """``func (path:line)`` → ``func (short/path)``, without the line number."""
    name, _, where = raw.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in (f"{ROOT}/", "site-packages/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


AREAS = (
    ("stdlib email: MIME build, address parsing", ("(email/",)),
    ("SMTP client (aiosmtplib)", ("(aiosmtplib/",)),
    ("webhook client (httpx, httpcore)", ("(httpx/", "(httpcore/")),
    ("router", ("(router_svc/",)),
    ("ingest", ("(ingest_svc/",)),
    ("delivery worker: claim, record, ack, contacts", ("(delivery_svc/",)),
    ("SQLAlchemy, database drivers", ("(sqlalchemy/", "(aiosqlite/", "(psycopg")),
    ("queue, cache (pika, redis)", ("(notify_core/queue/", "(pika/", "(redis/")),
    ("gRPC", ("(grpc", "(notify/v1/")),
    ("other Notify code", tuple(f"({p}" for p in _PACKAGES)),
)
"""Where a sample goes: the first area with a frame anywhere on its stack."""


def summarize_profile(
    path: Path,
    seconds: float,
    rate: int,
    top: int = 10,
    areas_of: Sequence[tuple[str, tuple[str, ...]]] = AREAS,
) -> dict[str, Any]:
    """Self time per frame, inclusive time per Notify frame and time per area (``areas_of``,
    by default :data:`AREAS`; the rest is the event loop itself), as % of the samples
    holding the GIL."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";") if " (" in f]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        joined = ";".join(f for f in frames if "(notify_app/cli.py" not in f)
        area = next(
            (name for name, needles in areas_of if any(n in joined for n in needles)),
            "event loop, no frame of the above",
        )
        areas[area] += count
        for f in set(frames):
            if any(f"({p}" in f for p in _PACKAGES):
                inclusive[f] += count

    def share(counter: Counter[str]) -> list[tuple[str, float]]:
        return (
            [(f, round(100 * c / total, 1)) for f, c in counter.most_common(top)] if total else []
        )

    return {
        "samples_with_gil": total,
        "gil_busy_pct": round(100 * total / (seconds * rate), 1) if seconds else None,
        "top_self": share(own),
        "top_notify_inclusive": share(inclusive),
        "by_area": share(areas),
    }


# -- the bare baselines (a child process) -----------------------------------------------


@dataclass(frozen=True)
class BareSpec:
    kind: str  # "email" or "webhook"
    port: int
    connections: int
    total: int
    warmup: int
    cpus: frozenset[int] | None
    stdlib_mime: bool = False


def _bare_parts(n: int) -> tuple[str, str, str, str]:
    """Subject, text, HTML (with an open pixel) and List-Unsubscribe URL of message ``n``."""
    title, body = TITLE.format(n=n), MESSAGE.format(n=n)
    html_body = body.replace("\n", "<br>\n")
    pixel = f'<img src="http://127.0.0.1:8080/t/o/{uuid.uuid4().hex}" width="1" height="1">'
    html = f"<!doctype html><html><body><h1>{title}</h1><p>{html_body}</p>{pixel}</body></html>"
    url = f"http://127.0.0.1:8080/unsubscribe/{uuid.uuid4().hex}{uuid.uuid4().hex}"
    return title, f"{title}\n\n{body}\n", html, url


def bare_email_stdlib(n: int) -> bytes:
    """Message ``n`` built with the stdlib ``email`` package (``EmailMessage``)."""
    title, text, html, url = _bare_parts(n)
    message = EmailMessage(policy=SMTP)
    message["From"] = SENDER
    message["To"] = f"bare-{n % 1000}@example.com"
    message["Subject"] = title
    message["Message-ID"] = f"<bare-{n}.email@bench.test>"
    message["Date"] = format_datetime(datetime.now(UTC))
    message["List-Unsubscribe"] = f"<{url}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message.as_bytes()


def bare_email(n: int) -> bytes:
    """Message ``n`` written directly: the same headers and multipart/alternative layout
    (text, then HTML; 7bit, as these bodies are ASCII in short lines)."""
    title, text, html, url = _bare_parts(n)
    boundary = f"=============={uuid.uuid4().int % 10**19:019d}=="
    crlf = "\r\n"
    return (
        f"Message-ID: <bare-{n}.email@bench.test>\r\n"
        f"Date: {format_datetime(datetime.now(UTC))}\r\n"
        f"From: {SENDER}\r\nTo: bare-{n % 1000}@example.com\r\nSubject: {title}\r\n"
        f"List-Unsubscribe: <{url}>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        f'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="{boundary}"\r\n'
        f'\r\n--{boundary}\r\nContent-Type: text/plain; charset="utf-8"\r\n'
        f"Content-Transfer-Encoding: 7bit\r\n\r\n{text.replace(chr(10), crlf)}\r\n"
        f'--{boundary}\r\nContent-Type: text/html; charset="utf-8"\r\n'
        f"Content-Transfer-Encoding: 7bit\r\n\r\n{html.replace(chr(10), crlf)}\r\n\r\n"
        f"--{boundary}--\r\n"
    ).encode("ascii")


async def _bare_email_sender(spec: BareSpec) -> tuple[Callable[[int, int], Awaitable[None]], Any]:
    import aiosmtplib

    clients = []
    for _ in range(spec.connections):
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=spec.port, start_tls=False)
        await client.connect()
        clients.append(client)
    sender = "no-reply@bench.test"
    build = bare_email_stdlib if spec.stdlib_mime else bare_email

    async def send(n: int, w: int) -> None:
        await clients[w].sendmail(sender, [f"bare-{n % 1000}@example.com"], build(n))

    async def close() -> None:
        for client in clients:
            with contextlib.suppress(Exception):
                await client.quit()

    return send, close


async def _bare_webhook_sender(
    spec: BareSpec,
) -> tuple[Callable[[int, int], Awaitable[None]], Any]:
    import httpx

    key = base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_"))
    client = httpx.AsyncClient(
        timeout=30,
        limits=httpx.Limits(
            max_connections=spec.connections, max_keepalive_connections=spec.connections
        ),
    )
    url = f"http://127.0.0.1:{spec.port}/hook"

    async def send(n: int, w: int) -> None:
        message_id = f"bare-{n}"
        body = json.dumps(
            {
                "type": "notification.order",
                "timestamp": time.time(),
                "data": {"id": message_id, "title": TITLE.format(n=n), "message": MESSAGE},
            },
            separators=(",", ":"),
        ).encode()
        ts = int(time.time())
        digest = hmac.new(key, f"{message_id}.{ts}.".encode() + body, hashlib.sha256).digest()
        r = await client.post(
            url,
            content=body,
            headers={
                "content-type": "application/json",
                "webhook-id": message_id,
                "webhook-timestamp": str(ts),
                "webhook-signature": "v1," + base64.b64encode(digest).decode(),
            },
        )
        r.raise_for_status()

    return send, client.aclose


async def _bare_run(spec: BareSpec, go: Event, out: mp.Queue[dict[str, Any]]) -> dict[str, Any]:
    maker = _bare_email_sender if spec.kind == "email" else _bare_webhook_sender
    send, close = await maker(spec)
    numbers: Iterator[int] = iter(())

    async def worker(w: int) -> None:
        for n in numbers:
            await send(n, w)

    try:
        numbers = iter(range(spec.warmup))
        await asyncio.gather(*(worker(w) for w in range(spec.connections)))
        out.put({"ready": True})
        if not await asyncio.to_thread(go.wait, 300):
            raise TimeoutError("no go from the bench")
        numbers = itertools.islice(itertools.count(spec.warmup), spec.total)
        cpu0, start = time.process_time(), time.time()
        await asyncio.gather(*(worker(w) for w in range(spec.connections)))
        end, cpu1 = time.time(), time.process_time()
    finally:
        await close()
    return {"first_send": start, "last_ack": end, "cpu": cpu1 - cpu0, "ok": spec.total}


def _bare(spec: BareSpec, go: Event, out: mp.Queue[dict[str, Any]]) -> None:
    pin(0, set(spec.cpus) if spec.cpus else None)
    try:
        out.put(asyncio.run(_bare_run(spec, go, out)))
    except BaseException as exc:
        out.put({"failed": repr(exc)})


def _get(out: mp.Queue[dict[str, Any]], timeout: float) -> dict[str, Any]:
    try:
        got = out.get(timeout=timeout)
    except queue.Empty:
        raise TimeoutError(f"no answer from the baseline sender within {timeout:.0f} s") from None
    if "failed" in got:
        raise RuntimeError(f"baseline sender failed: {got['failed']}")
    return got


async def measure_bare(
    target: Sink, args: argparse.Namespace, cpus: set[int] | None
) -> dict[str, Any]:
    connections = args.smtp_pool if target.kind == "smtp" else _normal_concurrency(args)
    kind = "email" if target.kind == "smtp" else "webhook"
    spec = BareSpec(
        kind,
        target.port,
        connections,
        args.messages,
        args.warmup,
        frozenset(cpus) if cpus else None,
        args.bare_mime == "stdlib",
    )
    ctx = mp.get_context("spawn")
    go = ctx.Event()
    out: mp.Queue[dict[str, Any]] = ctx.Queue()
    proc = ctx.Process(target=_bare, args=(spec, go, out))
    await target.reset()
    proc.start()
    try:
        await asyncio.to_thread(_get, out, 120)
        await wait_received(target, args.warmup, args.stall)
        await target.reset()
        samples = _Samples([proc.pid or 0], target.pid)
        go.set()
        stats = await wait_received(target, args.messages, args.stall)
        usage = samples.take()
        result = await asyncio.to_thread(_get, out, 60)
    finally:
        go.set()
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join(5)
    what = f"aiosmtplib, {args.bare_mime} MIME" if kind == "email" else "httpx"
    return _row(kind, f"baseline ({what})", "-", result, stats, usage, args.messages, connections)


# -- the pipeline -----------------------------------------------------------------------


class _Samples:
    """CPU of the node's processes (or the baseline sender), the receiver, this process
    and the machine."""

    def __init__(self, server_pids: Sequence[int], sink_pid: int) -> None:
        self.server_pids = list(server_pids)
        self.sink_pid = sink_pid
        self.start = time.monotonic()
        self.server_cpu = self._server()
        self.sink_cpu = process_cpu_seconds(sink_pid)
        self.own = time.process_time()
        self.machine = cpu_times()

    def _server(self) -> float:
        return sum(process_cpu_seconds(p) for p in self.server_pids)

    def take(self) -> dict[str, float]:
        elapsed = time.monotonic() - self.start
        server = self._server() - self.server_cpu
        receiver = process_cpu_seconds(self.sink_pid) - self.sink_cpu
        return {
            "server_cpu_pct": round(100 * server / elapsed, 1),
            "sink_cpu_pct": round(100 * receiver / elapsed, 1),
            "gen_cpu_pct": round(100 * (time.process_time() - self.own) / elapsed, 1),
            **machine_busy(self.machine),
        }


def _row(
    kind: str,
    server: str,
    api: str,
    sent: dict[str, Any],
    stats: dict[str, Any],
    usage: dict[str, float],
    expected: int,
    in_flight: int,
) -> dict[str, Any]:
    seconds = stats["last_at"] - sent["first_send"] if stats["received"] else float("nan")
    accept = sent["last_ack"] - sent["first_send"]
    row: dict[str, Any] = {
        "what": kind,
        "server": server,
        "api": api,
        "in_flight": in_flight,
        "sent": sent["ok"],
        "unique": stats["unique"],
        "missing": expected - stats["unique"],
        "dup": stats["received"] - stats["unique"],
        "seconds": round(seconds, 2),
        "per_s": round(stats["unique"] / seconds, 1) if seconds > 0 else float("nan"),
        "accept_per_s": round(sent["ok"] / accept, 1) if accept > 0 else float("nan"),
        **usage,
    }
    if sent.get("errors"):
        row["send_errors"] = len(sent["errors"])
        row["first_error"] = sent["errors"][0]
    return row


def _batch(args: argparse.Namespace) -> int:
    return int(args.batch) if args.api == "grpc-batch" else 1


def _normal_concurrency(args: argparse.Namespace) -> int:
    from notify_core.config import DELIVERY_CONCURRENCY

    for part in args.delivery_concurrency.split(","):
        key, _, value = part.partition("=")
        if key.strip() == "normal":
            return int(value)
    return DELIVERY_CONCURRENCY.default["normal"]  # the node's default


def set_preferences(database_url: str, rows: list[dict[str, Any]]) -> None:
    """Write the users' preferences into the node's database, in one statement."""
    import sqlalchemy as sa

    from notify_core.db.schema import notification_preferences

    url = database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(notification_preferences.insert(), rows)
    finally:
        engine.dispose()


def _users(prefix: str, count: int, **fields: Callable[[str], str]) -> list[dict[str, Any]]:
    rows = []
    for i in range(count):
        user = f"{prefix}-{i}"
        row: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "user_id": user,
            "email_address": None,
            "webhook_url": None,
        }
        row.update({column: make(user) for column, make in fields.items()})
        rows.append(row)
    return rows


async def measure_pipeline(
    server: ServerProcess,
    target: Sink,
    users: Sequence[str],
    args: argparse.Namespace,
    first: int,
    profile_to: Path | None,
) -> dict[str, Any]:
    kind = "email" if target.kind == "smtp" else "webhook"
    async with producer(server, args.api, users, args.concurrency) as send:
        await target.reset()
        warm = await send_many(send, first, args.warmup, args.concurrency, _batch(args))
        if warm["errors"]:
            raise RuntimeError(f"warm-up sends failed: {warm['errors'][0]}")
        got = await wait_received(target, args.warmup, args.stall)
        if got["unique"] < args.warmup:
            raise RuntimeError(
                f"only {got['unique']} of {args.warmup} warm-up {kind}s arrived; see {server.log}"
            )
        await target.reset()
        profiler = Profiler(server.pid, profile_to) if profile_to else None
        samples = _Samples(server.pids, target.pid)
        sending = asyncio.create_task(
            send_many(send, first + args.warmup, args.messages, args.concurrency, _batch(args))
        )
        stats = await wait_received(target, args.messages, args.stall)
        usage = samples.take()
        sampled = profiler.stop() if profiler else 0.0
        sent = await sending
    row = _row(
        kind,
        server.kind + "".join(f" + {h.kind.split()[-1]}" for h in server.helpers),
        args.api,
        sent,
        stats,
        usage,
        args.messages,
        _normal_concurrency(args) if kind == "webhook" else args.smtp_pool,
    )
    if profiler is not None:
        row["profile"] = summarize_profile(profiler.out, sampled, profiler.rate)
    return row


def node_env(smtp: Sink | None, args: argparse.Namespace) -> dict[str, str]:
    limits = ",".join(f"{c}={LIFTED}/1h" for c in ("email", "inapp", "push", "webhook"))
    env = {
        "NOTIFY_EMAIL_FROM": SENDER,
        "NOTIFY_SMTP_HOST": "127.0.0.1",
        "NOTIFY_SMTP_PORT": str(smtp.port if smtp else 25),
        "NOTIFY_SMTP_STARTTLS": "never",
        "NOTIFY_SMTP_POOL": str(args.smtp_pool),
        "NOTIFY_DEDUP_WINDOW": "0",
        "NOTIFY_RATE_LIMITS": limits,
        "NOTIFY_RETRY_SCHEDULE": "1s,5s,10s",
        "NOTIFY_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "NOTIFY_WEBHOOK_ALLOW_PRIVATE": "true",
        "NOTIFY_WEBHOOK_ALLOW_HTTP": "true",
    }
    if args.delivery_concurrency:
        env["NOTIFY_DELIVERY_CONCURRENCY"] = args.delivery_concurrency
    return env


COLUMNS = [
    "what",
    "server",
    "api",
    "in_flight",
    "sent",
    "unique",
    "missing",
    "dup",
    "seconds",
    "per_s",
    "accept_per_s",
    "server_cpu_pct",
    "sink_cpu_pct",
    "gen_cpu_pct",
    "machine_busy_pct",
    "steal_pct",
]


def _print_profile(backend: str, profile: dict[str, Any]) -> None:
    print(
        f"{backend}: profile, {profile['samples_with_gil']} samples holding the GIL "
        f"({profile['gil_busy_pct']} % of the wall time)"
    )
    print("  self time (leaf frames):")
    for frame, pct in profile["top_self"]:
        print(f"    {pct:5.1f} %  {frame}")
    print("  Notify frames, inclusive:")
    for frame, pct in profile["top_notify_inclusive"]:
        print(f"    {pct:5.1f} %  {frame}")
    print("  by area (first match on the stack):")
    for area, pct in profile["by_area"]:
        print(f"    {pct:5.1f} %  {area}")


async def run_backend(
    backend: str,
    smtp: Sink | None,
    hooks: Sink | None,
    args: argparse.Namespace,
    server_cpus: set[int] | None,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    helpers = [h for h in args.helpers.split(",") if h]
    if helpers and backend == "embedded":
        print("embedded: --helpers ignored (one process owns the SQLite database and queue)")
        helpers = []
    with notify_server(
        backend, server_cpus, extra_env=node_env(smtp, args), helpers=helpers
    ) as server:
        print(f"{backend}: server pid {server.pid}", flush=True)
        mail_users = _users("mail", args.users, email_address=lambda u: f"{u}@example.com")
        hook_users = (
            _users("hook", args.users, webhook_url=lambda u: f"http://127.0.0.1:{hooks.port}/{u}")
            if hooks
            else []
        )
        set_preferences(server.database_url, mail_users + hook_users)
        runs = [(smtp, mail_users), (hooks, hook_users)]
        first = 0
        for target, users in runs:
            if target is None:
                continue
            channel = "email" if target.kind == "smtp" else "webhook"
            profile_to = (
                RESULTS_DIR / f"{args.name}-profile-{backend}-{channel}.txt"
                if args.profile
                else None
            )
            names = [u["user_id"] for u in users]
            rows.append(await measure_pipeline(server, target, names, args, first, profile_to))
            print_table(rows[-1:], COLUMNS)
            if "profile" in rows[-1]:
                _print_profile(f"{backend} {channel}", rows[-1]["profile"])
            first += args.warmup + args.messages
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description="Notify email and webhook delivery throughput")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--channels", default="email,webhook")
    parser.add_argument("--messages", type=int, default=10_000, help="per row, after warm-up")
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--users", type=int, default=1_000, help="per channel")
    parser.add_argument("--api", choices=("grpc", "grpc-batch", "rest"), default="grpc")
    parser.add_argument("--batch", type=int, default=100, help="notifications per SendBatch")
    parser.add_argument("--concurrency", type=int, default=64, help="producer calls in flight")
    parser.add_argument(
        "--smtp-pool", type=int, default=SMTP_POOL_DEFAULT, help="NOTIFY_SMTP_POOL (the node's)"
    )
    parser.add_argument(
        "--delivery-concurrency",
        default="",
        help="NOTIFY_DELIVERY_CONCURRENCY, e.g. normal=100 (default: the node's)",
    )
    parser.add_argument("--stall", type=float, default=30.0, help="give up after no progress")
    parser.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--bare-mime",
        choices=("direct", "stdlib"),
        default="direct",
        help="how the email baseline builds each message: written directly (as the node "
        "does for plain-ASCII mail) or with the stdlib email package",
    )
    parser.add_argument(
        "--helpers",
        default="",
        help="services to run as further `notify serve` processes beside `notify up` on "
        "the real backend, e.g. delivery,router (competing consumers of the node's queues)",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the node's runs")
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="node and baseline senders on CPU 0; producer and receivers on CPU 1",
    )
    parser.add_argument("--name", default="delivery")
    args = parser.parse_args()
    exit_on_sigterm()
    channels = {c for c in args.channels.split(",") if c}
    cpus = cpu_count()
    pinned = args.pin and cpus > 1
    server_cpus = {0} if pinned else None
    side_cpus = {1} if pinned else None
    if pinned:
        pin(0, {1})
    sharing = (
        f"{cpus} CPUs: node and baseline senders pinned to CPU 0; the producer "
        "(this process), the SMTP server and the webhook receiver pinned to CPU 1; "
        "PostgreSQL/Redis/RabbitMQ unpinned"
        if pinned
        else f"{cpus} CPUs, nothing pinned"
    )
    print(sharing)
    idle_busy = background_load()
    rows: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        smtp = stack.enter_context(sink("smtp", side_cpus)) if "email" in channels else None
        hooks = stack.enter_context(sink("webhook", side_cpus)) if "webhook" in channels else None
        if args.baseline:
            for target in (smtp, hooks):
                if target is not None:
                    rows.append(asyncio.run(measure_bare(target, args, server_cpus)))
                    print_table(rows[-1:], COLUMNS)
        for backend in [b for b in args.backends.split(",") if b]:
            rows += asyncio.run(run_backend(backend, smtp, hooks, args, server_cpus))
    print()
    print(sharing)
    from notify_core.config import DELIVERY_CONCURRENCY

    default = DELIVERY_CONCURRENCY.parser.show(DELIVERY_CONCURRENCY.default)
    settings = f"NOTIFY_SMTP_POOL={args.smtp_pool}, NOTIFY_DELIVERY_CONCURRENCY=" + (
        args.delivery_concurrency or f"(default {default})"
    )
    print(settings)
    print_table(rows, COLUMNS)
    for r in rows:
        if "first_error" in r:
            print(f"{r['what']}/{r['server']}: first send error: {r['first_error']}")
        if "profile" in r:
            _print_profile(f"{r['server']} {r['what']}", r["profile"])
    for r in rows:
        if r["what"] == "email" and not r["server"].startswith("baseline"):
            met = r["per_s"] >= 1000 and r["missing"] == 0
            print(
                f"{r['server']}: target >= 1,000 emails/s through the pipeline: "
                f"{'met' if met else 'MISSED'} ({r['per_s']:,.0f}/s)"
            )
    path = write_result(
        args.name,
        {
            "params": vars(args),
            "settings": settings,
            "cpu_sharing": sharing,
            "busy_before_pct": idle_busy,
            "rows": rows,
        },
    )
    print(f"written {path}")


if __name__ == "__main__":
    main()
