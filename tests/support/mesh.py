"""A mesh of ``notify serve`` processes, one per service, on the real backends (PostgreSQL,
RabbitMQ, Redis) under a namespace of its own: the mesh fault tests kill one of them with
SIGKILL mid-flood and start it again."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.support.nodes import API_KEY, JWT_SECRET
from tests.support.procs import ROOT, NotifyProcess

SERVICES = ("ingest", "router", "delivery", "realtime")


def mesh_env(postgres_url: str, redis_url: str, amqp_url: str, namespace: str) -> dict[str, str]:
    """``NOTIFY_*`` of a mesh on the session's backends, in ``namespace`` (a test
    fixture's, which deletes its queues and keys afterwards)."""
    return {
        "NOTIFY_DATABASE_URL": postgres_url,
        "NOTIFY_REDIS_URL": redis_url,
        "NOTIFY_AMQP_URL": amqp_url,
        "NOTIFY_NAMESPACE": namespace,
        "NOTIFY_API_KEYS": API_KEY,
        "NOTIFY_JWT_SECRET": JWT_SECRET,
    }


class Mesh:
    """One ``notify serve`` process per service; the edge sends to the ingest process."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
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


def migrate(env: dict[str, str]) -> None:
    """``notify migrate`` on the mesh's database."""
    done = subprocess.run(
        [sys.executable, "-m", "notify_app.cli", "migrate"],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@contextlib.contextmanager
def running_mesh(env: dict[str, str], logs: Path) -> Iterator[Mesh]:
    """The database migrated, then a mesh on ``env`` (logs in ``logs``), stopped on the
    way out."""
    migrate(env)
    mesh = Mesh(env, logs)
    try:
        mesh.start()
        yield mesh
    finally:
        mesh.stop()
