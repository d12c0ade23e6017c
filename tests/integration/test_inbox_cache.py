"""The inbox cache (first page, unread count), on both backends: what is cached is served,
every kind of change shows on the next read, a read computed before a change is never
cached after it, and a cache backend that fails leaves reads to the database."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets
from notify.v1 import realtime_pb2, realtime_pb2_grpc

from notify_app.settings import NodeSettings
from notify_core.cache.base import CacheBackends
from notify_core.cache.memory import MemoryBackends
from notify_core.cache.redis import RedisBackends
from notify_core.db.schema import notifications
from notify_core.inbox_cache import InboxCache
from realtime_svc.inbox import Inbox
from tests.support.ids import uid
from tests.support.live import recv
from tests.support.nodes import Env, running
from tests.support.waiting import eventually


async def _retitle_behind_the_cache(env: Env, nid: str, title: str) -> None:
    """Change a row without telling the cache (no writer of ours does this)."""
    async with env.node.database.write() as conn:
        await conn.execute(
            notifications.update().where(notifications.c.id == nid).values(title=title)
        )


async def _routed(env: Env, user: str, **fields: Any) -> str:
    """Send and wait for the live event, which goes out after the router's commit and its
    invalidation: from then on nothing of this send changes the user's cached reads."""
    async with websockets.connect(f"{env.ws_url}?token={env.token(user)}") as ws:
        assert (await recv(ws))["type"] == "pending"
        nid = await env.send(user, **fields)
        assert (await recv(ws))["notification"]["id"] == nid
    return nid


async def _unread(env: Env, user: str) -> int:
    r = await env.http.get("/notifications/unread-count", headers=env.user(user))
    assert r.status_code == 200, r.text
    return int(r.json()["unread_count"])


async def _cached_page(env: Env, user: str, count: int) -> dict[str, object]:
    """The default page once it shows ``count`` entries (routing is asynchronous)."""
    return await eventually(
        lambda: env.inbox(user), lambda p: len(p["notifications"]) == count, timeout=10.0
    )


async def test_the_first_page_and_count_are_served_from_the_cache(env: Env) -> None:
    user = uid()
    nid = await _routed(env, user, title="before")
    await _cached_page(env, user, 1)
    assert await _unread(env, user) == 1
    await _retitle_behind_the_cache(env, nid, "behind")
    page = await env.inbox(user)
    assert page["notifications"][0]["title"] == "before"  # cached
    # other pages and sizes are not cached
    other = await env.inbox(user, limit=5)
    assert other["notifications"][0]["title"] == "behind"


async def test_a_new_notification_shows_on_the_next_read(env: Env) -> None:
    user = uid()
    await env.send(user)
    await _cached_page(env, user, 1)
    assert await _unread(env, user) == 1
    await env.send(user)
    # well within the cache's 30 s lifetime: the router's commit invalidated it
    page = await _cached_page(env, user, 2)
    assert page["unread_count"] == 2
    assert await _unread(env, user) == 2


async def test_mark_read_and_mark_all_read_show_at_once(env: Env) -> None:
    user = uid()
    first = await env.send(user)
    await env.send(user)
    await env.send(user)
    await _cached_page(env, user, 3)
    assert await _unread(env, user) == 3
    r = await env.http.patch(f"/notifications/{first}/read", headers=env.user(user))
    assert r.status_code == 200
    page = await env.inbox(user)
    assert page["unread_count"] == 2
    assert {n["id"]: n["read"] for n in page["notifications"]}[first] is True
    assert await _unread(env, user) == 2
    r = await env.http.patch("/notifications/read-all", headers=env.user(user))
    assert r.json() == {"updated": 2}
    page = await env.inbox(user)
    assert page["unread_count"] == 0
    assert all(n["read"] for n in page["notifications"])
    assert await _unread(env, user) == 0


