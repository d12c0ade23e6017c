"""The contract of ``notify_core.cache.base``, checked against every implementation.

Each test runs on the in-memory backends and on Redis (skipped, or failed under
``NOTIFY_TEST_REQUIRE_REAL=1``, when Redis is not reachable). Keys and channels are under
the test's own namespace.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from notify_core.cache.base import CacheBackends
from notify_core.cache.factory import create_cache_backends
from notify_core.cache.memory import MemoryBackends
from notify_core.cache.redis import RedisBackends
from notify_core.constants import (
    cache_client_name,
    rate_key,
    subscriber_client_name,
    user_channel,
)
from notify_core.errors import CacheUnavailable
from notify_core.holders import connection_id, new_holder_id
from notify_core.ratelimit import Limit, check
from tests.support.waiting import eventually


@pytest.fixture(params=["memory", "redis"])
async def backends(request: pytest.FixtureRequest, namespace: str) -> AsyncIterator[CacheBackends]:
    url: str | None = None
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
    built = create_cache_backends(url, namespace)
    assert isinstance(built, RedisBackends if url else MemoryBackends)
    await built.ping()
    try:
        yield built
    finally:
        await built.close()
        if url is not None:
            admin = aioredis.Redis.from_url(url)
            try:
                keys = [k async for k in admin.scan_iter(match=f"{namespace}:*")]
                if keys:
                    await admin.delete(*keys)
            finally:
                await admin.aclose()


class Inbox:
    """Collects what a subscriber set receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []

    def __call__(self, channel: str, payload: bytes) -> None:
        self.messages.append((channel, payload))

    def payloads(self, channel: str) -> list[bytes]:
        return [p for c, p in self.messages if c == channel]


# --- cache ------------------------------------------------------------------------------


async def test_get_answers_what_set_stored_and_none_for_a_missing_key(
    backends: CacheBackends, namespace: str
) -> None:
    await backends.cache.set(f"{namespace}:a", b"\x00value")
    assert await backends.cache.get(f"{namespace}:a") == b"\x00value"
    assert await backends.cache.get(f"{namespace}:missing") is None


async def test_set_overwrites_and_clears_the_previous_ttl(
    backends: CacheBackends, namespace: str
) -> None:
    key = f"{namespace}:k"
    await backends.cache.set(key, b"1", ttl=0.2)
    await backends.cache.set(key, b"2")
    await asyncio.sleep(0.35)
    assert await backends.cache.get(key) == b"2"


async def test_a_key_is_gone_after_its_ttl(backends: CacheBackends, namespace: str) -> None:
    await backends.cache.set(f"{namespace}:short", b"x", ttl=0.2)
    await backends.cache.set(f"{namespace}:long", b"y", ttl=30)
    assert await backends.cache.get(f"{namespace}:short") == b"x"
    await asyncio.sleep(0.35)
    assert await backends.cache.get(f"{namespace}:short") is None
    assert await backends.cache.get(f"{namespace}:long") == b"y"


async def test_get_many_answers_in_the_order_asked(backends: CacheBackends, namespace: str) -> None:
    for name in ("a", "b", "c"):
        await backends.cache.set(f"{namespace}:{name}", name.encode())
    keys = [f"{namespace}:{n}" for n in ("c", "missing", "a", "b", "a")]
    assert await backends.cache.get_many(keys) == [b"c", None, b"a", b"b", b"a"]
    assert await backends.cache.get_many([]) == []


async def test_delete_answers_how_many_keys_existed(
    backends: CacheBackends, namespace: str
) -> None:
    await backends.cache.set(f"{namespace}:a", b"1")
    await backends.cache.set(f"{namespace}:b", b"2")
    await backends.cache.set(f"{namespace}:expired", b"3", ttl=0.05)
    await asyncio.sleep(0.15)
    removed = await backends.cache.delete(
        f"{namespace}:a", f"{namespace}:b", f"{namespace}:missing", f"{namespace}:expired"
    )
    assert removed == 2
    assert await backends.cache.get(f"{namespace}:a") is None
    assert await backends.cache.delete(f"{namespace}:a") == 0


