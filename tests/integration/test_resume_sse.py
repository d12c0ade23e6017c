"""Resuming live connections (``/ws?since=``, ``Last-Event-ID``) and the SSE stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import uuid
from typing import Any

import httpx
import pytest
import websockets

from notify_app.node import Node
from notify_app.settings import NodeSettings
from notify_core.auth import issue_user_token
from notify_core.constants import RESUME_MAX_MISSED
from notify_core.ratelimit import DEFAULT_LIMITS, Limit, RateRules
from tests.support.ids import uid
from tests.support.live import Sse, recv, sse
from tests.support.nodes import JWT_SECRET, Env, running
from tests.support.waiting import eventually

LIFTED = RateRules({**DEFAULT_LIMITS, "inapp": Limit(1_000_000, 60.0)})
"""In-app rate limit out of the way: the floods below are the point of their tests."""


async def nothing_more(ws: Any, wait: float = 0.5) -> None:
    with pytest.raises(TimeoutError):
        extra = await asyncio.wait_for(ws.recv(), wait)
        pytest.fail(f"unexpected frame {extra!r}")


async def send_routed(env: Env, user: str, count: int, **fields: Any) -> str:
    """Send one and wait until it is in the inbox (the ``count``-th), so that the next one
    is routed after it."""
    nid = await env.send(user, **fields)
    await env.wait_inbox(user, count)
    return nid


async def live_ids(ws: Any, count: int, timeout: float = 10.0) -> list[str]:
    ids: list[str] = []
    while len(ids) < count:
        event = await recv(ws, timeout)
        assert event["type"] == "notification", event
        ids.append(event["notification"]["id"])
    return ids


async def test_resume_replays_what_was_missed_once_in_order_then_live(env: Env) -> None:
    """An observer stays connected throughout; the resumed client must see, after its last
    id, exactly the observer's sequence (mixed priorities, sent concurrently)."""
    user = uid()
    token = env.token(user)
    async with websockets.connect(f"{env.ws_url}?token={token}", max_queue=None) as observer:
        assert (await recv(observer))["type"] == "pending"
        async with websockets.connect(f"{env.ws_url}?token={token}") as first:
            assert (await recv(first))["type"] == "pending"
            for i in range(3):
                await env.send(user, title=f"before{i}")
            seen = await live_ids(first, 3)
            assert seen == await live_ids(observer, 3)
        last = seen[-1]
        sent = await asyncio.gather(
            *[
                env.send(user, title=f"missed{i}", priority=("high", "normal", "low")[i % 3])
                for i in range(9)
            ]
        )
        order = await live_ids(observer, 9)
        assert sorted(order) == sorted(sent)
        async with websockets.connect(f"{env.ws_url}?token={token}&since={last}") as resumed:
            head = await recv(resumed)
            assert head == {"type": "resumed", "missed": 9, "unread_count": 12}
            replay = [await recv(resumed) for _ in range(9)]
            assert [e["type"] for e in replay] == ["notification"] * 9
            assert [e["notification"]["id"] for e in replay] == order
            assert replay[0]["notification"]["user_id"] == user
            nid = await env.send(user, title="live")
            event = await recv(resumed)
            assert (event["type"], event["notification"]["id"]) == ("notification", nid)
            await nothing_more(resumed)
        assert (await recv(observer))["notification"]["id"] == nid


async def test_reconnecting_again_and_again_during_a_stream_loses_and_repeats_nothing(
    env: Env,
) -> None:
    """Notifications keep coming while a client drops and resumes over and over (each
    time from the last id it got, often while replay and live events overlap): what it
    got, end to end, is exactly what a client connected throughout got, in that order."""
    user = uid()
    token = env.token(user)
    total = 90
    rng = random.Random(7)
    # Unbounded client queues: a websockets client whose queue is full stops reading its
    # socket, so the observer (read only at the end) would miss its keepalive pongs and a
    # client leaving with frames unread would wait out its close timeout.
    async with websockets.connect(f"{env.ws_url}?token={token}", max_queue=None) as observer:
        assert (await recv(observer))["notifications"] == []
        sem = asyncio.Semaphore(6)

        async def one() -> str:
            async with sem:
                return await env.send(user)

        sending = asyncio.gather(*[one() for _ in range(total)])
        got: list[str] = []
        reconnects = 0
        while len(got) < total:
            since = f"&since={got[-1]}" if got else ""
            url = f"{env.ws_url}?token={token}{since}"
            async with websockets.connect(url, max_queue=None) as ws:
                head = await recv(ws)
                assert head["type"] == ("resumed" if got else "pending"), head
                for _ in range(rng.randint(1, 4)):
                    try:
                        event = await recv(ws, timeout=1.0)
                    except TimeoutError:
                        break
                    assert event["type"] == "notification", event
                    got.append(event["notification"]["id"])
            reconnects += 1
        sent = await sending
        order = await live_ids(observer, total)
    assert sorted(order) == sorted(sent)
    assert got == order
    assert reconnects > 5
    async with websockets.connect(f"{env.ws_url}?token={token}&since={got[-1]}") as ws:
        assert await recv(ws) == {"type": "resumed", "missed": 0, "unread_count": total}
        await nothing_more(ws, 0.3)


