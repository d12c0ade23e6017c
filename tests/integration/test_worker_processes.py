"""``notify up`` with ``NOTIFY_WORKER_PROCESSES=1`` on the real backends: routing runs in
the worker process (stopped, nothing is routed; resumed, everything is), a live event it
routes reaches a user connected to the node's edge through Redis, and a worker killed in
the middle of a flood is replaced while every accepted notification is routed exactly once.

Which process is the worker is read from ``/proc`` (:mod:`tests.support.sockets`).
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import websockets

from notify_core.auth import issue_user_token
from notify_core.db.engine import Database
from notify_core.db.schema import notification_deliveries, notifications
from tests.support.ids import uid
from tests.support.live import recv
from tests.support.nodes import API_KEY, JWT_SECRET
from tests.support.procs import NotifyProcess, base_env
from tests.support.sockets import children
from tests.support.waiting import eventually

PRODUCER = {"authorization": f"Bearer {API_KEY}"}


def _workers(pid: int) -> set[int]:
    """The worker processes of the node ``pid``: its spawned children, without the
    resource tracker multiprocessing may start."""
    found = set()
    for child in children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
            found.add(child)
    return found


@pytest.fixture
def node(
    request: pytest.FixtureRequest, redis_url: str, amqp_url: str, namespace: str, tmp_path: Path
) -> Iterator[NotifyProcess]:
    env = {
        **base_env("real", tmp_path, request, namespace),
        "NOTIFY_WORKER_PROCESSES": "1",
        "NOTIFY_SHUTDOWN_GRACE": "1",
    }
    proc = NotifyProcess(env, log=tmp_path / "notify.log")
    try:
        proc.start(timeout=60)
        yield proc
    finally:
        proc.stop()


async def _states(database_url: str, ids: list[str]) -> dict[str, int]:
    db = Database(database_url)
    try:
        async with db.read() as conn:
            rows = await conn.execute(
                sa.select(notifications.c.state, sa.func.count())
                .where(notifications.c.id.in_(ids))
                .group_by(notifications.c.state)
            )
            return {state: int(n) for state, n in rows}
    finally:
        await db.close()


async def _send(client: httpx.AsyncClient, user: str) -> str:
    r = await client.post(
        "/notifications/send",
        json={"user_id": user, "type": "t", "title": "hi", "message": "m", "channels": ["inapp"]},
        headers=PRODUCER,
    )
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


async def test_routing_runs_in_the_worker_and_its_events_reach_the_edge(
    node: NotifyProcess, postgres_url: str
) -> None:
    assert node.proc is not None
    workers = _workers(node.proc.pid)
    assert len(workers) == 1
    (worker,) = workers
    user = uid("w")
    token = issue_user_token(JWT_SECRET, user, 600)
    async with (
        httpx.AsyncClient(base_url=node.base_url) as client,
        websockets.connect(f"{node.ws_url}?token={token}") as ws,
    ):
        assert (await recv(ws))["type"] == "pending"
        os.kill(worker, signal.SIGSTOP)
        try:
            first = await _send(client, user)
            # Ingest answered: the notification waits for the stopped worker to route it.
            assert await _states(postgres_url, [first]) == {"accepted": 1}
        finally:
            os.kill(worker, signal.SIGCONT)
        event = await recv(ws, timeout=30)
        assert event["type"] == "notification"
        assert event["notification"]["id"] == first
        assert await _states(postgres_url, [first]) == {"routed": 1}


async def test_a_killed_worker_is_replaced_and_every_notification_is_routed_once(
    node: NotifyProcess, postgres_url: str
) -> None:
    assert node.proc is not None
    (worker,) = _workers(node.proc.pid)
    users = [uid("f") for _ in range(300)]
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=node.base_url, timeout=30, limits=limits) as client:
        first = await asyncio.gather(*(_send(client, u) for u in users[:150]))
        os.kill(worker, signal.SIGKILL)
        rest = await asyncio.gather(*(_send(client, u) for u in users[150:]))
    ids = [*first, *rest]
    replaced = await eventually(
        lambda: _workers(node.proc.pid) if node.proc else set(),
        lambda found: len(found) == 1 and worker not in found,
        timeout=30,
    )
    assert replaced
    await eventually(lambda: _states(postgres_url, ids), lambda s: s == {"routed": 300}, 60)
    db = Database(postgres_url)
    try:
        async with db.read() as conn:
            rows, distinct = (
                await conn.execute(
                    sa.select(
                        sa.func.count(),
                        sa.func.count(
                            sa.distinct(
                                notification_deliveries.c.notification_id
                                + ":"
                                + notification_deliveries.c.channel
                            )
                        ),
                    ).where(notification_deliveries.c.notification_id.in_(ids))
                )
            ).one()
    finally:
        await db.close()
    # Each notification decided once: one row per (notification, channel), none twice.
    assert rows == distinct
    assert rows >= 300
