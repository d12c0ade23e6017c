"""Cache, pub/sub and presence on Redis, shared by every node that uses the same Redis.

One ``redis.asyncio`` client over a bounded, blocking connection pool serves the cache,
publishing and presence (its connections named ``cache_client_name(namespace)`` in
``CLIENT LIST``). Each subscriber set owns one more connection of its own (RESP2, named
``subscriber_client_name(namespace)``) and one reader task
(:mod:`notify_core.cache.redis_subscriber`).

Redis errors become :class:`~notify_core.errors.CacheUnavailable` here, naming the URL
without its password; ``incr`` on a value that is not an integer raises ``ValueError``.
Cache keys and pub/sub channels are used as given (callers build them with the
``notify_core.constants`` helpers, which include the namespace); presence keys are built
here from the namespace.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection, BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError, ResponseError

from notify_core.cache.base import (
    Cache,
    MessageHandler,
    Presence,
    PresenceInfo,
    PubSub,
    RateLimiter,
)
from notify_core.cache.redis_ratelimit import RedisRateLimiter
from notify_core.cache.redis_subscriber import RedisSubscriber
from notify_core.constants import (
    LAST_SEEN_TTL_SECONDS,
    LIVE_PRESENCE_CHUNK,
    cache_client_name,
    last_seen_key,
    presence_key,
    subscriber_client_name,
)
from notify_core.errors import CacheUnavailable, ConfigError
from notify_core.redact import redact_url

log = logging.getLogger(__name__)


Clock = Callable[[], float]


@contextlib.contextmanager
def _unavailable(where: str, what: str) -> Iterator[None]:
    try:
        yield
    except (RedisError, OSError) as exc:
        raise CacheUnavailable(f"Redis at {where}: {what} failed: {exc}") from exc


def _ms(seconds: float) -> int:
    if seconds <= 0:
        raise ValueError(f"ttl must be positive, got {seconds}")
    return max(1, math.ceil(seconds * 1000))


class RedisCache:
    """``Cache`` on Redis strings: GET, MGET, SET PX, DEL; ``incr`` is INCRBY with
    ``PEXPIRE NX`` in one MULTI, so ``ttl`` applies when the key has no expiry yet (in
    particular when this call creates it) and a counter never loses its expiry."""

    def __init__(self, client: aioredis.Redis, where: str) -> None:
        self._client = client
        self._where = where

    async def get(self, key: str) -> bytes | None:
        with _unavailable(self._where, "GET"):
            value = await self._client.get(key)
        return cast("bytes | None", value)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        with _unavailable(self._where, "MGET"):
            values = await self._client.mget(list(keys))
        return cast("list[bytes | None]", values)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        px = None if ttl is None else _ms(ttl)
        with _unavailable(self._where, "SET"):
            await self._client.set(key, value, px=px)

    async def delete(self, *keys: str) -> int:
        if not keys:
            return 0
        with _unavailable(self._where, "DEL"):
            return int(await self._client.delete(*dict.fromkeys(keys)))

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        px = None if ttl is None else _ms(ttl)
        with _unavailable(self._where, "INCRBY"):
            try:
                async with self._client.pipeline(transaction=True) as pipe:
                    pipe.incrby(key, amount)
                    if px is not None:
                        pipe.pexpire(key, px, nx=True)
                    results: list[Any] = await pipe.execute()
            except ResponseError as exc:
                raise ValueError(f"cache key {key!r} does not hold an integer") from exc
        return int(results[0])


_CONNECT = """
local key = KEYS[1]
redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
local limit = tonumber(ARGV[5])
if limit > 0 and not redis.call('ZSCORE', key, ARGV[4]) then
  if redis.call('ZCARD', key) >= limit then
    return 0
  end
