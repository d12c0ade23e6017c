"""Live-connection limits and the graceful stop of an edge in this process, on both
backends: a user over ``max_connections_per_user`` is closed with 4009, a process at
``max_connections`` closes new connections with 1013 until one leaves, and stopping the
node closes every connection with 1001 within the grace period, removing its presence."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from notify_app.node import Node
from notify_app.settings import NodeSettings
from notify_core.auth import issue_user_token
from notify_core.cache.base import PresenceInfo
from notify_core.cache.factory import create_cache_backends
from notify_core.constants import CLOSE_GOING_AWAY, CLOSE_TOO_MANY_FOR_USER, CLOSE_TRY_AGAIN_LATER
from tests.support.ids import uid
from tests.support.nodes import JWT_SECRET, running
from tests.support.waiting import eventually


def url(node: Node, user: str) -> str:
    return f"ws://127.0.0.1:{node.http_port}/ws?token={issue_user_token(JWT_SECRET, user)}"


async def first_frame(ws: ClientConnection) -> dict[str, Any] | int | None:
    """The first frame, or the close code when the server closes instead."""
    try:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
    except websockets.ConnectionClosed as closed:
        return None if closed.rcvd is None else closed.rcvd.code
    return frame


async def test_a_connection_over_the_per_user_cap_is_closed_with_4009(
    settings: NodeSettings,
) -> None:
    async with running(settings, max_connections_per_user=2) as env:
        user, other = uid("lim"), uid("lim")
        first = await websockets.connect(url(env.node, user))
        second = await websockets.connect(url(env.node, user))
        assert (await first_frame(first))["type"] == "pending"  # type: ignore[index]
        assert (await first_frame(second))["type"] == "pending"  # type: ignore[index]
        third = await websockets.connect(url(env.node, user))
        assert await first_frame(third) == CLOSE_TOO_MANY_FOR_USER
        assert third.close_reason and "2 live connections" in third.close_reason
        async with websockets.connect(url(env.node, other)) as theirs:
            assert (await first_frame(theirs))["type"] == "pending"  # type: ignore[index]
        await first.close()

        async def reconnect() -> Any:
            ws = await websockets.connect(url(env.node, user))
            frame = await first_frame(ws)
            await ws.close()
            return frame

        frame = await eventually(reconnect, lambda f: isinstance(f, dict), timeout=5)
        assert frame["type"] == "pending"
        await second.close()


async def test_a_full_process_closes_new_connections_with_1013_until_one_leaves(
    settings: NodeSettings,
) -> None:
    async with running(settings, max_connections=2) as env:
        held = [await websockets.connect(url(env.node, uid("lim"))) for _ in range(2)]
        for ws in held:
            assert (await first_frame(ws))["type"] == "pending"  # type: ignore[index]
        refused = await websockets.connect(url(env.node, uid("lim")))
        assert await first_frame(refused) == CLOSE_TRY_AGAIN_LATER
        await held.pop().close()

        async def another() -> Any:
            ws = await websockets.connect(url(env.node, uid("lim")))
            frame = await first_frame(ws)
            if isinstance(frame, dict):
                held.append(ws)
            return frame

        assert (await eventually(another, lambda f: isinstance(f, dict)))["type"] == "pending"
        for ws in held:
            await ws.close()


async def presence(settings: NodeSettings, node: Node, users: list[str]) -> list[PresenceInfo]:
    """Presence as the backend has it (a fresh Redis client: the node's is closed)."""
    if settings.redis_url is None:
        assert node.backends is not None
        return await node.backends.presence.get(users)
    backends = create_cache_backends(settings.redis_url, settings.namespace)
    try:
        return await backends.presence.get(users)
    finally:
        await backends.close()


async def test_stop_closes_every_connection_with_1001_within_the_grace(
    settings: NodeSettings,
) -> None:
    """One client answers the close; a raw one never does. Neither holds the stop up."""
    settings = dataclasses.replace(settings, shutdown_grace=3.0)
    node = Node(settings)
    await node.start()
    stopped = False
    try:
        polite_user, mute_user = uid("lim"), uid("lim")
        polite = await websockets.connect(url(node, polite_user))
        assert (await first_frame(polite))["type"] == "pending"  # type: ignore[index]
        reader, writer = await asyncio.open_connection("127.0.0.1", node.http_port)
        token = issue_user_token(JWT_SECRET, mute_user)
        writer.write(
            (
                f"GET /ws?token={token} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        assert b"101" in await asyncio.wait_for(reader.readline(), 5)
        await eventually(
            lambda: presence(settings, node, [polite_user, mute_user]),
            lambda infos: all(i.online for i in infos),
        )

        # The mute client never answers the close: the stop must not wait for it. The
        # bound only catches a hang; it says nothing about the machine's speed.
        await asyncio.wait_for(node.stop(), settings.shutdown_grace + 60)
        stopped = True
        assert await first_frame(polite) == CLOSE_GOING_AWAY
        data = await asyncio.wait_for(reader.read(), 5)
        close = b"\x88" + bytes([2 + len(b"server shutting down")]) + b"\x03\xe9"
        assert close in data, data[-64:]  # close frame, code 1001
        writer.close()
        infos = await presence(settings, node, [polite_user, mute_user])
        assert [i.online for i in infos] == [False, False]
    finally:
        if not stopped:
            await node.stop()
