"""A batch's live events go out as one envelope per holder (hub) of its users, on the
in-memory backends (hubs of one process) and on Redis (each hub its own connection, as an
edge process has): every connection of every online user gets each event exactly once,
wherever it is held; what presence cannot place goes per user, so nothing is lost."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from notify_core.cache.base import CacheBackends
from notify_core.cache.factory import create_cache_backends
from notify_core.cache.redis import RedisBackends
from notify_core.constants import LIVE_BY_HOLDER_MIN
from notify_core.live import publish_changes
from realtime_svc.hub import Hub
from tests.support.ids import uid
from tests.support.waiting import eventually

HUBS = 3
N = LIVE_BY_HOLDER_MIN // 2


class Conn:
    """A live connection as the hub sees it, keeping the frames it is offered."""

    def __init__(self, user_id: str, conn_id: str) -> None:
        self.user_id = user_id
        self.conn_id = conn_id
        self.frames: list[dict[str, Any]] = []

    def offer(self, payload: bytes) -> None:
        self.frames.append(json.loads(payload))

    def ids(self) -> list[str]:
        return [f["notification"]["id"] for f in self.frames]


class Cluster:
    """``HUBS`` hubs and a publisher, each on its own backends (Redis) or all on one
    (memory)."""

    def __init__(self, make: Callable[[], CacheBackends], namespace: str) -> None:
        self._make = make
        self.namespace = namespace
        self.hubs: list[Hub] = []
        self.publisher: CacheBackends = make()
        self._backends = [self.publisher]

    async def start(self) -> None:
        for _ in range(HUBS):
            backends = self._make()
            if backends is not self.publisher:
                self._backends.append(backends)
            hub = Hub(backends, self.namespace)
            await hub.start()
            self.hubs.append(hub)

    async def close(self) -> None:
        for hub in self.hubs:
            await hub.close()
        for backends in dict.fromkeys(self._backends):
            await backends.close()

    async def connect(self, hub: int, user_id: str, conn_id: str | None = None) -> Conn:
        conn = Conn(user_id, conn_id or self.hubs[hub].new_connection_id())
        await self.hubs[hub].attach(conn)
        return conn

    async def publish(self, rows: list[dict[str, Any]], **kwargs: Any) -> list[int]:
        presence = kwargs.pop("presence", self.publisher.presence)
        return await publish_changes(
            self.publisher.pubsub, self.namespace, rows, [], presence=presence, **kwargs
        )


@pytest.fixture(params=["memory", "redis"])
async def cluster(request: pytest.FixtureRequest, namespace: str) -> AsyncIterator[Cluster]:
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        built = Cluster(lambda: create_cache_backends(url, namespace), namespace)
    else:
        shared = create_cache_backends(None, namespace)
        built = Cluster(lambda: shared, namespace)
    await built.start()
    try:
        yield built
    finally:
        await built.close()


def row(user_id: str, n: int) -> dict[str, Any]:
    at = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(milliseconds=n)
    return {
        "id": uid(),
        "user_id": user_id,
        "type": "t",
        "title": f"#{n}",
        "message": "m",
        "data": {},
        "priority": "normal",
        "read": False,
        "created_at": at,
        "routed_at": at,
    }


async def until_received(conns: list[Conn], expected: dict[str, list[str]]) -> None:
    """Wait until each connection has at least its user's expected events."""

    def done() -> bool:
        return all(len(c.frames) >= len(expected.get(c.user_id, [])) for c in conns)

    await eventually(done, bool)


async def settled(cluster: Cluster) -> None:
    """Return once whatever was published before reached every hub (one more event to a
    new user on each hub arrives after it)."""
    marks = [await cluster.connect(h, f"mark-{h}-{uid()}") for h in range(HUBS)]
    await cluster.publish([row(m.user_id, 0) for m in marks])
    await until_received(marks, {m.user_id: ["mark"] for m in marks})


