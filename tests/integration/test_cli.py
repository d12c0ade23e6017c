"""The ``notify`` command: configuration errors, migrate, and the mesh of ``notify serve``."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import httpx
import pytest
import websockets
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from notify.v1 import digest_pb2, digest_pb2_grpc

from notify_core.auth import issue_user_token
from notify_core.db.engine import Database
from notify_core.db.schema import digest_runs, leases, notification_preferences
from tests.support.digests import seed
from tests.support.flood import mail_env, smtp_server
from tests.support.nodes import API_KEY, JWT_SECRET
from tests.support.procs import ROOT, NotifyProcess, free_port
from tests.support.waiting import eventually


def _notify(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "notify_app.cli", *args],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NOTIFY_HTTP_PORT", "http"),
        ("NOTIFY_DATABASE_URL", "mysql://x/y"),
        ("NOTIFY_JWT_SECRET", "short"),
    ],
)
def test_up_with_a_malformed_setting_fails_naming_it(name: str, value: str) -> None:
    result = _notify("up", env={name: value})
    assert result.returncode == 2
    assert name in result.stderr


def test_an_unknown_setting_stops_start_naming_the_nearest_known_one(tmp_path: Path) -> None:
    result = _notify("up", env={"NOTIFY_DATABSE_URL": f"sqlite:///{tmp_path / 'x.db'}"})
    assert result.returncode == 2
    assert result.stderr == (
        "notify: configuration error: NOTIFY_DATABSE_URL is not a setting of Notify; "
        "did you mean NOTIFY_DATABASE_URL?\n"
    )


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("NOTIFY_DATABASE_URL", "postgresql+psycopg://postgres:pw-{secret}@127.0.0.1:{port}/x"),
        ("NOTIFY_REDIS_URL", "redis://:pw-{secret}@127.0.0.1:{port}/0"),
        ("NOTIFY_AMQP_URL", "amqp://guest:pw-{secret}@127.0.0.1:{port}/%2F"),
    ],
)
@pytest.mark.parametrize("command", [("up",), ("serve", "router")])
def test_an_unreachable_backend_is_one_line_naming_its_variable(
    tmp_path: Path, name: str, url: str, command: tuple[str, ...]
) -> None:
    secret = uuid.uuid4().hex
    bad = url.format(secret=secret, port=free_port())
    env = {"NOTIFY_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", name: bad}
    result = _notify(*command, env={**env, "NOTIFY_HTTP_PORT": "0", "NOTIFY_GRPC_PORT": "0"})
    assert result.returncode == 1
    shown = bad.replace(f"pw-{secret}", "***")
    assert result.stderr == f"notify: {name}: cannot connect to {shown} (connection refused)\n"
    assert secret not in result.stdout + result.stderr


def test_edge_without_ingest_needs_ingest_target(tmp_path: Path) -> None:
    result = _notify(
        "serve",
        "realtime",
        env={
            "NOTIFY_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
            "NOTIFY_HTTP_PORT": str(free_port()),
            "NOTIFY_GRPC_PORT": str(free_port()),
            "NOTIFY_INGEST_TARGET": "",
        },
    )
    assert result.returncode == 2
    assert "NOTIFY_INGEST_TARGET" in result.stderr


def test_migrate_is_repeatable(tmp_path: Path) -> None:
    env = {"NOTIFY_DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}"}
    assert _notify("migrate", env=env).returncode == 0
    again = _notify("migrate", env=env)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "m.db").exists()


async def test_mesh_of_notify_serve_processes_delivers_end_to_end(
    tmp_path: Path, postgres_url: str, redis_url: str, amqp_url: str, namespace: str
) -> None:
    """The same commands docker-compose.yml runs: one process per service."""
    env = {
        "NOTIFY_DATABASE_URL": postgres_url,
        "NOTIFY_REDIS_URL": redis_url,
        "NOTIFY_AMQP_URL": amqp_url,
        "NOTIFY_NAMESPACE": namespace,
        "NOTIFY_API_KEYS": API_KEY,
        "NOTIFY_JWT_SECRET": JWT_SECRET,
    }
    assert _notify("migrate", env=env).returncode == 0
    procs: list[NotifyProcess] = []
    try:
        ingest = NotifyProcess(env, ("serve", "ingest"), log=tmp_path / "ingest.log").start()
        procs.append(ingest)
        for name in ("router", "preference", "template", "delivery", "digest"):
            procs.append(NotifyProcess(env, ("serve", name), log=tmp_path / f"{name}.log").start())
        edge_env = {**env, "NOTIFY_INGEST_TARGET": f"127.0.0.1:{ingest.grpc_port}"}
        edge = NotifyProcess(edge_env, ("serve", "realtime"), log=tmp_path / "edge.log").start()
        procs.append(edge)

        for proc, service in zip(
            procs,
            ["Ingest", "Router", "Preference", "Template", "Delivery", "Digest", "Realtime"],
            strict=True,
        ):
            async with grpc.aio.insecure_channel(f"127.0.0.1:{proc.grpc_port}") as channel:
                reply = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=f"notify.v1.{service}Service")
                )
                assert reply.status == health_pb2.HealthCheckResponse.SERVING

        user = f"mesh-{uuid.uuid4().hex[:8]}"
        token = issue_user_token(JWT_SECRET, user)
        async with websockets.connect(f"{edge.ws_url}?token={token}") as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "pending"
            async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as client:
                r = await client.post(
                    "/notifications/send",
                    json={"user_id": user, "type": "mesh", "title": "hi", "message": "m"},
                    headers={"authorization": f"Bearer {API_KEY}"},
                )
                assert r.status_code == 202, r.text
                bad = await client.post(
                    "/notifications/send",
                    json={"user_id": user, "type": "mesh", "title": "", "message": "m"},
                    headers={"authorization": f"Bearer {API_KEY}"},
                )
                assert bad.status_code == 400
                assert bad.json()["error"]["message"].startswith("title")
            event = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert event["notification"]["id"] == r.json()["id"]
    finally:
        for proc in procs:
            proc.stop()


async def test_in_a_mesh_the_digest_role_queues_and_the_delivery_role_sends(
    tmp_path: Path, postgres_url: str, redis_url: str, amqp_url: str, namespace: str
) -> None:
    """``notify serve digest`` opens no email provider: the digests of its run reach the
    SMTP server through ``notify serve delivery``'s digest worker."""
    env = {
        "NOTIFY_DATABASE_URL": postgres_url,
        "NOTIFY_REDIS_URL": redis_url,
        "NOTIFY_AMQP_URL": amqp_url,
        "NOTIFY_NAMESPACE": namespace,
        "NOTIFY_API_KEYS": API_KEY,
        "NOTIFY_JWT_SECRET": JWT_SECRET,
        "NOTIFY_DIGEST_INTERVAL": "0.2",
    }
    assert _notify("migrate", env=env).returncode == 0
    db = Database(postgres_url)
    try:
        async with db.write() as conn:  # the session's database is shared
            await conn.execute(notification_preferences.update().values(digest_enabled=False))
            await conn.execute(leases.delete())
            await conn.execute(digest_runs.update().values(status="succeeded"))
        users = await seed(db, 3)
    finally:
        await db.close()
    procs: list[NotifyProcess] = []
    with smtp_server() as (inbox, port):
        try:
            for name in ("delivery", "digest"):
                proc = NotifyProcess(
                    {**env, **mail_env(port)}, ("serve", name), log=tmp_path / name
                )
                procs.append(proc.start())
            as_of = Timestamp()
            as_of.FromDatetime(datetime.now(UTC) + timedelta(days=1, hours=1))
            metadata = (("authorization", f"Bearer {API_KEY}"),)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{procs[1].grpc_port}") as channel:
                stub = digest_pb2_grpc.DigestServiceStub(channel)
                queued = await stub.RunDigest(
                    digest_pb2.RunDigestRequest(as_of=as_of), metadata=metadata
                )
                done = await eventually(
                    lambda: stub.GetDigestRun(
                        digest_pb2.GetDigestRunRequest(id=queued.run.id), metadata=metadata
                    ),
                    lambda r: r.run.status == digest_pb2.DIGEST_RUN_STATUS_SUCCEEDED,
                    timeout=30,
                )
            assert done.run.sent == 3
            await eventually(lambda: set(inbox.by_user), lambda got: got >= set(users), 30)
            assert inbox.received() == 3
        finally:
            for proc in procs:
                proc.stop()
