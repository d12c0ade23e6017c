"""The edge's HTTP settings and the bound on plain requests in flight (driven as ASGI)."""

from __future__ import annotations

import asyncio
import json

import pytest
from starlette.types import Message, Receive, Scope, Send

from notify_app.settings import load_settings
from notify_core.constants import HTTP_HEADER_TIMEOUT_SECONDS, HTTP_IDLE_TIMEOUT_SECONDS
from notify_core.errors import ConfigError
from realtime_svc.edge_server import bound_plain_requests


def test_http_timeouts_default_and_read() -> None:
    s = load_settings({}, env_file=None)
    assert (s.http_header_timeout, s.http_idle_timeout) == (
        HTTP_HEADER_TIMEOUT_SECONDS,
        HTTP_IDLE_TIMEOUT_SECONDS,
    )
    s = load_settings(
        {"NOTIFY_HTTP_HEADER_TIMEOUT": "2.5", "NOTIFY_HTTP_IDLE_TIMEOUT": "60"}, env_file=None
    )
    assert (s.http_header_timeout, s.http_idle_timeout) == (2.5, 60.0)


@pytest.mark.parametrize("name", ["NOTIFY_HTTP_HEADER_TIMEOUT", "NOTIFY_HTTP_IDLE_TIMEOUT"])
@pytest.mark.parametrize("value", ["soon", "0", "-1", "99999"])
def test_a_malformed_http_timeout_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value}, env_file=None)


class Held:
    """An application that answers 200 once ``release`` is set; ``inside`` is set once
    ``expected`` requests are waiting in it."""

    def __init__(self, expected: int) -> None:
        self.release = asyncio.Event()
        self.inside = asyncio.Event()
        self._left = expected

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._left -= 1
        if self._left == 0:
            self.inside.set()
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def call(app: object, scope_type: str, path: str) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": scope_type, "path": path}
    await app(scope, receive, send)  # type: ignore[operator]
    return sent


async def test_plain_requests_over_the_bound_get_503_and_live_paths_pass() -> None:
    held = Held(4)
    app = bound_plain_requests(held, 2, frozenset({"/stream"}))
    first = [asyncio.ensure_future(call(app, "http", "/notifications")) for _ in range(2)]
    live = [
        asyncio.ensure_future(call(app, "http", "/stream")),
        asyncio.ensure_future(call(app, "websocket", "/ws")),
    ]
    await held.inside.wait()
    refused = await call(app, "http", "/notifications")
    assert refused[0]["status"] == 503
    assert json.loads(refused[1]["body"])["error"]["code"] == "unavailable"
    held.release.set()
    for answer in await asyncio.gather(*first, *live):
        assert answer[0]["status"] == 200
    again = asyncio.ensure_future(call(app, "http", "/notifications"))
    assert (await again)[0]["status"] == 200