async def test_mark_read_over_grpc_shows_at_once(env: Env) -> None:
    user = uid()
    nid = await env.send(user)
    await _cached_page(env, user, 1)
    assert await _unread(env, user) == 1
    stub = realtime_pb2_grpc.RealtimeServiceStub(env.grpc_channel)
    await stub.MarkRead(realtime_pb2.MarkReadRequest(user_id=user, id=nid), metadata=env.metadata)
    assert await _unread(env, user) == 0
    assert (await env.inbox(user))["notifications"][0]["read"] is True


async def test_a_merge_shows_on_the_next_read(settings: NodeSettings) -> None:
    async with running(settings, dedup_window=3600.0) as env:
        user = uid()
        first = await env.send(user, group_key="post-1", data={"actor": "Alice"})
        await _cached_page(env, user, 1)
        r = await env.http.patch("/notifications/read-all", headers=env.user(user))
        assert r.json() == {"updated": 1}
        assert (await env.inbox(user))["unread_count"] == 0
        await env.send(user, group_key="post-1", data={"actor": "Bob"})
        page = await eventually(
            lambda: env.inbox(user), lambda p: p["notifications"][0]["count"] == 2
        )
        assert [n["id"] for n in page["notifications"]] == [first]
        assert page["unread_count"] == 1  # unread again
        assert await _unread(env, user) == 1


@pytest.fixture(params=["memory", "redis"])
async def backends(request: pytest.FixtureRequest) -> AsyncIterator[CacheBackends]:
    if request.param == "memory":
        made: CacheBackends = MemoryBackends()
    else:
        made = RedisBackends(
            request.getfixturevalue("redis_url"), request.getfixturevalue("namespace")
        )
    yield made
    await made.close()


async def test_a_read_computed_before_a_change_is_not_served_after_it(
    backends: CacheBackends,
) -> None:
    cache = InboxCache(backends, getattr(backends, "namespace", "mem"))
    user = uid()

    async def stale() -> tuple[int, bytes]:
        # the database was read; then the change commits and its writer forgets
        await cache.forget([user])
        return 1, b"stale"

    async def fresh() -> tuple[int, bytes]:
        return 0, b"fresh"

    async def fresh_count_never() -> int:
        raise AssertionError("the count is in the cached page")

    assert await cache.first_page(user, stale) == b"stale"  # answered, but not kept
    assert await cache.first_page(user, fresh) == b"fresh"
    assert await cache.first_page(user, stale) == b"fresh"  # kept: served from the cache

    assert await cache.unread(user, fresh_count_never) == 0  # the cached page's count
    await cache.forget([user])

    async def stale_count() -> int:
        await cache.forget([user])
        return 5

    async def fresh_count() -> int:
        return 7

    assert await cache.unread(user, stale_count) == 5
    assert await cache.unread(user, fresh_count) == 7
    assert await cache.unread(user, stale_count) == 7
    await cache.forget([user])


def _closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_reads_answer_from_the_database_when_the_cache_fails(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    user = uid()
    nid = await env.send(user, title="stored")
    await env.wait_inbox(user, 1)
    dead = RedisBackends(f"redis://127.0.0.1:{_closed_port()}/0", "gone", timeout=0.5)
    inbox = Inbox(env.node.database, InboxCache(dead, "gone"))
    try:
        with caplog.at_level(logging.WARNING, logger="notify_core.inbox_cache"):
            body = await inbox.page_body(user)
            assert b'"title":"stored"' in body and nid.encode() in body
            assert await inbox.unread_count(user) == 1
            assert await inbox.mark_read(user, nid) == 0  # the forget fails, logged
            assert await inbox.unread_count(user) == 0
        assert "inbox cache" in caplog.text
    finally:
        await dead.close()


async def test_a_row_changed_by_sql_alone_is_read_again_after_forget(env: Env) -> None:
    user = uid()
    nid = await _routed(env, user, title="one")
    await _cached_page(env, user, 1)
    await _retitle_behind_the_cache(env, nid, "two")
    assert (await env.inbox(user))["notifications"][0]["title"] == "one"
    await InboxCache(env.node.backends, env.node.settings.namespace).forget([user])
    assert (await env.inbox(user))["notifications"][0]["title"] == "two"
