"""The client side of live connections: WebSocket frames and server-sent events, as JSON."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from tests.support.nodes import Env


async def recv(ws: Any, timeout: float = 5.0) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return result


class Sse:
    """An event-stream reader over an httpx streaming response."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()

    async def event(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next event as ``{"id": ..., "data": {...}}`` (``id`` absent when not sent)."""
        fields: dict[str, str] = {}
        while True:
            line = await asyncio.wait_for(anext(self.lines), timeout)
            if line.startswith(":"):
                continue
            if line == "":
                if fields:
                    event: dict[str, Any] = {"data": json.loads(fields["data"])}
                    if "id" in fields:
                        event["id"] = fields["id"]
                    return event
                continue
            name, _, value = line.partition(": ")
            fields[name] = value


@contextlib.asynccontextmanager
async def sse(
    env: Env, user: str, headers: dict[str, str] | None = None, **params: str
) -> AsyncIterator[Sse]:
    query = (
        {"token": env.token(user), **params} if "authorization" not in (headers or {}) else params
    )
    async with env.http.stream(
        "GET", "/notifications/stream", params=query, headers=headers or {}
    ) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield Sse(response)