end
redis.call('ZADD', key, ARGV[2], ARGV[4])
redis.call('PEXPIRE', key, ARGV[3], 'NX')
redis.call('PEXPIRE', key, ARGV[3], 'GT')
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[6])
return 1
"""
"""``RedisPresence.connect``: prune the user's expired entries, refuse when ``limit`` (> 0)
others are live, else add this one as ``refresh`` does — one atomic step."""


_GET = """
local now = ARGV[1]
local out = {}
for i = 1, #KEYS, 2 do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  local members = redis.call('ZRANGEBYSCORE', KEYS[i], '(' .. now, '+inf')
  local holders, known = {}, {}
  for _, member in ipairs(members) do
    local dot = string.find(member, '.', 1, true)
    local holder = dot and string.sub(member, 1, dot - 1) or member
    if not known[holder] then
      known[holder] = true
      holders[#holders + 1] = holder
    end
  end
  out[#out + 1] = {#members, redis.call('GET', KEYS[i + 1]) or '', holders}
end
return out
"""
"""``RedisPresence.get`` for a chunk of users (KEYS: presence and last-seen key of each):
prune expired entries, answer {live connections, last seen or '', holders} per user —
the same as ``holders.holder_of`` of each member, each holder once."""


class RedisPresence:
    """``Presence`` on one sorted set per user (``presence_key``): member = connection id,
    score = when the entry expires (epoch seconds on ``clock``). The set itself expires
    with its latest entry, and expired members are pruned by ``get``. Last-seen times
    (``last_seen_key``) are kept ``LAST_SEEN_TTL_SECONDS``. ``refresh`` (re)creates the
    entries it names, so presence lost with a Redis restart comes back on the next
    heartbeat. Every method is one round trip."""

    def __init__(
        self, client: aioredis.Redis, namespace: str, where: str, clock: Clock = time.time
    ) -> None:
        self._client = client
        self._namespace = namespace
        self._where = where
        self._clock = clock
        self._connect = client.register_script(_CONNECT)
        self._get = client.register_script(_GET)

    async def connect(
        self, user_id: str, conn_id: str, ttl: float, limit: int | None = None
    ) -> bool:
        now = self._clock()
        args: list[str | int] = [repr(now), repr(now + ttl), _ms(ttl), conn_id, limit or 0]
        args.append(_ms(LAST_SEEN_TTL_SECONDS))
        keys = [presence_key(self._namespace, user_id), last_seen_key(self._namespace, user_id)]
        with _unavailable(self._where, "presence connect"):
            return bool(await self._connect(keys=keys, args=args))

    async def disconnect(self, user_id: str, conn_id: str) -> None:
        now = self._clock()
        with _unavailable(self._where, "presence disconnect"):
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.zrem(presence_key(self._namespace, user_id), conn_id)
                pipe.set(
                    last_seen_key(self._namespace, user_id),
                    repr(now),
                    px=_ms(LAST_SEEN_TTL_SECONDS),
                )
                await pipe.execute()

    async def refresh(self, entries: Sequence[tuple[str, str]], ttl: float) -> None:
        px = _ms(ttl)
        if not entries:
            return
        by_user: dict[str, list[str]] = {}
        for user_id, conn_id in entries:
            by_user.setdefault(user_id, []).append(conn_id)
        now = self._clock()
        expiry = now + ttl
        with _unavailable(self._where, "presence refresh"):
            async with self._client.pipeline(transaction=False) as pipe:
                for user_id, conn_ids in by_user.items():
                    key = presence_key(self._namespace, user_id)
                    pipe.zadd(key, dict.fromkeys(conn_ids, expiry))
                    # NX gives a new set its expiry; GT only ever extends it, so one
                    # connection's shorter ttl cannot cut another's entry short.
                    pipe.pexpire(key, px, nx=True)
                    pipe.pexpire(key, px, gt=True)
                    pipe.set(
                        last_seen_key(self._namespace, user_id),
                        repr(now),
                        px=_ms(LAST_SEEN_TTL_SECONDS),
                    )
                await pipe.execute()

    async def get(self, user_ids: Sequence[str]) -> list[PresenceInfo]:
        if not user_ids:
            return []
        now = repr(self._clock())
        chunks = [
            user_ids[i : i + LIVE_PRESENCE_CHUNK]
            for i in range(0, len(user_ids), LIVE_PRESENCE_CHUNK)
        ]
        with _unavailable(self._where, "presence get"):
            async with self._client.pipeline(transaction=False) as pipe:
                for chunk in chunks:
                    keys = [
                        key
                        for user_id in chunk
                        for key in (
                            presence_key(self._namespace, user_id),
                            last_seen_key(self._namespace, user_id),
                        )
                    ]
                    await self._get(keys=keys, args=[now], client=pipe)
                results: list[Any] = await pipe.execute()
        answer = []
        rows = (row for chunk in results for row in chunk)
        for user_id, (count, seen, holders) in zip(user_ids, rows, strict=True):
            answer.append(
                PresenceInfo(
                    user_id,
                    count > 0,
                    int(count),
                    float(seen) if seen else None,
                    tuple(h.decode() for h in holders),
                )
            )
        return answer


class RedisPubSub:
    """``PubSub`` on Redis PUBLISH/SUBSCRIBE: ``publish`` answers how many subscriber sets
    (connections, one per node) received the message."""

    def __init__(
        self,
        client: aioredis.Redis,
        where: str,
        new_connection: Callable[[], AbstractConnection],
        *,
        confirm_timeout: float,
        ping_interval: float,
    ) -> None:
        self._client = client
        self._where = where
        self._new_connection = new_connection
        self._confirm_timeout = confirm_timeout
        self._ping_interval = ping_interval
        self._subscribers: dict[RedisSubscriber, None] = {}

    async def publish(self, channel: str, payload: bytes) -> int:
        with _unavailable(self._where, "PUBLISH"):
            return int(await self._client.publish(channel, payload))

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> list[int]:
        if not messages:
            return []
        with _unavailable(self._where, "PUBLISH"):
            async with self._client.pipeline(transaction=False) as pipe:
                for channel, payload in messages:
                    pipe.publish(channel, payload)
                return [int(n) for n in await pipe.execute()]

    async def subscriber(self, handler: MessageHandler) -> RedisSubscriber:
        subscriber = RedisSubscriber(
            self._new_connection,
            handler,
            self._where,
            confirm_timeout=self._confirm_timeout,
            ping_interval=self._ping_interval,
            on_close=lambda s: self._subscribers.pop(s, None),
        )
        await subscriber.start()
        self._subscribers[subscriber] = None
        return subscriber

    async def close(self) -> None:
        """Close every subscriber set still open."""
        for subscriber in list(self._subscribers):
            await subscriber.close()


class RedisBackends:
    """Cache, pub/sub and presence on one Redis, through one client and connection pool
    (at most ``max_connections``; a caller waits up to ``timeout`` for one), plus one
    connection per subscriber set. ``timeout`` also bounds connecting and each command.
    Building it does no I/O; ``ping`` checks that Redis answers."""

    def __init__(
        self,
        url: str,
        namespace: str,
        *,
        max_connections: int = 64,
        timeout: float = 5.0,
        subscribe_timeout: float = 10.0,
        ping_interval: float = 15.0,
    ) -> None:
        self.url = redact_url(url)
        self.namespace = namespace
        try:
            pool = BlockingConnectionPool.from_url(
                url,
                max_connections=max_connections,
                timeout=timeout,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
                client_name=cache_client_name(namespace),
            )
        except ValueError as exc:
            raise ConfigError(f"invalid Redis URL {self.url}: {exc}") from exc
        self._client = aioredis.Redis.from_pool(pool)

        # The subscriber connections: same server and credentials, but RESP2 (plain arrays
        # for pub/sub messages), raw bytes, and a name to find them by in CLIENT LIST.
        kwargs = {
            k: v
            for k, v in pool.connection_kwargs.items()
            if not k.startswith(("maint_notifications", "orig_"))
        }
        kwargs.update(
            protocol=2, decode_responses=False, client_name=subscriber_client_name(namespace)
        )
        connection_class = pool.connection_class

        def new_connection() -> AbstractConnection:
            return connection_class(**kwargs)

        self.cache: Cache = RedisCache(self._client, self.url)
        self._pubsub = RedisPubSub(
            self._client,
            self.url,
            new_connection,
            confirm_timeout=subscribe_timeout,
            ping_interval=ping_interval,
        )
        self.pubsub: PubSub = self._pubsub
        self.presence: Presence = RedisPresence(self._client, namespace, self.url)
        self.limiter: RateLimiter = RedisRateLimiter(self._client, self.url)

    async def ping(self) -> None:
        try:
            await self._client.ping()
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(f"Redis at {self.url} is not answering: {exc}") from exc

    async def close(self) -> None:
        await self._pubsub.close()
        await self._client.aclose()
