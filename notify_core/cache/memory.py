"""In-process cache, pub/sub and presence: one node only, forgotten at exit.

Every operation completes without awaiting anything, so each one is atomic with respect to
the other tasks of the event loop. Expired entries are dropped when they are read, and in an
amortised sweep once enough writes have happened, so memory does not grow without bound.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from notify_core.cache.base import (
    Cache,
    MessageHandler,
    Presence,
    PresenceInfo,
    PubSub,
    RateLimiter,
)
from notify_core.constants import LAST_SEEN_TTL_SECONDS
from notify_core.errors import CacheUnavailable
from notify_core.holders import holder_of
from notify_core.ratelimit import Limit, Verdict, check

log = logging.getLogger(__name__)

Clock = Callable[[], float]

_MIN_SWEEP_EVERY = 1024
"""Writes between two sweeps of expired entries, at least (more for bigger maps)."""


def _check_ttl(ttl: float | None) -> None:
    if ttl is not None and ttl <= 0:
        raise ValueError(f"ttl must be positive, got {ttl}")


class MemoryCache:
    """A dict with per-key expiry, measured on ``clock`` (default ``time.monotonic``).

    Guarantees the ``Cache`` contract within one process. ``incr`` stores its counter as
    ASCII digits, as Redis does, and raises ``ValueError`` when the value is not an integer.
    """

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._data: dict[str, tuple[bytes, float | None]] = {}
        self._writes = 0

    def _live(self, key: str, now: float) -> tuple[bytes, float | None] | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[1] is not None and entry[1] <= now:
            del self._data[key]
            return None
        return entry

    def _wrote(self, now: float) -> None:
        self._writes += 1
        if self._writes < max(_MIN_SWEEP_EVERY, len(self._data)):
            return
        self._writes = 0
        expired = [k for k, (_, exp) in self._data.items() if exp is not None and exp <= now]
        for key in expired:
            del self._data[key]

    async def get(self, key: str) -> bytes | None:
        entry = self._live(key, self._clock())
        return None if entry is None else entry[0]

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        now = self._clock()
        return [None if (e := self._live(k, now)) is None else e[0] for k in keys]

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        _check_ttl(ttl)
        now = self._clock()
        self._data[key] = (bytes(value), None if ttl is None else now + ttl)
        self._wrote(now)

    async def delete(self, *keys: str) -> int:
        now = self._clock()
        removed = 0
        for key in dict.fromkeys(keys):
            if self._live(key, now) is not None:
                del self._data[key]
                removed += 1
        return removed

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        """Add ``amount``; ``ttl`` is applied only when the key has no expiry yet (as Redis
        ``EXPIRE NX``), in particular when this call creates it."""
        _check_ttl(ttl)
        now = self._clock()
        entry = self._live(key, now)
        current, expiry = (0, None) if entry is None else (_as_int(key, entry[0]), entry[1])
        value = current + amount
        if expiry is None and ttl is not None:
            expiry = now + ttl
        self._data[key] = (str(value).encode(), expiry)
        self._wrote(now)
        return value


def _as_int(key: str, raw: bytes) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"cache key {key!r} does not hold an integer") from None


class MemorySubscriber:
    """A subscription set of a :class:`MemoryPubSub`. Subscribing takes effect at once;
    messages are handed to the handler synchronously, inside ``publish``."""

    def __init__(self, hub: MemoryPubSub, handler: MessageHandler) -> None:
        self._hub = hub
        self._handler = handler
        self._channels: set[str] = set()
        self._closed = False

    @property
    def channels(self) -> frozenset[str]:
        """The channels currently subscribed."""
        return frozenset(self._channels)

    async def subscribe(self, *channels: str) -> None:
        if self._closed:
            raise CacheUnavailable("subscriber is closed")
        for channel in channels:
            self._channels.add(channel)
            self._hub._add(channel, self)

    async def unsubscribe(self, *channels: str) -> None:
        for channel in channels:
            self._channels.discard(channel)
            self._hub._remove(channel, self)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.unsubscribe(*self._channels)
        self._hub._forget(self)

    def _deliver(self, channel: str, payload: bytes) -> None:
        try:
            self._handler(channel, payload)
        except Exception:
            log.exception("message handler failed on channel %s", channel)


class MemoryPubSub:
    """Fan-out within the process. ``publish`` calls the handler of every subscriber set
    subscribed to the channel before it returns (so order per channel is publish order), and
    answers how many sets there were. A handler that raises is logged; the others still run,
    and the publisher never sees the exception."""

    def __init__(self) -> None:
        self._listeners: dict[str, dict[MemorySubscriber, None]] = {}
        self._subscribers: dict[MemorySubscriber, None] = {}

    def _add(self, channel: str, subscriber: MemorySubscriber) -> None:
        self._listeners.setdefault(channel, {})[subscriber] = None

    def _forget(self, subscriber: MemorySubscriber) -> None:
        self._subscribers.pop(subscriber, None)

    def _remove(self, channel: str, subscriber: MemorySubscriber) -> None:
        listeners = self._listeners.get(channel)
        if listeners is not None:
            listeners.pop(subscriber, None)
            if not listeners:
                del self._listeners[channel]

    async def publish(self, channel: str, payload: bytes) -> int:
        # A snapshot: a handler that (un)subscribes does not change who gets this message.
        receivers = list(self._listeners.get(channel, ()))
        for subscriber in receivers:
            subscriber._deliver(channel, payload)
        return len(receivers)

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> list[int]:
        return [await self.publish(channel, payload) for channel, payload in messages]

    async def subscriber(self, handler: MessageHandler) -> MemorySubscriber:
        subscriber = MemorySubscriber(self, handler)
        self._subscribers[subscriber] = None
        return subscriber

    async def close(self) -> None:
        """Close every subscriber set still open."""
        for subscriber in list(self._subscribers):
            await subscriber.close()


class MemoryPresence:
    """Connections per user with expiry, and last-seen times, on ``clock`` (default
    ``time.time``: epoch seconds, as ``PresenceInfo.last_seen`` is). ``refresh`` (re)creates
    the entries it names. Last-seen times are forgotten ``LAST_SEEN_TTL_SECONDS`` after
    they were set, as in Redis."""

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._connections: dict[str, dict[str, float]] = {}
        self._last_seen: dict[str, float] = {}
        self._writes = 0

    def _wrote(self, now: float) -> None:
        self._writes += 1
        if self._writes < max(_MIN_SWEEP_EVERY, len(self._connections) + len(self._last_seen)):
            return
        self._writes = 0
        for user_id in list(self._connections):
            self._live(user_id, now)
        cutoff = now - LAST_SEEN_TTL_SECONDS
        for user_id in [u for u, seen in self._last_seen.items() if seen <= cutoff]:
            del self._last_seen[user_id]

    def _live(self, user_id: str, now: float) -> int:
        """Drop the user's expired connections; answer how many are left."""
        conns = self._connections.get(user_id)
        if conns is None:
            return 0
        for conn_id in [c for c, expiry in conns.items() if expiry <= now]:
            del conns[conn_id]
        if not conns:
            del self._connections[user_id]
        return len(conns)

    async def connect(
        self, user_id: str, conn_id: str, ttl: float, limit: int | None = None
    ) -> bool:
        known = conn_id in self._connections.get(user_id, {})
        if limit is not None and not known and self._live(user_id, self._clock()) >= limit:
            return False
        await self.refresh([(user_id, conn_id)], ttl)
        return True

    async def disconnect(self, user_id: str, conn_id: str) -> None:
        now = self._clock()
        conns = self._connections.get(user_id)
        if conns is not None:
            conns.pop(conn_id, None)
            if not conns:
                del self._connections[user_id]
        self._last_seen[user_id] = now
        self._wrote(now)

    async def refresh(self, entries: Sequence[tuple[str, str]], ttl: float) -> None:
        if ttl <= 0:
            raise ValueError(f"ttl must be positive, got {ttl}")
        now = self._clock()
        for user_id, conn_id in entries:
            self._connections.setdefault(user_id, {})[conn_id] = now + ttl
            self._last_seen[user_id] = now
            self._wrote(now)

    async def get(self, user_ids: Sequence[str]) -> list[PresenceInfo]:
        now = self._clock()
        answer = []
        for user_id in user_ids:
            count = self._live(user_id, now)
            seen = self._last_seen.get(user_id)
            if seen is not None and seen <= now - LAST_SEEN_TTL_SECONDS:
                del self._last_seen[user_id]
                seen = None
            holders = tuple(dict.fromkeys(map(holder_of, self._connections.get(user_id, ()))))
            answer.append(PresenceInfo(user_id, count > 0, count, seen, holders))
        return answer


