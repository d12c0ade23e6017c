"""Kill -9 in the middle of a digest run, then start again (the digest issue's acceptance
test), on both backends: every due user gets their digest, and no user gets two different
ones; a resend of one the server took just before the kill carries the same Message-ID.

``notify up`` runs as a child process, sending to an SMTP server (aiosmtpd) in this process
that counts messages by Message-ID and takes a while over each, so that sends are open at
any moment. Once the run is part way and digests have started to arrive the node gets
SIGKILL and starts again on the same database: the new process takes the scheduler lease
when the dead one's runs out, queues the interrupted run again, and carries it on from its
recorded counts; its digest worker sends the digests the dead one had queued, and sends
again those it was sending (their send lease lapsed) with the same Message-ID.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import httpx
import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from google.protobuf.timestamp_pb2 import Timestamp
from notify.v1 import digest_pb2, digest_pb2_grpc

from notify_core.db.engine import sync_url
from notify_core.db.migrate import upgrade
from notify_core.db.schema import (
    digest_runs,
    digests,
    leases,
    notification_deliveries,
    notification_preferences,
    notifications,
)
from tests.support.digests import sent_in_digest
from tests.support.ids import uid
from tests.support.nodes import API_KEY
from tests.support.procs import NotifyProcess, base_env, free_port
from tests.support.smtp import CountingInbox

USERS = 120
ITEMS = 2
BATCH = 10
"""NOTIFY_DIGEST_CONCURRENCY: at most the digests the worker is sending can have gone out
unrecorded when the process dies."""
RUN_BATCH = 2
"""NOTIFY_DIGEST_BATCH: small, so that the run is still going when digests arrive."""
SMTP_DELAY = 0.05
PRODUCER = {"authorization": f"Bearer {API_KEY}"}
METADATA = (("authorization", f"Bearer {API_KEY}"),)


async def _seed(node: NotifyProcess, users: list[str]) -> None:
    async with httpx.AsyncClient(base_url=node.base_url, timeout=30) as client:

        async def one(user: str) -> None:
            body = {
                "email": f"{user}@example.com",
                "digest": {"enabled": True, "frequency": "daily", "hour": 9},
            }
            r = await client.put(f"/users/{user}/preferences", json=body, headers=PRODUCER)
            assert r.status_code == 200, r.text
            for i in range(ITEMS):
                note = {
                    "user_id": user,
                    "type": "comment",
                    "title": f"c{i}",
                    "message": "m",
                    "priority": "low",
                }
                r = await client.post("/notifications/send", json=note, headers=PRODUCER)
                assert r.status_code == 202, r.text

        for start in range(0, len(users), 20):
            await asyncio.gather(*[one(u) for u in users[start : start + 20]])


def _count(engine: sa.Engine, query: sa.Select[tuple[int]]) -> int:
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


async def _run(node: NotifyProcess, run_id: str) -> digest_pb2.DigestRun:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{node.grpc_port}") as channel:
        reply = await digest_pb2_grpc.DigestServiceStub(channel).GetDigestRun(
            digest_pb2.GetDigestRunRequest(id=run_id), metadata=METADATA
        )
    return reply.run


@pytest.mark.parametrize("kind", ["embedded", "real"])
async def test_kill9_mid_run_and_restart_give_every_due_user_one_digest(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, namespace: str
) -> None:
    inbox = CountingInbox(SMTP_DELAY)
    smtp_port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    env = {
        **base_env(kind, tmp_path, request, namespace),
        "NOTIFY_SMTP_HOST": "127.0.0.1",
        "NOTIFY_SMTP_PORT": str(smtp_port),
        "NOTIFY_SMTP_STARTTLS": "never",
        "NOTIFY_SMTP_POOL": str(BATCH),
        "NOTIFY_EMAIL_FROM": "Notify <n@x.test>",
        "NOTIFY_DIGEST_INTERVAL": "0.2",
        "NOTIFY_DIGEST_LEASE": "2",
        "NOTIFY_DIGEST_BATCH": str(RUN_BATCH),
        "NOTIFY_DIGEST_CONCURRENCY": str(BATCH),
        "NOTIFY_SEND_LEASE": "2",
    }
    engine = sa.create_engine(sync_url(env["NOTIFY_DATABASE_URL"]))
    upgrade(env["NOTIFY_DATABASE_URL"])
    with engine.begin() as conn:  # the session's PostgreSQL database is shared
        conn.execute(notification_preferences.update().values(digest_enabled=False))
        conn.execute(leases.delete())  # a node of an earlier test was killed holding it
    log = tmp_path / "notify.log"
    node = NotifyProcess(env, log=log).start()
    try:
        users = [uid("k9") for _ in range(USERS)]
        await _seed(node, users)
        d, n = notification_deliveries, notifications
        mine = (
            sa.select(sa.func.count())
            .select_from(d.join(n, n.c.id == d.c.notification_id))
            .where(n.c.user_id.in_(users))
        )
        put_aside = mine.where(d.c.status == "digested")
        deadline = time.monotonic() + 60
        while _count(engine, put_aside) < USERS * ITEMS:
            assert time.monotonic() < deadline, "the notifications were not routed"
            await asyncio.sleep(0.1)

        as_of = Timestamp()
        as_of.FromDatetime(datetime.now(UTC) + timedelta(days=1, hours=1))
        async with grpc.aio.insecure_channel(f"127.0.0.1:{node.grpc_port}") as channel:
            queued = await digest_pb2_grpc.DigestServiceStub(channel).RunDigest(
                digest_pb2.RunDigestRequest(as_of=as_of), metadata=METADATA
            )
        run_id = queued.run.id
        processed = sa.select(digest_runs.c.processed).where(digest_runs.c.id == run_id)
        deadline = time.monotonic() + 60
        while inbox.received() < 1 or _count(engine, processed) < USERS // 4:
            assert time.monotonic() < deadline, "the run did not start"
            await asyncio.sleep(0.01)
        node.kill9()
        at_kill = inbox.received()
        assert at_kill < USERS, "the run finished before the kill: nothing was proven"

        node = NotifyProcess(env, log=log).start()
        deadline = time.monotonic() + 90
        while (run := await _run(node, run_id)).status != digest_pb2.DIGEST_RUN_STATUS_SUCCEEDED:
            assert run.status != digest_pb2.DIGEST_RUN_STATUS_FAILED, run.error
            assert time.monotonic() < deadline, f"the run was not carried on: {run}"
            await asyncio.sleep(0.1)
        deadline = time.monotonic() + 90
        while len(inbox.by_user) < USERS:  # the digest worker sends what the run queued
            assert time.monotonic() < deadline, f"{USERS - len(inbox.by_user)} not delivered"
            await asyncio.sleep(0.1)
        sending = sa.select(sa.func.count()).where(
            digests.c.user_id.in_(users), digests.c.status.in_(["pending", "sending"])
        )
        while _count(engine, sending):
            assert time.monotonic() < deadline, "digests left unrecorded"
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # nothing more arrives after every digest is recorded

        missing = [u for u in users if u not in inbox.by_user]
        assert not missing, f"{len(missing)} due users got no digest"
        two_digests = {u: c for u, c in inbox.by_user.items() if len(c) > 1}
        assert not two_digests, "a user got two different digests"
        resent = inbox.received() - USERS
        assert 0 <= resent <= 2 * BATCH, f"{resent} resends; at most the sends in flight"
        assert run.attempts == 2
        assert (run.due, run.processed, run.sent, run.items) == (
            USERS,
            USERS,
            USERS,
            USERS * ITEMS,
        )
        recorded = sa.select(sa.func.count()).where(digests.c.user_id.in_(users))
        assert _count(engine, recorded) == USERS
        deadline = time.monotonic() + 30
        while _count(engine, sent_in_digest(users)) < USERS * ITEMS:
            assert time.monotonic() < deadline, "items not shown sent"
            await asyncio.sleep(0.1)
        assert _count(engine, sent_in_digest(users)) == USERS * ITEMS
        print(f"\n{kind}: killed at {at_kill} received; {resent} resent after the restart")
    finally:
        node.stop()
        controller.stop()
        engine.dispose()