async def test_a_batch_reaches_every_connection_once_with_one_message_per_hub(
    cluster: Cluster,
) -> None:
    users = [f"u{i}" for i in range(300)]
    conns = [await cluster.connect(i % HUBS, u) for i, u in enumerate(users) if i % 10]
    both = await cluster.connect(0, "u1")  # a second device of u1, on another hub
    twice = await cluster.connect(2, "u2")  # and a second connection of u2 on its hub
    conns += [both, twice]
    rows = [row(u, n) for n, u in enumerate(users * 2)]  # two events per user
    expected: dict[str, list[str]] = {}
    for r in rows:
        expected.setdefault(r["user_id"], []).append(r["id"])

    counts = await cluster.publish(rows)

    assert counts == [1] * HUBS  # one envelope per hub, each heard by that hub alone
    await until_received(conns, expected)
    await settled(cluster)
    for conn in conns:
        assert conn.ids() == expected[conn.user_id], conn.user_id
    assert {f["type"] for c in conns for f in c.frames} == {"notification"}


async def test_a_small_batch_goes_per_user(cluster: Cluster) -> None:
    conns = [await cluster.connect(i % HUBS, f"s{i}") for i in range(LIVE_BY_HOLDER_MIN - 1)]
    rows = [row(c.user_id, n) for n, c in enumerate(conns)]

    counts = await cluster.publish(rows)

    assert counts == [1] * len(rows)
    await until_received(conns, {r["user_id"]: [r["id"]] for r in rows})
    await settled(cluster)
    assert all(c.ids() == [r["id"]] for c, r in zip(conns, rows, strict=True))


async def test_a_holder_nobody_listens_for_falls_back_to_the_users_channel(
    cluster: Cluster,
) -> None:
    # Connection ids in no holder's format (as a hub of an earlier version makes), and
    # the entry of a holder that is gone while its entries have not expired yet.
    plain = [await cluster.connect(1, f"p{i}", conn_id=uid()) for i in range(N)]
    held = [await cluster.connect(0, f"h{i}") for i in range(N)]
    await cluster.publisher.presence.connect("h0", "gonehub.c1", ttl=30)
    rows = [row(c.user_id, n) for n, c in enumerate(plain + held)]

    counts = await cluster.publish(rows)

    # N + 1 silent holders and hub 0's envelope, then N + 1 events per user (h0 again).
    assert len(counts) == (N + 2) + (N + 1)
    assert counts[: N + 2].count(0) == N + 1 and counts[N + 2 :] == [1] * (N + 1)
    expected = {r["user_id"]: [r["id"]] for r in rows}
    await until_received(plain + held, expected)
    await settled(cluster)
    assert all(c.ids() == expected[c.user_id] for c in plain + held[1:])
    assert held[0].ids() == expected["h0"] * 2  # at least once: also held by a live hub


async def test_unreadable_presence_falls_back_to_the_users_channel(
    cluster: Cluster, namespace: str
) -> None:
    conns = [await cluster.connect(i % HUBS, f"f{i}") for i in range(LIVE_BY_HOLDER_MIN)]
    rows = [row(c.user_id, n) for n, c in enumerate(conns)]
    down = RedisBackends("redis://127.0.0.1:1/0", namespace, timeout=0.5)
    try:
        counts = await cluster.publish(rows, presence=down.presence)
    finally:
        await down.close()

    assert counts == [1] * len(rows)
    expected = {r["user_id"]: [r["id"]] for r in rows}
    await until_received(conns, expected)
    await settled(cluster)
    assert all(c.ids() == expected[c.user_id] for c in conns)


async def test_users_offline_get_nothing_published(cluster: Cluster) -> None:
    online = [await cluster.connect(0, f"o{i}") for i in range(5)]
    rows = [row(f"x{i}", i) for i in range(100)] + [row(c.user_id, 0) for c in online]

    counts = await cluster.publish(rows)

    assert counts == [1]  # hub 0's envelope alone
    await until_received(online, {c.user_id: ["x"] for c in online})
    assert all(len(c.frames) == 1 for c in online)
