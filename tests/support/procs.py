"""Running ``notify`` as a real process, for the crash and multi-node tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.nodes import API_KEY, JWT_SECRET

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class NotifyProcess:
    """``notify up`` (or ``serve``) in a child process, with its own ports."""

    def __init__(
        self, env: dict[str, str], args: tuple[str, ...] = ("up",), log: Path | None = None
    ) -> None:
        self.http_port = int(env.get("NOTIFY_HTTP_PORT") or free_port())
        self.grpc_port = int(env.get("NOTIFY_GRPC_PORT") or free_port())
        self.env = {
            **os.environ,
            # The tests mean each send as a distinct notification (tests/integration/conftest.py).
            "NOTIFY_DEDUP_WINDOW": "0",
            **env,
            "NOTIFY_HTTP_PORT": str(self.http_port),
            "NOTIFY_GRPC_PORT": str(self.grpc_port),
            "NOTIFY_HOST": "127.0.0.1",
        }
        self.args = args
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> NotifyProcess:
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "notify_app.cli", *self.args],
            env=self.env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"notify exited with {self.proc.returncode}; see {self.log}")
            if self._serving():
                return self
            time.sleep(0.1)
        raise RuntimeError("notify did not come up")

    def _serving(self) -> bool:
        """The edge answers /healthz, and gRPC health answers SERVING (both, for ``up``: a
        port another process took in between must not pass for ours)."""
        if self.args[0] == "up" or self.args[-1] == "realtime":
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=0.5).status_code != 200:
                    return False
            except httpx.HTTPError:
                return False
            if self.args[0] != "up":
                return True
        with grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}") as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=0.5
                )
            except grpc.RpcError:
                return False
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.http_port}/ws"

    def again(self) -> NotifyProcess:
        """The same command on the same ports and settings (not started yet)."""
        return NotifyProcess(self.env, self.args, self.log)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def base_env(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, namespace: str
) -> dict[str, str]:
    """``NOTIFY_*`` for a ``notify`` process on the embedded backends (a SQLite file in
    ``tmp_path``) or on the real ones (the session's, under ``namespace``)."""
    base = {
        "NOTIFY_API_KEYS": API_KEY,
        "NOTIFY_JWT_SECRET": JWT_SECRET,
        "NOTIFY_NAMESPACE": namespace,
        "NOTIFY_REDIS_URL": "",
        "NOTIFY_AMQP_URL": "",
    }
    if kind == "embedded":
        return {**base, "NOTIFY_DATABASE_URL": f"sqlite:///{tmp_path / 'crash.db'}"}
    return {
        **base,
        "NOTIFY_DATABASE_URL": request.getfixturevalue("postgres_url"),
        "NOTIFY_REDIS_URL": request.getfixturevalue("redis_url"),
        "NOTIFY_AMQP_URL": request.getfixturevalue("amqp_url"),
    }