async def test_incr_counts_from_zero_and_is_readable_as_digits(
    backends: CacheBackends, namespace: str
) -> None:
    key = f"{namespace}:n"
    assert await backends.cache.incr(key) == 1
    assert await backends.cache.incr(key, 5) == 6
    assert await backends.cache.incr(key, -10) == -4
    assert await backends.cache.get(key) == b"-4"


async def test_incr_is_atomic_under_200_concurrent_increments(
    backends: CacheBackends, namespace: str
) -> None:
    key = f"{namespace}:counter"
    results = await asyncio.gather(*(backends.cache.incr(key, ttl=30) for _ in range(200)))
    assert sorted(results) == list(range(1, 201))
    assert await backends.cache.get(key) == b"200"


async def test_incr_ttl_is_set_when_the_key_is_created_and_not_extended(
    backends: CacheBackends, namespace: str
) -> None:
    key = f"{namespace}:window"
    await backends.cache.incr(key, ttl=0.3)
    await asyncio.sleep(0.15)
    assert await backends.cache.incr(key, ttl=0.3) == 2  # must not push the expiry back
    await asyncio.sleep(0.25)
    assert await backends.cache.get(key) is None
    assert await backends.cache.incr(key, ttl=0.3) == 1


async def test_incr_of_a_value_that_is_not_an_integer_raises_value_error(
    backends: CacheBackends, namespace: str
) -> None:
    await backends.cache.set(f"{namespace}:text", b"hello")
    with pytest.raises(ValueError):
        await backends.cache.incr(f"{namespace}:text")


# --- pub/sub ----------------------------------------------------------------------------


async def test_publish_with_no_subscriber_answers_zero(
    backends: CacheBackends, namespace: str
) -> None:
    assert await backends.pubsub.publish(user_channel(namespace, "nobody"), b"x") == 0


async def test_messages_published_after_subscribe_arrive_in_order(
    backends: CacheBackends, namespace: str
) -> None:
    inbox = Inbox()
    subscriber = await backends.pubsub.subscriber(inbox)
    channel = user_channel(namespace, "u1")
    await subscriber.subscribe(channel)
    # No wait in between: subscribe has returned, so the subscription is active.
    assert await backends.pubsub.publish(channel, b"0") == 1
    for i in range(1, 50):
        await backends.pubsub.publish(channel, str(i).encode())
    await eventually(lambda: len(inbox.messages) == 50, bool, 10.0)
    assert inbox.payloads(channel) == [str(i).encode() for i in range(50)]
    await subscriber.close()


async def test_publish_many_delivers_in_order_and_counts_receivers(
    backends: CacheBackends, namespace: str
) -> None:
    inbox = Inbox()
    subscriber = await backends.pubsub.subscriber(inbox)
    a, b, nobody = (user_channel(namespace, x) for x in ("a", "b", "nobody"))
    await subscriber.subscribe(a, b)
    counts = await backends.pubsub.publish_many([(a, b"1"), (nobody, b"x"), (b, b"2"), (a, b"3")])
    assert counts == [1, 0, 1, 1]
    await eventually(lambda: len(inbox.messages) == 3, bool, 10.0)
    assert inbox.messages == [(a, b"1"), (b, b"2"), (a, b"3")]
    assert await backends.pubsub.publish_many([]) == []
    await subscriber.close()


async def test_unsubscribe_stops_delivery_on_that_channel_only(
    backends: CacheBackends, namespace: str
) -> None:
    inbox = Inbox()
    subscriber = await backends.pubsub.subscriber(inbox)
    gone, kept = user_channel(namespace, "gone"), user_channel(namespace, "kept")
    await subscriber.subscribe(gone, kept)
    await subscriber.unsubscribe(gone)
    assert await backends.pubsub.publish(gone, b"x") == 0
    assert await backends.pubsub.publish(kept, b"y") == 1
    await eventually(lambda: inbox.payloads(kept) == [b"y"], bool, 10.0)
    # One connection delivers in publish order: "x" would have arrived before "y".
    assert inbox.payloads(gone) == []
    await subscriber.close()