class MemoryRateLimiter:
    """``RateLimiter`` of this process: the pure arithmetic over a list per key (the event
    loop makes each ``hit`` atomic)."""

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._sent: dict[str, list[float]] = {}

    async def hit(self, key: str, rule: Limit, now: float | None = None) -> Verdict:
        at = self._clock() if now is None else now
        kept = [t for t in self._sent.get(key, ()) if t > at - rule.window]
        verdict = check(kept, at, rule)
        if verdict.allowed:
            kept.append(at)
        if kept:
            self._sent[key] = kept
        else:
            self._sent.pop(key, None)
        return verdict

    async def hit_many(
        self, items: Sequence[tuple[str, Limit]], now: float | None = None
    ) -> list[Verdict]:
        return [await self.hit(key, rule, now) for key, rule in items]


class MemoryBackends:
    """Cache, pub/sub and presence of this process. ``ping`` always succeeds (until
    ``close``, after which it raises ``CacheUnavailable``)."""

    def __init__(
        self,
        cache: MemoryCache | None = None,
        pubsub: MemoryPubSub | None = None,
        presence: MemoryPresence | None = None,
    ) -> None:
        self._pubsub = pubsub if pubsub is not None else MemoryPubSub()
        self.cache: Cache = cache if cache is not None else MemoryCache()
        self.pubsub: PubSub = self._pubsub
        self.presence: Presence = presence if presence is not None else MemoryPresence()
        self.limiter: RateLimiter = MemoryRateLimiter()
        self._closed = False

    async def ping(self) -> None:
        if self._closed:
            raise CacheUnavailable("the in-memory cache backends are closed")

    async def close(self) -> None:
        self._closed = True
        await self._pubsub.close()
