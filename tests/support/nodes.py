"""A node in the test process, and the client side of it (:class:`Env`)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx

from notify_app.node import Node
from notify_app.settings import NodeSettings
from notify_core.auth import issue_user_token
from tests.support.waiting import eventually

API_KEY = "test-producer-key-1"
JWT_SECRET = "test-jwt-secret-0123456789-abcdefgh"


@dataclass
class Env:
    """Everything a test needs to talk to one node."""

    node: Node
    http: httpx.AsyncClient
    grpc_channel: grpc.aio.Channel
    kind: str

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.node.http_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.node.http_port}/ws"

    @property
    def producer(self) -> dict[str, str]:
        return {"authorization": f"Bearer {API_KEY}"}

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {API_KEY}"),)

    def user(self, user_id: str) -> dict[str, str]:
        return {"authorization": f"Bearer {issue_user_token(JWT_SECRET, user_id)}"}

    def token(self, user_id: str) -> str:
        return issue_user_token(JWT_SECRET, user_id)

    async def send(self, user_id: str, **fields: Any) -> str:
        body = {"user_id": user_id, "type": "comment", "title": "t", "message": "m", **fields}
        r = await self.http.post("/notifications/send", json=body, headers=self.producer)
        assert r.status_code == 202, r.text
        return str(r.json()["id"])

    async def inbox(self, user_id: str, **params: Any) -> dict[str, Any]:
        r = await self.http.get("/notifications", params=params, headers=self.user(user_id))
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result

    async def wait_inbox(self, user_id: str, count: int, timeout: float = 10.0) -> dict[str, Any]:
        """Wait until the user's inbox holds ``count`` notifications (routing is async)."""
        return await eventually(
            lambda: self.inbox(user_id, limit=100),
            lambda page: len(page["notifications"]) >= count,
            timeout,
        )


def embedded_settings(tmp_path: Path, **extra: Any) -> NodeSettings:
    return NodeSettings(
        database_url=f"sqlite:///{tmp_path / 'notify.db'}",
        http_port=0,
        grpc_port=0,
        host="127.0.0.1",
        api_keys=frozenset({API_KEY}),
        jwt_secret=JWT_SECRET,
        signing_secret=JWT_SECRET,
        **extra,
    )


def real_settings(postgres_url: str, redis_url: str, amqp_url: str, namespace: str) -> NodeSettings:
    return NodeSettings(
        database_url=postgres_url,
        redis_url=redis_url,
        amqp_url=amqp_url,
        namespace=namespace,
        http_port=0,
        grpc_port=0,
        host="127.0.0.1",
        api_keys=frozenset({API_KEY}),
        jwt_secret=JWT_SECRET,
        signing_secret=JWT_SECRET,
    )


@asynccontextmanager
async def running(settings: NodeSettings, **changes: Any) -> AsyncIterator[Env]:
    """A node on ``settings`` (with ``changes``), stopped on the way out."""
    async with serving(Node(dataclasses.replace(settings, **changes))) as env:
        yield env


@asynccontextmanager
async def serving(node: Node) -> AsyncIterator[Env]:
    """``node`` (not started yet) started, stopped on the way out."""
    await node.start()
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{node.http_port}", timeout=10)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{node.grpc_port}")
    kind = "embedded" if node.settings.redis_url is None else "real"
    try:
        yield Env(node, http, channel, kind)
    finally:
        await http.aclose()
        await channel.close()
        await node.stop()