async def test_resume_since_nothing_missed_and_empty_since(env: Env) -> None:
    user = uid()
    nid = await env.send(user)
    await env.wait_inbox(user, 1)
    async with websockets.connect(f"{env.ws_url}?token={env.token(user)}&since={nid}") as ws:
        assert await recv(ws) == {"type": "resumed", "missed": 0, "unread_count": 1}
        await nothing_more(ws, 0.3)
    async with websockets.connect(f"{env.ws_url}?token={env.token(user)}&since=") as ws:
        pending = await recv(ws)
        assert pending["type"] == "pending" and pending["notifications"][0]["id"] == nid


async def test_resume_from_unknown_or_foreign_id_is_refused_with_400(env: Env) -> None:
    user, other = uid(), uid()
    theirs = await env.send(other)
    await env.wait_inbox(other, 1)
    for since in (str(uuid.uuid4()), theirs, "x" * 65):
        with pytest.raises(websockets.InvalidStatus) as info:
            async with websockets.connect(f"{env.ws_url}?token={env.token(user)}&since={since}"):
                pass
        response = info.value.response
        assert response.status_code == 400
        error = json.loads(response.body)["error"]
        assert error["code"] == "invalid_argument"
        assert error["message"].startswith("since: ")
    r = await env.http.get(
        "/notifications/stream",
        params={"token": env.token(user)},
        headers={"last-event-id": theirs},
    )
    assert r.status_code == 400
    assert r.json()["error"]["message"].startswith("Last-Event-ID: ")
    r = await env.http.get(
        "/notifications/stream", params={"token": env.token(user), "last_event_id": theirs}
    )
    assert r.status_code == 400
    assert r.json()["error"]["message"].startswith("last_event_id: ")


async def test_sse_requires_a_token(env: Env) -> None:
    for params, headers in (({}, {}), ({"token": "garbage"}, {}), ({}, env.producer)):
        r = await env.http.get("/notifications/stream", params=params, headers=headers)
        assert r.status_code == 401, (params, headers)
        assert r.json()["error"]["code"] == "unauthenticated"


async def test_sse_pending_then_live_events_with_ids_and_last_event_id_resumes(
    env: Env,
) -> None:
    user = uid()
    old = await env.send(user, title="old")
    await env.wait_inbox(user, 1)
    async with sse(env, user) as stream:
        pending = await stream.event()
        assert "id" not in pending
        assert pending["data"]["type"] == "pending"
        assert [n["id"] for n in pending["data"]["notifications"]] == [old]
        assert pending["data"]["unread_count"] == 1
        live = [await send_routed(env, user, 2 + i, title=f"live{i}") for i in range(2)]
        events = [await stream.event() for _ in range(2)]
        assert [e["id"] for e in events] == live
        assert [e["data"]["notification"]["id"] for e in events] == live
        assert {e["data"]["type"] for e in events} == {"notification"}
    missed = [await send_routed(env, user, 4 + i, title=f"missed{i}") for i in range(3)]
    async with sse(env, user, headers={"last-event-id": live[-1]}) as stream:
        head = await stream.event()
        assert "id" not in head
        assert head["data"] == {"type": "resumed", "missed": 3, "unread_count": 6}
        replay = [await stream.event() for _ in range(3)]
        assert [e["id"] for e in replay] == missed
        nid = await env.send(user, title="after")
        event = await stream.event()
        assert event["id"] == nid
    # EventSource polyfills pass the id in the query; a bearer header works as well.
    bearer = env.user(user)
    async with sse(env, user, headers=bearer, last_event_id=missed[0]) as stream:
        head = await stream.event()
        assert head["data"]["missed"] == 3
        assert [(await stream.event())["id"] for _ in range(3)] == [*missed[1:], nid]


