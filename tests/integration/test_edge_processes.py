"""``notify up`` with ``NOTIFY_EDGE_PROCESSES=2`` on the real backends: two edge processes
share the HTTP port (SO_REUSEPORT), live events cross between them through Redis, a killed
one is replaced while its users go offline, the limits hold per process and per user, and
SIGTERM closes every connection with 1001 within the grace period.

Which process holds a connection is read from ``/proc`` (:mod:`tests.support.sockets`).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
import pytest
import redis.asyncio as aioredis
import websockets
from notify.v1 import realtime_pb2, realtime_pb2_grpc
from websockets.asyncio.client import ClientConnection

from notify_core.auth import issue_user_token
from notify_core.cache.redis import RedisBackends
from notify_core.constants import (
    CLOSE_GOING_AWAY,
    CLOSE_TOO_MANY_FOR_USER,
    CLOSE_TRY_AGAIN_LATER,
    EDGE_DATABASE_POOL,
    LIVE_BY_HOLDER_MIN,
)
from tests.support.backends import NAMESPACE_PREFIX
from tests.support.ids import uid
from tests.support.live import recv
from tests.support.nodes import API_KEY, JWT_SECRET
from tests.support.procs import ROOT, NotifyProcess, free_port
from tests.support.sockets import children, holder, listening_pids, socket_inodes, tcp_table
from tests.support.waiting import eventually

PRESENCE_TTL = 1.5
PER_USER = 3
METADATA = (("authorization", f"Bearer {API_KEY}"),)


async def close_code(ws: ClientConnection, timeout: float = 5.0) -> int | None:
    """Read until the server closes; answer its close code."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    except websockets.ConnectionClosed as closed:
        return None if closed.rcvd is None else closed.rcvd.code
    raise AssertionError("unreachable")


