"""The WebSocket edge: pending on connect, live events, read marks (DESIGN §5)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import uuid

import httpx
import pytest
import websockets

from notify_app.node import Node
from notify_app.settings import NodeSettings
from notify_core.constants import ROUTE_CHUNK
from notify_core.ratelimit import DEFAULT_LIMITS, Limit, RateRules
from tests.support.ids import uid
from tests.support.live import recv
from tests.support.nodes import Env


async def test_pending_on_connect_then_live_notification(env: Env) -> None:
    user = uid()
    before = [await env.send(user, title=f"old{i}") for i in range(3)]
    await env.wait_inbox(user, 3)
    async with websockets.connect(f"{env.ws_url}?token={env.token(user)}") as ws:
        pending = await recv(ws)
        assert pending["type"] == "pending"
        assert [n["id"] for n in pending["notifications"]] == list(reversed(before))
        assert pending["unread_count"] == 3
        nid = await env.send(user, title="live", data={"k": "v"})
        event = await recv(ws)
        assert event["type"] == "notification"
        assert event["notification"]["id"] == nid
        assert event["notification"]["title"] == "live"
        assert event["notification"]["data"] == {"k": "v"}


async def test_pending_holds_at_most_50_unread(env: Env) -> None:
    user = uid()
    r = await env.http.post(
        "/notifications/send",
        json={"user_ids": [user], "type": "x", "title": "t", "message": "m"},
        headers=env.producer,
    )
    assert r.status_code == 202
    await asyncio.gather(*[env.send(user) for _ in range(54)])
    await env.wait_inbox(user, 55)
    async with websockets.connect(f"{env.ws_url}?token={env.token(user)}") as ws:
        pending = await recv(ws)
        assert len(pending["notifications"]) == 50
        assert pending["unread_count"] == 55


async def test_live_event_reaches_every_connection_of_the_user_only(env: Env) -> None:
    user, other = uid(), uid()
    async with (
        websockets.connect(f"{env.ws_url}?token={env.token(user)}") as a,
        websockets.connect(f"{env.ws_url}?token={env.token(user)}") as b,
        websockets.connect(f"{env.ws_url}?token={env.token(other)}") as c,
    ):
        for ws in (a, b, c):
            assert (await recv(ws))["type"] == "pending"
        nid = await env.send(user)
        assert (await recv(a))["notification"]["id"] == nid
        assert (await recv(b))["notification"]["id"] == nid
        mine = await env.send(other)
        assert (await recv(c))["notification"]["id"] == mine


async def test_mark_read_and_mark_all_read_answer_unread_count(env: Env) -> None:
    user = uid()
    ids = [await env.send(user) for _ in range(3)]
    await env.wait_inbox(user, 3)
    async with websockets.connect(f"{env.ws_url}?token={env.token(user)}") as ws:
        await recv(ws)
        await ws.send(json.dumps({"type": "mark_read", "id": ids[1]}))
        assert await recv(ws) == {"type": "unread_count", "unread_count": 2}
        await ws.send(json.dumps({"type": "mark_read", "id": str(uuid.uuid4())}))
        error = await recv(ws)
        assert error["type"] == "error" and error["error"]["code"] == "not_found"
        await ws.send("not json")
        assert (await recv(ws))["type"] == "error"
        await ws.send(json.dumps({"type": "mark_all_read"}))
        assert await recv(ws) == {"type": "unread_count", "unread_count": 0}
    r = await env.http.get("/notifications/unread-count", headers=env.user(user))
    assert r.json() == {"unread_count": 0}


async def test_a_client_that_never_reads_is_dropped_and_others_keep_receiving(
    settings: NodeSettings,
) -> None:
    """The slow client's kernel buffer is made tiny and the node's send queue short, so the
    overflow comes after about a thousand frames instead of many megabytes. The queue still
    holds one routing chunk: the router publishes up to ``ROUTE_CHUNK`` notifications at
    once, and a client that reads must not be dropped for a burst it is given in one go.
    The in-app rate limit is lifted: this flood is the point."""
    lifted = RateRules({**DEFAULT_LIMITS, "inapp": Limit(1_000_000, 60.0)})
    queue = ROUTE_CHUNK + 200
    node = Node(dataclasses.replace(settings, ws_send_queue=queue, rate_limits=lifted))
    await node.start()
    env = Env(node, httpx.AsyncClient(base_url=f"http://127.0.0.1:{node.http_port}"), None, "")  # type: ignore[arg-type]
    try:
        user = uid()
        total = queue + 500
        tiny = socket.socket()
        tiny.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        tiny.connect(("127.0.0.1", node.http_port))
        async with (
            websockets.connect(
                f"{env.ws_url}?token={env.token(user)}", sock=tiny, max_queue=1
            ) as slow,
            websockets.connect(f"{env.ws_url}?token={env.token(user)}", max_queue=None) as fast,
        ):
            await recv(slow)
            await recv(fast)
            big = "x" * 9_000
            sem = asyncio.Semaphore(50)

            async def one() -> str:
                async with sem:
                    return await env.send(user, message=big)

            ids = await asyncio.gather(*[one() for _ in range(total)])
            seen = set()
            while len(seen) < total:
                seen.add((await recv(fast, timeout=20))["notification"]["id"])
            assert seen == set(ids)
            received = 0
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await recv(slow, timeout=20)
                    received += 1
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4008
            assert received < total
    finally:
        await env.http.aclose()
        await node.stop()


async def test_server_pings_and_drops_a_client_that_stops_answering(settings: NodeSettings) -> None:
    """A raw socket completes the handshake and then never answers pings."""
    node = Node(dataclasses.replace(settings, ws_ping_interval=0.3))
    await node.start()
    try:
        user = uid()
        from notify_core.auth import issue_user_token
        from tests.support.nodes import JWT_SECRET

        reader, writer = await asyncio.open_connection("127.0.0.1", node.http_port)
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        writer.write(
            (
                f"GET /ws?token={issue_user_token(JWT_SECRET, user)} HTTP/1.1\r\n"
                f"Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        status = await asyncio.wait_for(reader.readline(), 5)
        assert b"101" in status

        async def online() -> bool:
            assert node.backends is not None
            (i,) = await node.backends.presence.get([user])
            return i.online

        from tests.support.waiting import eventually

        await eventually(online, lambda v: v)
        # Read (and ignore) whatever the server sends — pending, pings — until it hangs up
        # (the bound only turns a server that never does into a failure).
        data = b""
        async with asyncio.timeout(60):
            while chunk := await reader.read(4096):
                data += chunk
        assert b"\x89" in data, "the server never sent a ping frame"
        writer.close()

        await eventually(online, lambda v: not v)
    finally:
        await node.stop()
