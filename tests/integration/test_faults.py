"""Faults during a flood of in-app and email sends to offline users, on ``notify up``:
after recovery every accepted notification is in its inbox, every email arrives and is
recorded as sent, the outbox is empty, and duplicates stay within what DESIGN §7 allows
(a send the provider took and the worker could not record goes out again).

* real backends: this deployment's own connections are cut every 1.5 s while the flood
  runs (RabbitMQ ``close_connection``, PostgreSQL ``pg_terminate_backend``, Redis
  ``CLIENT KILL``; :mod:`tests.support.cuts`);
* embedded (SQLite, no connections to cut): the node is killed with SIGKILL mid-flood and
  started again.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.backends import POSTGRES_ADMIN_URL
from tests.support.cuts import Cutter
from tests.support.flood import (
    IN_FLIGHT,
    Flood,
    being_sent,
    check_nothing_lost,
    mail_env,
    smtp_server,
)
from tests.support.procs import NotifyProcess, base_env
from tests.support.smtp import CountingInbox
from tests.support.waiting import eventually

SENDS = 300
USERS = 30
MIN_ROUNDS = 4
"""Rounds of cuts at least, however fast the flood is."""


@pytest.fixture
def counting_smtp() -> Iterator[tuple[CountingInbox, int]]:
    with smtp_server() as server:
        yield server


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl")
async def test_cutting_the_deployments_connections_mid_flood_loses_nothing(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    namespace: str,
    postgres_url: str,
    redis_url: str,
    counting_smtp: tuple[CountingInbox, int],
) -> None:
    smtp, port = counting_smtp
    env = {**base_env("real", tmp_path, request, namespace), **mail_env(port)}
    admin = POSTGRES_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    cutter = Cutter(namespace, (admin, postgres_url.rsplit("/", 1)[1]), redis_url)
    node = NotifyProcess(env, log=tmp_path / "notify.log").start()
    try:
        async with httpx.AsyncClient(base_url=node.base_url, timeout=10) as client:
            flood = Flood.of(USERS, SENDS)
            await flood.register(client)
            async with cutter.running() as cuts:
                await flood.run(client)
                await eventually(
                    lambda: asyncio.sleep(0, cuts.rounds), lambda n: n >= MIN_ROUNDS, 60
                )
            assert cuts.rabbitmq and cuts.postgres and cuts.redis, f"not every cut hit: {cuts}"
            summary = await check_nothing_lost(
                flood,
                client,
                smtp,
                postgres_url,
                namespace,
                duplicates_allowed=cuts.postgres * IN_FLIGHT,
            )
    finally:
        node.stop()
    print(f"\n[cuts] {cuts}; {summary}")


async def test_kill9_of_an_embedded_node_mid_flood_loses_nothing(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    namespace: str,
    counting_smtp: tuple[CountingInbox, int],
) -> None:
    smtp, port = counting_smtp
    env = {**base_env("embedded", tmp_path, request, namespace), **mail_env(port)}
    node = NotifyProcess(env, log=tmp_path / "notify.log").start()
    try:
        async with httpx.AsyncClient(base_url=node.base_url, timeout=10) as client:
            flood = Flood.of(USERS, SENDS)
            await flood.register(client)
            sending = asyncio.create_task(flood.run(client))
            await eventually(
                lambda: asyncio.sleep(0, len(flood.accepted)), lambda n: n >= SENDS // 3, 60
            )
            # Mid-batch: the kill finds emails claimed and not recorded, most of the time.
            url = env["NOTIFY_DATABASE_URL"]
            await eventually(lambda: being_sent(url, flood.users), lambda n: n > 0, 60)
            node.kill9()
            in_flight = await being_sent(url, flood.users)
            node = await asyncio.to_thread(node.again().start)
            await sending
            summary = await check_nothing_lost(
                flood, client, smtp, url, namespace, duplicates_allowed=in_flight
            )
    finally:
        node.stop()
    print(f"\n[kill -9] {in_flight} emails in flight at the kill; {summary}")
