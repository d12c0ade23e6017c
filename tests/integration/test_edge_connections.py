"""What the edge does with connections that hold on: header and idle timeouts, idle
connections beside the live-connection cap, event streams of clients that stop reading,
and live connections whose token expires (WebSocket close 4001, SSE ``token_expired``)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import select
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import websockets

from notify_app.settings import NodeSettings
from notify_core.auth import issue_user_token
from notify_core.constants import CLOSE_TOKEN_EXPIRED, EDGE_HTTP_HEADROOM
from notify_core.ratelimit import DEFAULT_LIMITS, Limit, RateRules
from tests.support.ids import uid
from tests.support.live import recv, sse
from tests.support.nodes import JWT_SECRET, Env, embedded_settings, running
from tests.support.waiting import eventually

SHORT = {"http_header_timeout": 0.5, "http_idle_timeout": 0.5}
"""Timeouts short enough to wait for."""
LIFTED = RateRules({**DEFAULT_LIMITS, "inapp": Limit(1_000_000, 60.0)})


@contextlib.asynccontextmanager
async def raw(env: Env) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", env.node.http_port)
    try:
        yield reader, writer
    finally:
        writer.close()


async def closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection."""
    return await asyncio.wait_for(reader.read(), 10)


async def test_a_connection_that_does_not_finish_its_headers_is_closed(tmp_path: Path) -> None:
    async with (
        running(embedded_settings(tmp_path), **SHORT) as env,
        raw(env) as (silent, _),
        raw(env) as (half, writer),
    ):
        writer.write(b"GET /heal")
        await writer.drain()
        assert await closed_by_server(half) == b""
        assert await closed_by_server(silent) == b""


async def test_an_idle_keep_alive_connection_is_closed_and_a_live_one_is_not(
    tmp_path: Path,
) -> None:
    """The idle one answers a request, then waits; meanwhile a WebSocket and an event
    stream opened before outlast both timeouts and still get a notification."""
    async with running(embedded_settings(tmp_path), **SHORT) as env:
        user = uid("conn")
        async with (
            websockets.connect(f"{env.ws_url}?token={env.token(user)}") as ws,
            sse(env, user) as stream,
            raw(env) as (reader, writer),
        ):
            assert (await recv(ws))["type"] == "pending"
            assert (await stream.event())["data"]["type"] == "pending"
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            answer = await closed_by_server(reader)
            assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b'{"status":"ok"}')
            nid = await env.send(user)
            assert (await recv(ws))["notification"]["id"] == nid
            assert (await stream.event())["id"] == nid


async def test_idle_connections_beyond_the_cap_leave_live_and_plain_requests_alone(
    settings: NodeSettings,
) -> None:
    """More idle and half-sent connections than live slots and plain-request room together:
    a WebSocket, an event stream and a REST request all still get through."""
    cap = 2
    async with running(settings, max_connections=cap) as env:
        idle: list[asyncio.StreamWriter] = []
        try:
            for i in range(cap + EDGE_HTTP_HEADROOM + 10):
                _, writer = await asyncio.open_connection("127.0.0.1", env.node.http_port)
                idle.append(writer)
                if i % 2:
                    writer.write(b"GET /notifications HTTP/1.1\r\nHost")
            user = uid("conn")
            async with websockets.connect(f"{env.ws_url}?token={env.token(user)}") as ws:
                assert (await recv(ws))["type"] == "pending"
                async with sse(env, user) as stream:
                    assert (await stream.event())["data"]["type"] == "pending"
                    r = await env.http.get("/healthz")
                    assert r.status_code == 200, r.text
        finally:
            for writer in idle:
                writer.close()


def reset_by_peer(sock: socket.socket) -> bool:
    """Whether the peer reset (or closed) the connection, seen without reading from it."""
    poller = select.poll()
    poller.register(sock, select.POLLERR | select.POLLHUP | select.POLLRDHUP)
    return bool(poller.poll(0))


async def test_an_event_stream_client_that_stops_reading_has_its_connection_reset(
    settings: NodeSettings,
) -> None:
    """A tiny receive buffer that is never read: the stream overflows its short queue and
    is dropped, and the server resets the connection (nothing holds it open waiting for the
    client to read): at once when the last event cannot go out, or, when the end of the
    stream still fit in the send buffers, at the idle timeout (short here), as for any
    connection holding bytes its client never read. Which of the two happens depends on
    how much the kernel took before the drop."""
    changes = {"ws_send_queue": 20, "rate_limits": LIFTED, "http_idle_timeout": 2.0}
    async with running(settings, **changes) as env:
        user = uid("conn")
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            await loop.sock_connect(slow, ("127.0.0.1", env.node.http_port))
            await loop.sock_sendall(
                slow,
                (
                    f"GET /notifications/stream?token={env.token(user)} HTTP/1.1\r\n"
                    "Host: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
                ).encode(),
            )
            assert env.node.backends is not None
            presence = env.node.backends.presence

            async def connections() -> int:
                (info,) = await presence.get([user])
                return info.connections

            await eventually(connections, lambda n: n == 1)
            big = "x" * 9_000

            async def flood_until_dropped() -> int:
                await asyncio.gather(*[env.send(user, message=big) for _ in range(20)])
                return await connections()

            await eventually(flood_until_dropped, lambda n: n == 0, timeout=60)

            async def reset() -> bool:
                return reset_by_peer(slow)

            await eventually(reset, bool, timeout=20)
            assert slow.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNRESET
        finally:
            slow.close()


def short_token(user: str) -> str:
    """A token that expires in two to three seconds (``exp`` is whole seconds)."""
    return issue_user_token(JWT_SECRET, user, ttl=3)


async def test_a_websocket_is_closed_with_4001_when_its_token_expires(
    settings: NodeSettings,
) -> None:
    async with running(settings) as env:
        user = uid("conn")
        async with websockets.connect(f"{env.ws_url}?token={short_token(user)}") as ws:
            assert (await recv(ws))["type"] == "pending"
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await recv(ws, timeout=15)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
            CLOSE_TOKEN_EXPIRED,
            "token expired",
        )
        assert env.node.backends is not None
        presence = env.node.backends.presence
        await eventually(lambda: presence.get([user]), lambda infos: not infos[0].online)


async def test_an_event_stream_ends_with_token_expired_when_its_token_expires(
    settings: NodeSettings,
) -> None:
    async with running(settings) as env:
        user = uid("conn")
        headers = {"authorization": f"Bearer {short_token(user)}"}
        async with sse(env, user, headers=headers) as stream:
            assert (await stream.event())["data"]["type"] == "pending"
            last = await stream.event(timeout=15)
            assert last["data"]["type"] == "error"
            assert last["data"]["error"]["code"] == "token_expired"
            with pytest.raises(StopAsyncIteration):
                await asyncio.wait_for(anext(stream.lines), 5)
