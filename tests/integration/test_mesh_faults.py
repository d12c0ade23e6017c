"""kill -9 one process of a mesh of ``notify serve`` processes mid-flood (PostgreSQL,
RabbitMQ, Redis), start it again, and nothing accepted is lost: every notification is in
its inbox and every email arrives (:mod:`tests.support.flood`). Only the delivery
process can send an email twice (one it sent and had not recorded when it died), at most
as many as it held when it died. The mesh is shared by the module's tests; each floods
its own users.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.backends import NAMESPACE_PREFIX
from tests.support.flood import (
    Flood,
    check_nothing_lost,
    emails_being_sent,
    mail_env,
    smtp_server,
)
from tests.support.nodes import API_KEY, JWT_SECRET
from tests.support.procs import ROOT, NotifyProcess
from tests.support.smtp import CountingInbox
from tests.support.waiting import eventually

SENDS = 300
USERS = 30
SERVICES = ("ingest", "router", "delivery", "realtime")


class Mesh:
    """One ``notify serve`` process per service; the edge sends to the ingest process."""

    def __init__(self, env: dict[str, str], logs: Path, smtp: CountingInbox) -> None:
        self.env = env
        self.smtp = smtp
        ingest = NotifyProcess(env, ("serve", "ingest"), log=logs / "ingest.log")
        edge_env = {**env, "NOTIFY_INGEST_TARGET": f"127.0.0.1:{ingest.grpc_port}"}
        self.procs = {"ingest": ingest}
        for name in SERVICES[1:]:
            self.procs[name] = NotifyProcess(
                edge_env if name == "realtime" else env, ("serve", name), log=logs / f"{name}.log"
            )

    @property
    def edge(self) -> NotifyProcess:
        return self.procs["realtime"]

    def start(self) -> None:
        with ThreadPoolExecutor(len(self.procs)) as pool:
            for started in [pool.submit(p.start, 60) for p in self.procs.values()]:
                started.result()

    def restart(self, name: str) -> None:
        self.procs[name] = self.procs[name].again().start(60)

    def revive(self) -> None:
        """Start again whatever an earlier test left dead."""
        for name, proc in self.procs.items():
            if proc.proc is None or proc.proc.poll() is not None:
                self.restart(name)

    def stop(self) -> None:
        with ThreadPoolExecutor(len(self.procs)) as pool:
            list(pool.map(NotifyProcess.stop, self.procs.values()))


@pytest.fixture(scope="module")
def mesh(
    postgres_url: str, redis_url: str, amqp_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Mesh]:
    with smtp_server() as (smtp, port):
        env = {
            "NOTIFY_DATABASE_URL": postgres_url,
            "NOTIFY_REDIS_URL": redis_url,
            "NOTIFY_AMQP_URL": amqp_url,
            "NOTIFY_NAMESPACE": f"{NAMESPACE_PREFIX}{uuid.uuid4().hex[:8]}",
            "NOTIFY_API_KEYS": API_KEY,
            "NOTIFY_JWT_SECRET": JWT_SECRET,
            **mail_env(port),
        }
        migrate = subprocess.run(
            [sys.executable, "-m", "notify_app.cli", "migrate"],
            env={**os.environ, **env},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert migrate.returncode == 0, migrate.stderr
        processes = Mesh(env, tmp_path_factory.mktemp("mesh"), smtp)
        try:
            processes.start()
            yield processes
        finally:
            processes.stop()


@pytest.mark.parametrize("victim", SERVICES)
async def test_kill9_of_a_mesh_process_mid_flood_loses_nothing(
    victim: str, mesh: Mesh, postgres_url: str
) -> None:
    await asyncio.to_thread(mesh.revive)
    before = mesh.smtp.counts()
    async with httpx.AsyncClient(base_url=mesh.edge.base_url, timeout=10) as client:
        flood = Flood.of(USERS, SENDS)
        await flood.register(client)
        sending = asyncio.create_task(flood.run(client))
        await eventually(
            lambda: asyncio.sleep(0, len(flood.accepted)), lambda n: n >= SENDS // 3, 60
        )
        if victim == "delivery":  # mid-batch, most of the time
            await eventually(
                lambda: emails_being_sent(postgres_url, flood.users), lambda n: n > 0, 60
            )
        mesh.procs[victim].kill9()
        in_flight = await emails_being_sent(postgres_url, flood.users)
        await asyncio.to_thread(mesh.restart, victim)
        await sending
        summary = await check_nothing_lost(
            flood,
            client,
            mesh.smtp,
            postgres_url,
            mesh.env["NOTIFY_NAMESPACE"],
            duplicates_allowed=in_flight if victim == "delivery" else 0,
            smtp_before=before,
        )
    print(f"\n[kill -9 {victim}] {in_flight} emails in flight at the kill; {summary}")
