"""Protocols for the cache, pub/sub and presence backends, and what each guarantees.

Checked by ``tests/contract/test_cache_contract.py`` against every implementation.

The in-memory implementations serve one process only: pub/sub does not cross processes and
presence is forgotten at exit. The Redis ones are shared by every node on that Redis.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from notify_core.ratelimit import Limit, Verdict


class Cache(Protocol):
    """A key/value cache with per-key expiry. Values are bytes; a miss is ``None``."""

    async def get(self, key: str) -> bytes | None: ...

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """One round trip for many keys; answers in the order asked."""
        ...

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store ``value``; ``ttl`` seconds later the key is gone (``None``: never)."""
        ...

    async def delete(self, *keys: str) -> int:
        """Remove keys; answers how many existed."""
        ...

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        """Add atomically; a missing key counts from 0. ``ttl`` is set when it is created."""
        ...


MessageHandler = Callable[[str, bytes], None]
"""Called as ``handler(channel, payload)`` for each message received on a subscription."""


class Subscriber(Protocol):
    """One node's subscription set. Messages arrive through its handler, in order per channel."""

    async def subscribe(self, *channels: str) -> None:
        """Return once the subscription is active: anything published afterwards arrives."""
        ...

    async def unsubscribe(self, *channels: str) -> None: ...

    async def close(self) -> None: ...


class PubSub(Protocol):
    """Fire-and-forget fan-out: messages published while nobody listens are gone."""

    async def publish(self, channel: str, payload: bytes) -> int:
        """Answer how many subscribers (nodes) received it; 0 means nobody is listening."""
        ...

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> list[int]:
        """Publish ``(channel, payload)`` pairs in one round trip, in order; answer the
        receiver counts."""
        ...

    async def subscriber(self, handler: MessageHandler) -> Subscriber:
        """A new subscription set whose messages go to ``handler``."""
        ...


@dataclass(frozen=True, slots=True)
class PresenceInfo:
    user_id: str
    online: bool
    connections: int
    last_seen: float | None
    """Epoch seconds of the last connect, refresh or disconnect; ``None`` if never seen."""
    holders: tuple[str, ...] = ()
    """The holders of the user's live connections (``notify_core.holders.holder_of`` of
    each connection id), each once, in no particular order; empty when offline."""


class Presence(Protocol):
    """Who is connected, across nodes. Entries expire unless refreshed, so the users of a
    node that died go offline within the TTL."""

    async def connect(
        self, user_id: str, conn_id: str, ttl: float, limit: int | None = None
    ) -> bool:
        """Record a live connection for ``ttl`` seconds. With ``limit``, atomically across
        nodes: a user who already has ``limit`` other live connections gets nothing recorded
        and the answer ``False``. A connection already recorded is always renewed."""
        ...

    async def disconnect(self, user_id: str, conn_id: str) -> None: ...

    async def refresh(self, entries: Sequence[tuple[str, str]], ttl: float) -> None:
        """Extend many ``(user_id, conn_id)`` entries in one round trip."""
        ...

    async def get(self, user_ids: Sequence[str]) -> list[PresenceInfo]:
        """One round trip for many users (thousands: a batch's); answers in the order
        asked."""
        ...


class RateLimiter(Protocol):
    """Sliding-window limits, atomic across every node sharing the backend: of many
    concurrent ``hit`` calls on one key, at most ``limit`` per window are allowed."""

    async def hit(self, key: str, rule: Limit, now: float | None = None) -> Verdict:
        """Count one send at ``now`` (default: the backend's clock) if it fits ``rule``;
        answer the verdict. A refused send is not counted."""
        ...

    async def hit_many(
        self, items: Sequence[tuple[str, Limit]], now: float | None = None
    ) -> list[Verdict]:
        """``hit`` for each (key, rule), in order, in one round trip; each is atomic on its
        own (as if called one after the other)."""
        ...


class CacheBackends(Protocol):
    """The backends built from one configuration, sharing one connection pool."""

    cache: Cache
    pubsub: PubSub
    presence: Presence
    limiter: RateLimiter

    async def ping(self) -> None:
        """Raise ``CacheUnavailable`` unless the backend answers."""
        ...

    async def close(self) -> None: ...