class Edges:
    """A ``notify up`` with edge processes, and where its connections are."""

    def __init__(self, proc: NotifyProcess, namespace: str, redis_url: str) -> None:
        self.proc = proc
        self.namespace = namespace
        self.redis_url = redis_url

    @property
    def pid(self) -> int:
        assert self.proc.proc is not None
        return self.proc.proc.pid

    def edge_pids(self) -> set[int]:
        return listening_pids(self.proc.http_port, children(self.pid))

    def wait_edges(
        self, count: int, *, without: int | None = None, timeout: float = 20
    ) -> set[int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = self.edge_pids()
            if len(pids) == count and without not in pids:
                return pids
            time.sleep(0.05)
        raise AssertionError(f"expected {count} edge processes, have {self.edge_pids()}")

    async def holder_of(self, client_port: int) -> int:
        for _ in range(100):
            pid = holder(self.proc.http_port, client_port, children(self.pid))
            if pid is not None:
                return pid
            await asyncio.sleep(0.02)
        raise AssertionError(f"no edge process holds the connection from port {client_port}")

    async def pid_of(self, ws: ClientConnection) -> int:
        return await self.holder_of(ws.local_address[1])

    def url(self, user: str) -> str:
        return f"{self.proc.ws_url}?token={issue_user_token(JWT_SECRET, user)}"

    async def connect(self, user: str) -> ClientConnection:
        """A connection that got its ``pending`` frame."""
        ws = await websockets.connect(self.url(user))
        assert (await recv(ws))["type"] == "pending"
        return ws

    async def post_via(self, pid: int, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        """POST over a connection that edge process ``pid`` accepted (retrying until the
        kernel hands one to it)."""
        data = json.dumps(body).encode()
        request = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {API_KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode() + data
        for _ in range(100):
            reader, writer = await asyncio.open_connection("127.0.0.1", self.proc.http_port)
            try:
                if await self.holder_of(writer.get_extra_info("sockname")[1]) != pid:
                    continue
                writer.write(request)
                answer = await asyncio.wait_for(reader.read(), 10)
            finally:
                writer.close()
            head, _, payload = answer.partition(b"\r\n\r\n")
            return int(head.split()[1]), json.loads(payload)
        raise AssertionError(f"the kernel never handed a connection to {pid}")

    async def online(self, user: str) -> bool:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.proc.grpc_port}") as channel:
            reply = await realtime_pb2_grpc.RealtimeServiceStub(channel).GetPresence(
                realtime_pb2.GetPresenceRequest(user_ids=[user]), metadata=METADATA
            )
        return bool(reply.users[0].online)


def _env(postgres_url: str, redis_url: str, amqp_url: str, **extra: str) -> dict[str, str]:
    return {
        "NOTIFY_DATABASE_URL": postgres_url,
        "NOTIFY_REDIS_URL": redis_url,
        "NOTIFY_AMQP_URL": amqp_url,
        "NOTIFY_NAMESPACE": f"{NAMESPACE_PREFIX}{uuid.uuid4().hex[:8]}",
        "NOTIFY_API_KEYS": API_KEY,
        "NOTIFY_JWT_SECRET": JWT_SECRET,
        "NOTIFY_EDGE_PROCESSES": "2",
        **extra,
    }


def _cluster(env: dict[str, str], log: Path) -> Iterator[Edges]:
    proc = NotifyProcess(env, log=log)
    try:
        proc.start(timeout=60)
        edges = Edges(proc, env["NOTIFY_NAMESPACE"], env["NOTIFY_REDIS_URL"])
        edges.wait_edges(2)
        yield edges
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def edges(
    postgres_url: str, redis_url: str, amqp_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Edges]:
    env = _env(
        postgres_url,
        redis_url,
        amqp_url,
        NOTIFY_PRESENCE_TTL=str(PRESENCE_TTL),
        NOTIFY_MAX_CONNECTIONS_PER_USER=str(PER_USER),
        NOTIFY_SHUTDOWN_GRACE="5",
    )
    yield from _cluster(env, tmp_path_factory.mktemp("edges") / "notify.log")


@pytest.fixture(scope="module")
def capped(
    postgres_url: str, redis_url: str, amqp_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Edges]:
    env = _env(
        postgres_url,
        redis_url,
        amqp_url,
        NOTIFY_MAX_CONNECTIONS="2",
        NOTIFY_SHUTDOWN_GRACE="4",
    )
    yield from _cluster(env, tmp_path_factory.mktemp("capped") / "notify.log")


async def test_both_edge_processes_listen_and_hold_connections(edges: Edges) -> None:
    pids = edges.edge_pids()
    assert len(pids) == 2 and edges.pid not in pids
    sockets = [await edges.connect(uid("edge")) for _ in range(16)]
    try:
        held = Counter([await edges.pid_of(ws) for ws in sockets])
        assert set(held) == pids, held
    finally:
        for ws in sockets:
            await ws.close()


async def test_a_send_landing_on_one_process_reaches_a_user_held_by_the_other(
    edges: Edges,
) -> None:
    user = uid("edge")
    async with await edges.connect(user) as ws:
        held_by = await edges.pid_of(ws)
        (other,) = edges.edge_pids() - {held_by}
        body = {"user_id": user, "type": "edge", "title": "across", "message": "m"}
        status, answer = await edges.post_via(other, "/notifications/send", body)
        assert status == 202, answer
        event = await recv(ws, timeout=10)
        assert event["type"] == "notification"
        assert event["notification"]["id"] == answer["id"]


async def test_a_send_to_many_users_reaches_each_connection_once_on_both_processes(
    edges: Edges,
) -> None:
    """A batch big enough to go out per holder: each edge process listens on its own
    holder channel, and every user, on either process, gets each notification once."""
    users = [uid("many") for _ in range(LIVE_BY_HOLDER_MIN + 16)]
    sockets = [await edges.connect(user) for user in users]
    try:
        held = {await edges.pid_of(ws) for ws in sockets}
        assert held == edges.edge_pids()
        admin = aioredis.Redis.from_url(edges.redis_url)
        try:
            holders = await admin.pubsub_channels(f"{edges.namespace}:holder:*")
        finally:
            await admin.aclose()
        assert len(holders) == 2, holders
        (pid, *_) = held
        sent: list[list[str]] = []
        for title in ("first", "second"):
            body = {"user_ids": users, "type": "many", "title": title, "message": "m"}
            status, answer = await edges.post_via(pid, "/notifications/send", body)
            assert status == 202, answer
            sent.append(answer["ids"])
        for i, ws in enumerate(sockets):
            got = [(await recv(ws, timeout=20))["notification"]["id"] for _ in range(2)]
            assert sorted(got) == sorted([sent[0][i], sent[1][i]]), users[i]
        for ws in sockets:  # nothing more: a duplicate would be here by now
            with pytest.raises(TimeoutError):
                await recv(ws, timeout=0.2)
    finally:
        for ws in sockets:
            await ws.close()


async def test_presence_flips_on_connect_and_disconnect(edges: Edges) -> None:
    user = uid("edge")
    assert not await edges.online(user)
    ws = await edges.connect(user)
    assert await edges.online(user)
    await ws.close()
    await eventually(lambda: edges.online(user), lambda online: not online, timeout=5)


async def test_a_burst_of_connections_keeps_each_edge_process_within_its_database_pool(
    edges: Edges, postgres_url: str
) -> None:
    """Every connection costs a database read; 80 opened at once must not grow an edge
    process's pool past its bound (eight processes and the node stay inside PostgreSQL's
    100 connections)."""
    port = urlsplit(postgres_url).port or 5432
    pids = edges.edge_pids()
    peak: Counter[int] = Counter()
    done = asyncio.Event()

    async def watch() -> None:
        while not done.is_set():
            inodes = {e.inode for e in tcp_table() if e.remote_port == port}
            for pid in pids:
                peak[pid] = max(peak[pid], len(socket_inodes(pid) & inodes))
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    try:
        sockets = await asyncio.gather(*(edges.connect(uid("edge")) for _ in range(80)))
    finally:
        done.set()
        await watcher
    try:
        assert set(peak) == pids and all(peak[pid] >= 1 for pid in pids), peak
        assert max(peak.values()) <= 2 * EDGE_DATABASE_POOL, peak
    finally:
        for ws in sockets:
            await ws.close()


async def test_the_connection_over_the_per_user_cap_is_closed_with_4009(edges: Edges) -> None:
    user = uid("edge")
    opened = [await edges.connect(user) for _ in range(PER_USER)]
    try:
        extra = await websockets.connect(edges.url(user))
        assert await close_code(extra) == CLOSE_TOO_MANY_FOR_USER
        await opened.pop().close()

        async def reconnect() -> ClientConnection | None:
            ws = await websockets.connect(edges.url(user))
            try:
                assert (await recv(ws))["type"] == "pending"
            except websockets.ConnectionClosed:
                return None  # the closed one may not be gone from presence yet
            return ws

        again = await eventually(reconnect, lambda ws: ws is not None, timeout=5)
        opened.append(again)
    finally:
        for ws in opened:
            await ws.close()


async def test_a_killed_edge_process_is_replaced_and_its_users_go_offline(
    edges: Edges,
) -> None:
    user = uid("edge")
    ws = await edges.connect(user)
    victim = await edges.pid_of(ws)
    assert await edges.online(user)
    os.kill(victim, signal.SIGKILL)
    assert await close_code(ws) is None  # cut, no closing handshake
    # Redis expires the entry after the TTL; the wait's bound only catches a hang.
    await eventually(lambda: edges.online(user), lambda online: not online, PRESENCE_TTL + 60)
    replaced = await asyncio.to_thread(edges.wait_edges, 2, without=victim)
    assert victim not in replaced
    async with await edges.connect(user) as again:
        assert await edges.online(user)
        body = {"user_id": user, "type": "edge", "title": "back", "message": "m"}
        for pid in replaced:
            status, answer = await edges.post_via(pid, "/notifications/send", body)
            assert status == 202, answer
            assert (await recv(again, timeout=10))["notification"]["id"] == answer["id"]


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_edge_processes_exit_when_their_node_dies(edges: Edges) -> None:
    kids = edges.edge_pids()
    assert kids and all(_running(pid) for pid in kids)
    edges.proc.kill9()
    deadline = time.monotonic() + 15
    while any(_running(pid) for pid in kids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_running(pid) for pid in kids)


async def test_each_edge_process_holds_at_most_max_connections(capped: Edges) -> None:
    accepted: list[ClientConnection] = []
    refused: list[int | None] = []
    try:
        for _ in range(60):
            ws = await websockets.connect(capped.url(uid("edge")))
            try:
                assert (await recv(ws))["type"] == "pending"
                accepted.append(ws)
            except websockets.ConnectionClosed as closed:
                refused.append(closed.rcvd.code if closed.rcvd else None)
            if len(accepted) == 4:
                break
        assert len(accepted) == 4
        assert set(refused) <= {CLOSE_TRY_AGAIN_LATER}
        held = Counter([await capped.pid_of(ws) for ws in accepted])
        assert sorted(held.values()) == [2, 2]
        for _ in range(6):
            ws = await websockets.connect(capped.url(uid("edge")))
            assert await close_code(ws) == CLOSE_TRY_AGAIN_LATER
    finally:
        for ws in accepted:
            await ws.close()


async def test_sigterm_closes_connections_with_1001_and_exits_within_the_grace(
    capped: Edges, redis_url: str
) -> None:
    users = [uid("edge") for _ in range(3)]
    opened = []
    for user in users:

        async def attempt(user: str = user) -> ClientConnection | None:
            ws = await websockets.connect(capped.url(user))
            try:
                assert (await recv(ws))["type"] == "pending"
            except websockets.ConnectionClosed:
                return None  # the previous test's connections may still be leaving
            return ws

        opened.append(await eventually(attempt, lambda ws: ws is not None, timeout=5))
    assert capped.proc.proc is not None
    capped.proc.proc.send_signal(signal.SIGTERM)
    codes = await asyncio.gather(*(close_code(ws, timeout=10) for ws in opened))
    assert codes == [CLOSE_GOING_AWAY] * len(opened)
    # It exits on its own (no SIGKILL) once its connections are closed; the wait's bound
    # only catches a hang, not a slow machine.
    code = await asyncio.to_thread(capped.proc.proc.wait, 60)
    assert code == 0
    backends = RedisBackends(redis_url, capped.namespace)
    try:
        infos = await backends.presence.get(users)
    finally:
        await backends.close()
    assert [i.online for i in infos] == [False] * len(users)  # removed, not expired


def _notify(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    base = {
        "NOTIFY_DATABASE_URL": f"sqlite:///{tmp_path / 'n.db'}",
        "NOTIFY_REDIS_URL": "",
        "NOTIFY_AMQP_URL": "",
        "NOTIFY_API_KEYS": API_KEY,
        "NOTIFY_JWT_SECRET": JWT_SECRET,
        "NOTIFY_HTTP_PORT": str(free_port()),
        "NOTIFY_GRPC_PORT": str(free_port()),
        "NOTIFY_HOST": "127.0.0.1",
    }
    return subprocess.run(
        [sys.executable, "-m", "notify_app.cli", "up"],
        env={**os.environ, **base, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_more_than_one_edge_process_needs_redis(tmp_path: Path) -> None:
    result = _notify({"NOTIFY_EDGE_PROCESSES": "2"}, tmp_path)
    assert result.returncode == 2
    assert "NOTIFY_EDGE_PROCESSES" in result.stderr and "NOTIFY_REDIS_URL" in result.stderr


def test_max_connections_beyond_the_open_file_limit_fails_naming_it(tmp_path: Path) -> None:
    result = _notify({"NOTIFY_MAX_CONNECTIONS": "5000000"}, tmp_path)
    assert result.returncode == 2
    assert "NOTIFY_MAX_CONNECTIONS=5000000" in result.stderr
