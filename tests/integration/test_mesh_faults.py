"""kill -9 one process of a mesh of ``notify serve`` processes mid-flood (PostgreSQL,
RabbitMQ, Redis), start it again, and nothing accepted is lost: every notification is in
its inbox and every email arrives (:mod:`tests.support.flood`). Only the delivery
process can send an email twice (one it sent and had not recorded when it died), at most
as many as it held when it died. The mesh is shared by the module's tests; each floods
its own users.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from tests.support.flood import (
    Flood,
    being_sent,
    check_nothing_lost,
    mail_env,
    smtp_server,
)
from tests.support.mesh import SERVICES, Mesh, mesh_env, running_mesh
from tests.support.smtp import CountingInbox
from tests.support.waiting import eventually

SENDS = 300
USERS = 30


@pytest.fixture(scope="module")
def counting_smtp() -> Iterator[tuple[CountingInbox, int]]:
    with smtp_server() as server:
        yield server


@pytest.fixture(scope="module")
def mesh(
    postgres_url: str,
    redis_url: str,
    amqp_url: str,
    module_namespace: str,
    counting_smtp: tuple[CountingInbox, int],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Mesh]:
    backends = mesh_env(postgres_url, redis_url, amqp_url, module_namespace)
    env = {**backends, **mail_env(counting_smtp[1])}
    with running_mesh(env, tmp_path_factory.mktemp("mesh")) as processes:
        yield processes


@pytest.mark.parametrize("victim", SERVICES)
async def test_kill9_of_a_mesh_process_mid_flood_loses_nothing(
    victim: str, mesh: Mesh, counting_smtp: tuple[CountingInbox, int], postgres_url: str
) -> None:
    smtp, _ = counting_smtp
    await asyncio.to_thread(mesh.revive)
    before = smtp.counts()
    async with httpx.AsyncClient(base_url=mesh.edge.base_url, timeout=10) as client:
        flood = Flood.of(USERS, SENDS)
        await flood.register(client)
        sending = asyncio.create_task(flood.run(client))
        await eventually(
            lambda: asyncio.sleep(0, len(flood.accepted)), lambda n: n >= SENDS // 3, 60
        )
        if victim == "delivery":  # mid-batch, most of the time
            await eventually(lambda: being_sent(postgres_url, flood.users), lambda n: n > 0, 60)
        mesh.procs[victim].kill9()
        in_flight = await being_sent(postgres_url, flood.users)
        await asyncio.to_thread(mesh.restart, victim)
        await sending
        summary = await check_nothing_lost(
            flood,
            client,
            smtp,
            postgres_url,
            mesh.env["NOTIFY_NAMESPACE"],
            duplicates_allowed=in_flight if victim == "delivery" else 0,
            smtp_before=before,
        )
    print(f"\n[kill -9 {victim}] {in_flight} emails in flight at the kill; {summary}")
