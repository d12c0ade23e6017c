"""Cache, pub/sub and presence on Redis, shared by every node that uses the same Redis.

One ``redis.asyncio`` client over a bounded, blocking connection pool serves the cache,
publishing and presence (its connections named ``cache_client_name(namespace)`` in
``CLIENT LIST``). Each subscriber set owns one more connection of its own (RESP2, named
``subscriber_client_name(namespace)``) and one reader task.

Redis errors become :class:`~notify_core.errors.CacheUnavailable` here, naming the URL
without its password; ``incr`` on a value that is not an integer raises ``ValueError``.
Cache keys and pub/sub channels are used as given (callers build them with the
``notify_core.constants`` helpers, which include the namespace); presence keys are built
here from the namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection, BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
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
from notify_core.constants import (
    LAST_SEEN_TTL_SECONDS,
    cache_client_name,
    last_seen_key,
    presence_key,
    subscriber_client_name,
)
from notify_core.errors import CacheUnavailable, ConfigError
from notify_core.redact import redact_url

log = logging.getLogger(__name__)

CHUNK = 1000
"""Channels per SUBSCRIBE / UNSUBSCRIBE command."""
_BACKOFF_MIN = 0.1
_BACKOFF_MAX = 5.0

Clock = Callable[[], float]
_Waiters = dict[str, deque[list["asyncio.Future[None]"]]]


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


def _text(raw: object) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


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
        now = self._clock()
        with _unavailable(self._where, "presence get"):
            async with self._client.pipeline(transaction=False) as pipe:
                for user_id in user_ids:
                    key = presence_key(self._namespace, user_id)
                    pipe.zremrangebyscore(key, "-inf", now)
                    pipe.zcount(key, f"({now!r}", "+inf")
                    pipe.get(last_seen_key(self._namespace, user_id))
                results: list[Any] = await pipe.execute()
        answer = []
        for i, user_id in enumerate(user_ids):
            count = int(results[3 * i + 1])
            seen = results[3 * i + 2]
            answer.append(
                PresenceInfo(user_id, count > 0, count, None if seen is None else float(seen))
            )
        return answer


class RedisSubscriber:
    """A subscription set on its own Redis connection, read by one task.

    * ``subscribe`` returns once Redis has confirmed every channel, so anything published
      afterwards is delivered. If Redis does not confirm within ``confirm_timeout`` it
      raises ``CacheUnavailable``; the channels stay requested and become active when Redis
      answers again (``unsubscribe`` them to give up).
    * After ``unsubscribe`` returns, nothing more is delivered for those channels.
    * Messages reach the handler in the order Redis sent them, on the reader task. A handler
      that raises is logged and the reader carries on.
    * A lost connection, or one that leaves a PING unanswered (it sends one after
      ``ping_interval`` seconds of silence), is replaced with backoff, and every channel is
      subscribed again (logged as a warning); messages published meanwhile are lost.
    """

    def __init__(
        self,
        new_connection: Callable[[], AbstractConnection],
        handler: MessageHandler,
        where: str,
        *,
        confirm_timeout: float,
        ping_interval: float,
        on_close: Callable[[RedisSubscriber], None] = lambda _: None,
    ) -> None:
        self._new_connection = new_connection
        self._handler = handler
        self._where = where
        self._confirm_timeout = confirm_timeout
        self._ping_interval = ping_interval
        self._on_close = on_close
        self._channels: set[str] = set()
        # Per channel, one group of waiters per command sent and not yet confirmed, in order.
        self._subscribing: _Waiters = {}
        self._unsubscribing: _Waiters = {}
        self._owned: AbstractConnection | None = None  # the connection to close
        self._conn: AbstractConnection | None = None  # set once it is subscribed
        self._lock = asyncio.Lock()  # serialises commands with re-subscription
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def channels(self) -> frozenset[str]:
        """The channels currently requested."""
        return frozenset(self._channels)

    async def start(self) -> None:
        """Connect and start the reader; ``CacheUnavailable`` if Redis cannot be reached."""
        conn = await self._open()
        await self._resubscribe(conn)
        self._task = asyncio.create_task(self._run(conn), name=f"redis-subscriber {self._where}")

    async def subscribe(self, *channels: str) -> None:
        if self._closed:
            raise CacheUnavailable("subscriber is closed")
        loop = asyncio.get_running_loop()
        waits: list[asyncio.Future[None]] = []
        async with self._lock:
            new = []
            for channel in dict.fromkeys(channels):
                if channel in self._channels:
                    pending = self._subscribing.get(channel)
                    if pending:
                        waits.append(pending[-1][0])
                    continue
                future: asyncio.Future[None] = loop.create_future()
                self._channels.add(channel)
                self._subscribing.setdefault(channel, deque()).append([future])
                waits.append(future)
                new.append(channel)
            if new and self._conn is not None:
                with contextlib.suppress(RedisError, OSError):
                    # On failure the reader reconnects and subscribes them again.
                    await self._send(self._conn, "SUBSCRIBE", new)
        if not waits:
            return
        done, pending_ = await asyncio.wait(waits, timeout=self._confirm_timeout)
        if any(f.cancelled() for f in done):
            raise CacheUnavailable("subscriber is closed")
        if pending_:
            raise CacheUnavailable(
                f"Redis at {self._where} did not confirm the subscription to "
                f"{len(pending_)} channel(s) within {self._confirm_timeout}s"
            )

    async def unsubscribe(self, *channels: str) -> None:
        await self._unsubscribe(channels, self._confirm_timeout)

    async def _unsubscribe(self, channels: Sequence[str], within: float) -> None:
        loop = asyncio.get_running_loop()
        waits: list[asyncio.Future[None]] = []
        async with self._lock:
            gone = [c for c in dict.fromkeys(channels) if c in self._channels]
            self._channels.difference_update(gone)
            conn = self._conn
            if gone and conn is not None:
                for channel in gone:
                    future: asyncio.Future[None] = loop.create_future()
                    self._unsubscribing.setdefault(channel, deque()).append([future])
                    waits.append(future)
                with contextlib.suppress(RedisError, OSError):
                    # On failure the connection is lost, and its subscriptions with it.
                    await self._send(conn, "UNSUBSCRIBE", gone)
        if waits:
            # Delivery has stopped already (the reader drops messages of channels not
            # requested); waiting makes publish stop counting this set too.
            await asyncio.wait(waits, timeout=within)

    async def close(self) -> None:
        """Unsubscribe (so that publish stops counting this set at once), then disconnect."""
        if self._closed:
            return
        self._closed = True
        self._on_close(self)
        if self._channels:
            await self._unsubscribe(list(self._channels), min(1.0, self._confirm_timeout))
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])
        self._conn = None
        self._channels.clear()
        for table in (self._subscribing, self._unsubscribing):
            for groups in table.values():
                for group in groups:
                    for future in group:
                        future.cancel()
            table.clear()
        if self._owned is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._owned.disconnect(nowait=True)
            self._owned = None

    # --- the connection -----------------------------------------------------------------

    async def _open(self) -> AbstractConnection:
        conn = self._new_connection()
        self._owned = conn
        try:
            await conn.connect()  # type: ignore[no-untyped-call]
        except (RedisError, OSError) as exc:
            with contextlib.suppress(RedisError, OSError):
                await conn.disconnect(nowait=True)
            raise CacheUnavailable(f"Redis at {self._where}: connect failed: {exc}") from exc
        return conn

    async def _send(self, conn: AbstractConnection, command: str, channels: list[str]) -> None:
        for start in range(0, len(channels), CHUNK):
            if not conn.is_connected:  # never let redis-py reconnect it behind the reader
                raise RedisConnectionError("connection closed")
            await conn.send_command(command, *channels[start : start + CHUNK], check_health=False)

    async def _resubscribe(self, conn: AbstractConnection) -> int:
        """Make ``conn`` the live connection and subscribe it to every channel requested."""
        async with self._lock:
            self._conn = conn
            for channel, groups in list(self._subscribing.items()):
                merged = [future for group in groups for future in group]
                if channel in self._channels:  # one SUBSCRIBE now answers all its waiters
                    self._subscribing[channel] = deque([merged])
                else:
                    del self._subscribing[channel]
                    for future in merged:
                        if not future.done():
                            future.set_result(None)
            channels = list(self._channels)
            await self._send(conn, "SUBSCRIBE", channels)
        return len(channels)

    async def _drop(self, conn: AbstractConnection) -> None:
        if self._conn is conn:
            self._conn = None
        # Redis forgets a closed connection's subscriptions: every UNSUBSCRIBE is done.
        for groups in self._unsubscribing.values():
            for group in groups:
                for future in group:
                    if not future.done():
                        future.set_result(None)
        self._unsubscribing.clear()
        with contextlib.suppress(RedisError, OSError):
            await conn.disconnect(nowait=True)

    async def _run(self, conn: AbstractConnection) -> None:
        while True:
            try:
                await self._read(conn)
            except (RedisError, OSError) as exc:
                log.warning("pub/sub connection to Redis at %s lost: %s", self._where, exc)
            except Exception:
                log.exception("pub/sub reader for Redis at %s failed", self._where)
            await self._drop(conn)
            conn = await self._reconnect()

    async def _reconnect(self) -> AbstractConnection:
        delay = _BACKOFF_MIN
        while True:
            await asyncio.sleep(random.uniform(delay / 2, delay))
            delay = min(delay * 2, _BACKOFF_MAX)
            try:
                conn = await self._open()
            except CacheUnavailable as exc:
                log.warning("%s; retrying", exc)
                continue
            try:
                count = await self._resubscribe(conn)
            except (RedisError, OSError) as exc:
                log.warning("re-subscribing on Redis at %s failed: %s", self._where, exc)
                await self._drop(conn)
                continue
            log.warning(
                "pub/sub connection to Redis at %s re-established; %d channel(s) re-subscribed",
                self._where,
                count,
            )
            return conn

    async def _read(self, conn: AbstractConnection) -> None:
        awaiting_pong = False
        while True:
            try:
                response = await conn.read_response(
                    timeout=self._ping_interval, disconnect_on_error=False
                )
            except ResponseError as exc:  # e.g. a channel refused by an ACL
                log.error("Redis at %s refused a pub/sub command: %s", self._where, exc)
                continue
            if response is not None:
                awaiting_pong = False
                self._dispatch(response)
                continue
            if awaiting_pong or not conn.is_connected:
                raise RedisConnectionError(f"no answer to PING within {self._ping_interval}s")
            await conn.send_command("PING", check_health=False)
            awaiting_pong = True

    def _dispatch(self, response: object) -> None:
        if not isinstance(response, list) or len(response) < 2:
            return
        kind, channel = response[0], _text(response[1])
        if kind == b"message" and len(response) == 3:
            if channel in self._channels:
                try:
                    self._handler(channel, bytes(response[2]))
                except Exception:
                    log.exception("message handler failed on channel %s", channel)
        elif kind == b"subscribe":
            _confirm(self._subscribing, channel)
        elif kind == b"unsubscribe":
            _confirm(self._unsubscribing, channel)


def _confirm(table: _Waiters, channel: str) -> None:
    groups = table.get(channel)
    if not groups:
        return
    for future in groups.popleft():
        if not future.done():
            future.set_result(None)
    if not groups:
        del table[channel]


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