async def test_sse_counts_as_presence_while_open(env: Env) -> None:
    user = uid()
    assert env.node.backends is not None
    presence = env.node.backends.presence
    async with sse(env, user) as stream:
        await stream.event()
        (info,) = await presence.get([user])
        assert info.online and info.connections == 1

    async def connections() -> int:
        (i,) = await presence.get([user])
        return i.connections

    await eventually(connections, lambda n: n == 0)


async def test_more_missed_than_the_replay_cap_asks_for_a_resync(settings: NodeSettings) -> None:
    async with running(settings, rate_limits=LIFTED) as env:
        user = uid()
        first = await env.send(user)
        await env.wait_inbox(user, 1)
        sem = asyncio.Semaphore(50)

        async def one() -> str:
            async with sem:
                return await env.send(user)

        flood = set(await asyncio.gather(*[one() for _ in range(RESUME_MAX_MISSED + 1)]))
        total = RESUME_MAX_MISSED + 2

        async def unread() -> int:
            r = await env.http.get("/notifications/unread-count", headers=env.user(user))
            return int(r.json()["unread_count"])

        await eventually(unread, lambda n: n == total, timeout=60)
        url = f"{env.ws_url}?token={env.token(user)}&since={first}"
        async with websockets.connect(url, max_queue=None) as ws:
            assert await recv(ws, timeout=20) == {"type": "resync", "unread_count": total}
            nid = await env.send(user)
            # Live events of the flood's last batch may still be on their way (the inbox
            # commit comes before the publish); after a resync they are the client's to merge.
            while (got := (await recv(ws, timeout=20))["notification"]["id"]) != nid:
                assert got in flood


async def test_a_slow_sse_client_is_dropped_and_others_keep_receiving(
    settings: NodeSettings,
) -> None:
    """As for the WebSocket: a tiny receive buffer that is never read, a short send queue."""
    async with running(settings, ws_send_queue=300, rate_limits=LIFTED) as env:
        user = uid()
        total = 1_500
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.setblocking(False)
        loop = asyncio.get_running_loop()
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
            (i,) = await presence.get([user])
            return i.connections

        await eventually(connections, lambda n: n == 1)
        async with sse(env, user) as fast:
            assert (await fast.event())["data"]["type"] == "pending"
            await eventually(connections, lambda n: n == 2)
            big = "x" * 9_000
            sem = asyncio.Semaphore(50)
            # The reading client parses in this test's own event loop, beside the senders: a
            # window of sends ahead of what it has read keeps it from being the slow one on a
            # busy machine (its queue holds 300); the never-reading client still overflows.
            window = asyncio.Semaphore(150)

            async def one() -> str:
                await window.acquire()
                async with sem:
                    return await env.send(user, message=big)

            async def read_all() -> set[str]:
                seen: set[str] = set()
                while len(seen) < total:
                    event = await fast.event(timeout=20)
                    assert "id" in event, f"the reading client got {event['data']}"
                    seen.add(event["id"])
                    window.release()
                return seen

            reading = asyncio.ensure_future(read_all())
            ids = await asyncio.gather(*[one() for _ in range(total)])
            assert await reading == set(ids)
            await eventually(connections, lambda n: n == 1, timeout=15)
            # What the slow client can still read: the stream up to where it was dropped,
            # or nothing, its connection reset when it did not take its last event in time.
            data = b""
            with contextlib.suppress(ConnectionResetError):
                while not data.endswith(b"0\r\n\r\n") and (
                    chunk := await asyncio.wait_for(loop.sock_recv(slow, 65536), 20)
                ):
                    data += chunk
            slow.close()
            assert data == b"" or data.startswith(b"HTTP/1.1 200")
            assert data.count(b"\nid: ") < total
            nid = await env.send(user)
            assert (await fast.event())["id"] == nid


async def test_a_stopping_node_ends_its_event_streams_cleanly(settings: NodeSettings) -> None:
    """The hub's drain asks each stream to go: it ends with a complete body (not cut when
    the grace runs out), so EventSource reconnects at once, elsewhere."""
    node = Node(settings)
    await node.start()
    user = uid()
    token = issue_user_token(JWT_SECRET, user)
    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{node.http_port}", timeout=10) as http,
        http.stream("GET", "/notifications/stream", params={"token": token}) as response,
    ):
        stream = Sse(response)
        assert (await stream.event())["data"]["type"] == "pending"
        stopping = asyncio.ensure_future(node.stop())
        async with asyncio.timeout(8):
            rest = [line async for line in stream.lines]
        assert [line for line in rest if line and not line.startswith(":")] == []
        await asyncio.wait_for(stopping, 10)