async def test_two_subscriber_sets_both_receive_and_publish_counts_two(
    backends: CacheBackends, namespace: str
) -> None:
    first, second = Inbox(), Inbox()
    sub1 = await backends.pubsub.subscriber(first)
    sub2 = await backends.pubsub.subscriber(second)
    channel = user_channel(namespace, "shared")
    await sub1.subscribe(channel)
    await sub2.subscribe(channel, channel)  # a repeated channel counts once
    assert await backends.pubsub.publish(channel, b"hello") == 2
    await eventually(lambda: first.messages == second.messages == [(channel, b"hello")], bool, 10.0)
    await sub1.close()
    assert await backends.pubsub.publish(channel, b"again") == 1
    await sub2.close()


async def test_subscribe_to_thousands_of_channels_at_once(
    backends: CacheBackends, namespace: str
) -> None:
    inbox = Inbox()
    subscriber = await backends.pubsub.subscriber(inbox)
    channels = [user_channel(namespace, f"u{i}") for i in range(3000)]
    await subscriber.subscribe(*channels)
    for channel in (channels[0], channels[1500], channels[-1]):
        assert await backends.pubsub.publish(channel, channel.encode()) == 1
    await eventually(lambda: len(inbox.messages) == 3, bool, 10.0)
    assert [p for _, p in inbox.messages] == [
        c.encode() for c in (channels[0], channels[1500], channels[-1])
    ]
    await subscriber.close()


async def test_a_handler_that_raises_does_not_stop_delivery(
    backends: CacheBackends, namespace: str
) -> None:
    received: list[bytes] = []

    def handler(channel: str, payload: bytes) -> None:
        received.append(payload)
        if payload == b"boom":
            raise RuntimeError("handler bug")

    subscriber = await backends.pubsub.subscriber(handler)
    channel = user_channel(namespace, "u")
    await subscriber.subscribe(channel)
    await backends.pubsub.publish(channel, b"boom")
    await backends.pubsub.publish(channel, b"after")
    await eventually(lambda: received == [b"boom", b"after"], bool, 10.0)
    await subscriber.close()


async def test_a_closed_subscriber_receives_nothing(
    backends: CacheBackends, namespace: str
) -> None:
    inbox = Inbox()
    subscriber = await backends.pubsub.subscriber(inbox)
    channel = user_channel(namespace, "u")
    await subscriber.subscribe(channel)
    await subscriber.close()
    assert await backends.pubsub.publish(channel, b"x") == 0
    with pytest.raises(CacheUnavailable):
        await subscriber.subscribe(channel)
    assert inbox.messages == []


# --- presence ---------------------------------------------------------------------------


async def test_a_user_never_seen_is_offline_without_last_seen(
    backends: CacheBackends,
) -> None:
    [info] = await backends.presence.get(["never"])
    assert (info.user_id, info.online, info.connections, info.last_seen) == (
        "never",
        False,
        0,
        None,
    )


async def test_connect_makes_online_and_disconnect_offline_with_last_seen(
    backends: CacheBackends,
) -> None:
    before = time.time()
    await backends.presence.connect("alice", "c1", ttl=30)
    [info] = await backends.presence.get(["alice"])
    assert info.online and info.connections == 1
    assert info.last_seen is not None and before - 1 <= info.last_seen <= time.time() + 1
    await backends.presence.disconnect("alice", "c1")
    [info] = await backends.presence.get(["alice"])
    assert not info.online and info.connections == 0
    assert info.last_seen is not None and before - 1 <= info.last_seen <= time.time() + 1


