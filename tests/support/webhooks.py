"""A webhook endpoint (Starlette on uvicorn) that records what it is sent and answers per
path, the ``receiver`` fixture, and the signing secret the tests give senders."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.utils import formatdate

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.support.asgi import serving_app


def secret(seed: int) -> str:
    return "whsec_" + base64.b64encode(bytes([seed]) * 32).decode()


SECRET = secret(7)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int


@dataclass
class Receiver:
    """A webhook endpoint that records what it is sent and answers per path."""

    requests: list[Received] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> Starlette:
        async def record(request: Request) -> Response:
            self.requests.append(
                Received(
                    request.url.path,
                    dict(request.headers),
                    await request.body(),
                    request.client.port if request.client else 0,
                )
            )
            path = request.url.path
            if path == "/redirect":
                return Response(status_code=302, headers={"location": "/ok"})
            if path == "/slow":
                await self.release.wait()
            if path == "/endless":

                async def chunks() -> AsyncIterator[bytes]:
                    while not self.release.is_set():
                        yield b"x" * 65_536
                        await asyncio.sleep(0)

                return StreamingResponse(chunks())
            answers: dict[str, tuple[int, dict[str, str], bytes]] = {
                "/ok": (200, {}, b"thanks"),
                "/accepted": (202, {}, b""),
                "/gone": (410, {}, b"gone"),
                "/bad": (400, {}, b'{"error": "no such user"}'),
                "/throttle": (429, {"retry-after": "7"}, b"slow down"),
                "/request-timeout": (408, {}, b""),
                "/unavailable": (
                    503,
                    {"retry-after": formatdate(time.time() + 120, usegmt=True)},
                    b"",
                ),
                "/error": (500, {}, b"boom"),
                "/slow": (200, {}, b"late"),
            }
            status, headers, body = answers.get(path, (404, {}, b"no such path"))
            return Response(body, status_code=status, headers=headers)

        return Starlette(routes=[Route("/{path:path}", record, methods=["POST"])])


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, int]]:
    rec = Receiver()
    async with serving_app(rec.app(), timeout_graceful_shutdown=2) as port:
        try:
            yield rec, port
        finally:
            rec.release.set()
