"""The hub: this node's live connections, fed by pub/sub, with presence kept fresh.

A connection is registered under its user; the hub subscribes to the user's channel when
the first of their connections arrives (``attach`` returns once the subscription is active,
so nothing published afterwards is missed) and unsubscribes when the last one leaves.
Presence entries of every local connection are refreshed in one round trip per period;
if this node dies they expire and its users go offline.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from notify_core.cache.base import CacheBackends, Subscriber
from notify_core.constants import PRESENCE_TTL_SECONDS, user_channel

log = logging.getLogger(__name__)


class LiveConnection(Protocol):
    user_id: str
    conn_id: str

    def offer(self, payload: bytes) -> None:
        """Queue a frame without blocking (a connection that cannot keep up drops itself)."""
        ...


class Hub:
    def __init__(self, backends: CacheBackends, namespace: str) -> None:
        self._backends = backends
        self._ns = namespace
        self._prefix = user_channel(namespace, "")
        self._local: dict[str, dict[str, LiveConnection]] = {}
        self._subscribed: dict[str, asyncio.Future[None]] = {}
        self._subscriber: Subscriber | None = None
        self._refresher: asyncio.Task[None] | None = None

    @property
    def connections(self) -> int:
        return sum(len(c) for c in self._local.values())

    async def start(self) -> None:
        self._subscriber = await self._backends.pubsub.subscriber(self._on_message)
        self._refresher = asyncio.create_task(self._refresh_presence(), name="presence-refresh")

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            await asyncio.gather(self._refresher, return_exceptions=True)
        if self._subscriber is not None:
            await self._subscriber.close()

    async def attach(self, conn: LiveConnection) -> None:
        """Register ``conn``; return once events for its user reach this node."""
        assert self._subscriber is not None, "Hub.start() first"
        conns = self._local.setdefault(conn.user_id, {})
        conns[conn.conn_id] = conn
        sub = self._subscribed.get(conn.user_id)
        if sub is None:
            sub = asyncio.ensure_future(self._subscriber.subscribe(self._prefix + conn.user_id))
            self._subscribed[conn.user_id] = sub
        try:
            await asyncio.shield(sub)
        except Exception:
            if self._subscribed.get(conn.user_id) is sub:
                del self._subscribed[conn.user_id]
            await self.detach(conn)
            raise
        await self._backends.presence.connect(conn.user_id, conn.conn_id, PRESENCE_TTL_SECONDS)

    async def detach(self, conn: LiveConnection) -> None:
        conns = self._local.get(conn.user_id)
        if conns is not None and conns.pop(conn.conn_id, None) is not None and not conns:
            del self._local[conn.user_id]
            sub = self._subscribed.pop(conn.user_id, None)
            if sub is not None and self._subscriber is not None:
                try:
                    await self._subscriber.unsubscribe(self._prefix + conn.user_id)
                except Exception as exc:
                    log.warning("unsubscribe %s failed: %s", conn.user_id, exc)
        try:
            await self._backends.presence.disconnect(conn.user_id, conn.conn_id)
        except Exception as exc:
            log.warning("presence disconnect %s failed: %s", conn.user_id, exc)

    def deliver_local(self, user_id: str, payload: bytes) -> int:
        """Hand a frame to this node's connections of ``user_id``; answer how many."""
        conns = self._local.get(user_id)
        if not conns:
            return 0
        for conn in list(conns.values()):
            conn.offer(payload)
        return len(conns)

    def _on_message(self, channel: str, payload: bytes) -> None:
        if channel.startswith(self._prefix):
            self.deliver_local(channel[len(self._prefix) :], payload)

    async def _refresh_presence(self) -> None:
        while True:
            await asyncio.sleep(PRESENCE_TTL_SECONDS / 3)
            entries = [(uid, cid) for uid, conns in self._local.items() for cid in conns]
            try:
                for start in range(0, len(entries), 5_000):
                    await self._backends.presence.refresh(
                        entries[start : start + 5_000], PRESENCE_TTL_SECONDS
                    )
            except Exception as exc:
                log.warning("presence refresh failed: %s", exc)