async def test_a_user_stays_online_until_the_last_connection_goes(
    backends: CacheBackends,
) -> None:
    await backends.presence.connect("bob", "c1", ttl=30)
    await backends.presence.connect("bob", "c2", ttl=30)
    await backends.presence.connect("bob", "c2", ttl=30)  # the same connection again
    assert (await backends.presence.get(["bob"]))[0].connections == 2
    await backends.presence.disconnect("bob", "c1")
    [info] = await backends.presence.get(["bob"])
    assert info.online and info.connections == 1
    await backends.presence.disconnect("bob", "c2")
    assert not (await backends.presence.get(["bob"]))[0].online


async def test_connect_with_a_limit_refuses_a_connection_over_it(
    backends: CacheBackends,
) -> None:
    assert await backends.presence.connect("hana", "c1", ttl=30, limit=2)
    assert await backends.presence.connect("hana", "c2", ttl=30, limit=2)
    assert not await backends.presence.connect("hana", "c3", ttl=30, limit=2)
    assert await backends.presence.connect("hana", "c2", ttl=30, limit=2)  # renewed
    assert await backends.presence.connect("ivan", "c1", ttl=30, limit=2)  # per user
    [hana] = await backends.presence.get(["hana"])
    assert hana.connections == 2
    await backends.presence.disconnect("hana", "c1")
    assert await backends.presence.connect("hana", "c3", ttl=30, limit=2)
    assert await backends.presence.connect("hana", "c4", ttl=30)  # no limit: always
    assert (await backends.presence.get(["hana"]))[0].connections == 3


async def test_expired_entries_do_not_count_against_the_limit(backends: CacheBackends) -> None:
    assert await backends.presence.connect("jon", "c1", ttl=0.2, limit=1)
    assert not await backends.presence.connect("jon", "c2", ttl=30, limit=1)
    await asyncio.sleep(0.35)
    assert await backends.presence.connect("jon", "c2", ttl=30, limit=1)
    [jon] = await backends.presence.get(["jon"])
    assert jon.online and jon.connections == 1


async def test_concurrent_connects_never_pass_the_limit(backends: CacheBackends) -> None:
    answers = await asyncio.gather(
        *[backends.presence.connect("kim", f"c{i}", ttl=30, limit=5) for i in range(40)]
    )
    assert sum(answers) == 5
    assert (await backends.presence.get(["kim"]))[0].connections == 5


async def test_an_entry_not_refreshed_expires_and_the_user_goes_offline(
    backends: CacheBackends,
) -> None:
    await backends.presence.connect("carol", "c1", ttl=0.2)
    await backends.presence.connect("carol", "c2", ttl=30)
    await backends.presence.connect("dave", "c1", ttl=0.2)
    await asyncio.sleep(0.35)
    carol, dave = await backends.presence.get(["carol", "dave"])
    assert carol.online and carol.connections == 1
    assert not dave.online and dave.connections == 0
    assert dave.last_seen is not None


async def test_refresh_keeps_entries_alive(backends: CacheBackends) -> None:
    await backends.presence.connect("erin", "c1", ttl=0.3)
    await backends.presence.connect("frank", "c1", ttl=0.3)
    await asyncio.sleep(0.2)
    await backends.presence.refresh([("erin", "c1"), ("frank", "c1")], ttl=0.3)
    await asyncio.sleep(0.2)  # 0.4 s after connect, 0.2 s after refresh
    erin, frank = await backends.presence.get(["erin", "frank"])
    assert erin.online and frank.online
    await asyncio.sleep(0.3)
    erin, frank = await backends.presence.get(["erin", "frank"])
    assert not erin.online and not frank.online


async def test_refresh_updates_last_seen(backends: CacheBackends) -> None:
    await backends.presence.connect("gina", "c1", ttl=30)
    [first] = await backends.presence.get(["gina"])
    await asyncio.sleep(0.05)
    await backends.presence.refresh([("gina", "c1")], ttl=30)
    [second] = await backends.presence.get(["gina"])
    assert first.last_seen is not None and second.last_seen is not None
    assert second.last_seen > first.last_seen


async def test_get_for_many_users_answers_in_the_order_asked(
    backends: CacheBackends,
) -> None:
    users = [f"user{i}" for i in range(200)]
    online = set(users[::3])
    await backends.presence.refresh([(u, "conn") for u in online], ttl=30)
    asked = [*reversed(users), "user0"]
    infos = await backends.presence.get(asked)
    assert [i.user_id for i in infos] == asked
    assert [i.online for i in infos] == [u in online for u in asked]
    assert [i.connections for i in infos] == [1 if u in online else 0 for u in asked]
    assert await backends.presence.get([]) == []


async def test_get_answers_the_holders_of_each_users_live_connections(
    backends: CacheBackends,
) -> None:
    a, b = new_holder_id(), new_holder_id()
    await backends.presence.connect("ola", connection_id(a), ttl=30)
    await backends.presence.connect("ola", connection_id(a), ttl=30)
    await backends.presence.connect("ola", connection_id(b), ttl=30)
    await backends.presence.connect("pia", connection_id(b), ttl=0.2)
    await backends.presence.connect("pia", "plain", ttl=30)  # an id naming no holder
    gone = connection_id(a)
    await backends.presence.connect("rui", gone, ttl=30)
    await backends.presence.disconnect("rui", gone)
    await eventually(lambda: backends.presence.get(["pia"]), lambda i: i[0].connections == 1)
    ola, pia, rui, nobody = await backends.presence.get(["ola", "pia", "rui", "nobody"])
    assert (ola.connections, sorted(ola.holders)) == (3, sorted([a, b]))
    assert pia.holders == ("plain",)
    assert rui.holders == () and nobody.holders == ()


async def test_get_answers_holders_for_a_batch_of_thousands_in_the_order_asked(
    backends: CacheBackends,
) -> None:
    holders = [new_holder_id() for _ in range(4)]
    users = [f"user{i}" for i in range(2_500)]
    await backends.presence.refresh(
        [(u, connection_id(holders[i % 4])) for i, u in enumerate(users) if i % 5], ttl=30
    )
    infos = await backends.presence.get(users)
    assert [i.user_id for i in infos] == users
    assert [i.holders for i in infos] == [
        (holders[i % 4],) if i % 5 else () for i in range(len(users))
    ]


# --- Redis only -------------------------------------------------------------------------


async def test_redis_pooled_clients_are_named_for_their_namespace(
    redis_url: str, namespace: str
) -> None:
    """Operators (and the fault tests) find one deployment's clients in CLIENT LIST."""
    backends = RedisBackends(redis_url, namespace)
    admin = aioredis.Redis.from_url(redis_url)
    try:
        await backends.ping()
        names = [client["name"] for client in await admin.client_list()]
        assert names.count(cache_client_name(namespace)) == 1
    finally:
        await admin.aclose()
        await backends.close()


async def test_redis_subscriber_survives_a_dropped_connection(
    redis_url: str, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    backends = RedisBackends(redis_url, namespace)
    admin = aioredis.Redis.from_url(redis_url)
    try:
        inbox = Inbox()
        subscriber = await backends.pubsub.subscriber(inbox)
        channel = user_channel(namespace, "u")
        await subscriber.subscribe(channel)
        assert await backends.pubsub.publish(channel, b"before") == 1

        killed = 0
        for client in await admin.client_list(_type="pubsub"):
            if client["name"] == subscriber_client_name(namespace):
                killed += await admin.client_kill_filter(_id=client["id"])
        assert killed == 1

        with caplog.at_level(logging.WARNING, logger="notify_core.cache.redis_subscriber"):
            deadline = time.monotonic() + 30
            while b"after" not in inbox.payloads(channel):
                assert time.monotonic() < deadline, "not re-subscribed within 30 s"
                await backends.pubsub.publish(channel, b"after")
                await asyncio.sleep(0.05)
        assert "re-subscribed" in caplog.text
        await subscriber.close()
    finally:
        await admin.aclose()
        await backends.close()


async def test_redis_subscribe_returns_only_once_redis_has_confirmed(
    redis_url: str, namespace: str
) -> None:
    backends = RedisBackends(redis_url, namespace)
    admin = aioredis.Redis.from_url(redis_url)
    try:
        subscriber = await backends.pubsub.subscriber(Inbox())
        channel = user_channel(namespace, "u")
        await admin.client_pause(600, all=True)  # Redis holds every command for 0.6 s
        started = time.monotonic()
        subscribing = asyncio.create_task(subscriber.subscribe(channel))
        await asyncio.sleep(0.3)
        assert not subscribing.done(), "subscribe returned before Redis answered"
        await subscribing
        assert time.monotonic() - started >= 0.5
        assert await admin.pubsub_numsub(channel) == [(channel.encode(), 1)]
        await subscriber.close()
    finally:
        await admin.aclose()
        await backends.close()


async def test_redis_ping_raises_cache_unavailable_without_the_password() -> None:
    backends = RedisBackends("redis://user:hunter2@127.0.0.1:1/0", "unused", timeout=1)
    try:
        with pytest.raises(CacheUnavailable) as raised:
            await backends.ping()
        assert "127.0.0.1:1" in str(raised.value)
        assert "hunter2" not in str(raised.value)
    finally:
        await backends.close()


async def test_redis_subscriber_cannot_start_without_redis() -> None:
    backends = RedisBackends("redis://127.0.0.1:1/0", "unused", timeout=1)
    try:
        with pytest.raises(CacheUnavailable):
            await backends.pubsub.subscriber(Inbox())
    finally:
        await backends.close()


# --- rate limiter -----------------------------------------------------------------------


async def test_rate_limiter_follows_the_pure_arithmetic(
    backends: CacheBackends, namespace: str
) -> None:
    """A scripted sequence of hits, checked against notify_core.ratelimit.check."""
    rule = Limit(3, 60.0)
    key = rate_key(namespace, "u1", "email")
    counted: list[float] = []
    for now in (100.0, 101.0, 102.0, 103.0, 150.0, 160.5, 161.0, 170.0, 230.0):
        expected = check(counted, now, rule)
        verdict = await backends.limiter.hit(key, rule, now=now)
        assert verdict.allowed is expected.allowed, now
        assert verdict.retry_after == pytest.approx(expected.retry_after), now
        assert verdict.remaining == expected.remaining, now
        if expected.allowed:
            counted.append(now)
    assert [v for v in counted] == [100.0, 101.0, 102.0, 160.5, 161.0, 170.0, 230.0]


async def test_hit_many_counts_in_order_as_single_hits_would(
    backends: CacheBackends, namespace: str
) -> None:
    a, b = rate_key(namespace, "a", "email"), rate_key(namespace, "b", "email")
    two, one = Limit(2, 60.0), Limit(1, 60.0)
    got = await backends.limiter.hit_many([(a, two), (b, one), (a, two), (b, one), (a, two)], 5.0)
    assert [v.allowed for v in got] == [True, True, True, False, False]
    assert got[2].remaining == 0 and got[4].retry_after == pytest.approx(60.0)
    assert await backends.limiter.hit_many([]) == []
    # the same keys as single hits see what hit_many counted
    assert not (await backends.limiter.hit(a, two, now=6.0)).allowed


async def test_rate_limiter_keys_are_independent(backends: CacheBackends, namespace: str) -> None:
    rule = Limit(1, 60.0)
    a, b = rate_key(namespace, "a", "sms"), rate_key(namespace, "b", "sms")
    assert (await backends.limiter.hit(a, rule, now=10.0)).allowed
    assert not (await backends.limiter.hit(a, rule, now=11.0)).allowed
    assert (await backends.limiter.hit(b, rule, now=11.0)).allowed


async def test_rate_limiter_is_atomic_under_concurrency(
    backends: CacheBackends, namespace: str
) -> None:
    rule = Limit(10, 3600.0)
    key = rate_key(namespace, "busy", "push")
    verdicts = await asyncio.gather(*[backends.limiter.hit(key, rule) for _ in range(100)])
    assert sum(v.allowed for v in verdicts) == 10
    refused = [v for v in verdicts if not v.allowed]
    assert all(0 < v.retry_after <= 3600.0 for v in refused)
