"""The hub: this process's live connections, fed by pub/sub, with presence kept fresh.

A connection is registered under its user; the hub subscribes to the user's channel when
the first of their connections arrives (``attach`` returns once the subscription is active,
so nothing published afterwards is missed) and unsubscribes when the last one leaves.
The hub is also a *holder* (``notify_core.holders``): it names the connections it makes
``<holder>.<uuid>`` (:meth:`Hub.new_connection_id`), so presence tells which holders hold
a user, and from :meth:`Hub.start` it listens on its holder channel, where a batch's live
events arrive as one envelope of ``(user, frame)`` pairs for the users held here.
Presence entries of every local connection are refreshed once per period (a third of the
presence TTL), spread over the period in slices of users a second apart, so that 12,500
connections cost a steady trickle of Redis commands rather than one burst that stalls live
delivery; if this process dies the entries expire and its users go offline, and they are
recorded again when the users reconnect, wherever that lands.

Limits (:class:`HubLimits`): at most ``max_connections`` here — the next is refused with
``CLOSE_TRY_AGAIN_LATER`` — and at most ``max_per_user`` live connections of one user on
every node together, counted atomically by the presence backend — the next is refused
with ``CLOSE_TOO_MANY_FOR_USER``. :meth:`Hub.drain` refuses everything new, asks each
connection to go away and waits for them to leave.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from notify_core.cache.base import CacheBackends, Subscriber
from notify_core.constants import (
    CLOSE_GOING_AWAY,
    CLOSE_TOO_MANY_FOR_USER,
    CLOSE_TRY_AGAIN_LATER,
    PRESENCE_REFRESH_STEP_SECONDS,
    PRESENCE_TTL_SECONDS,
    holder_channel,
    user_channel,
)
from notify_core.errors import TooManyConnections
from notify_core.holders import connection_id, new_holder_id, unpack

log = logging.getLogger(__name__)

_REFRESH_BATCH = 5_000


class LiveConnection(Protocol):
    user_id: str
    conn_id: str

    def offer(self, payload: bytes) -> None:
        """Queue a frame without blocking (a connection that cannot keep up drops itself)."""
        ...


@runtime_checkable
class Departing(Protocol):
    """A connection that can be asked to leave (a WebSocket: close 1001, going away)."""

    async def go_away(self) -> None: ...


@dataclass(frozen=True, slots=True)
class HubLimits:
    max_connections: int | None = None
    """Live connections in this process; ``None``: no limit."""
    max_per_user: int | None = None
    """Live connections of one user across every node; ``None``: no limit."""
    presence_ttl: float = PRESENCE_TTL_SECONDS
    presence_refresh_step: float = PRESENCE_REFRESH_STEP_SECONDS
    """Seconds between the slices of one presence refresh period."""


class Hub:
    def __init__(
        self,
        backends: CacheBackends,
        namespace: str,
        limits: HubLimits | None = None,
        *,
        holder: str | None = None,
    ) -> None:
        self._backends = backends
        self._ns = namespace
        self._limits = limits or HubLimits()
        self._prefix = user_channel(namespace, "")
        self.holder = holder or new_holder_id()
        self._holder_channel = holder_channel(namespace, self.holder)
        self._local: dict[str, dict[str, LiveConnection]] = {}
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False
        # user -> the subscribe call in flight, or None once it is active
        self._subscribed: dict[str, asyncio.Future[None] | None] = {}
        self._subscriber: Subscriber | None = None
        self._refresher: asyncio.Task[None] | None = None

    @property
    def connections(self) -> int:
        return self._count

    @property
    def limits(self) -> HubLimits:
        return self._limits

    def new_connection_id(self) -> str:
        """An id for a connection about to be attached here: ``<holder>.<uuid>``."""
        return connection_id(self.holder)

    async def start(self) -> None:
        self._subscriber = await self._backends.pubsub.subscriber(self._on_message)
        await self._subscriber.subscribe(self._holder_channel)
        self._refresher = asyncio.create_task(self._refresh_presence(), name="presence-refresh")

    async def close(self) -> None:
        """Stop; connections still registered lose their presence entries (a clean exit)."""
        self._closing = True
        if self._refresher is not None:
            self._refresher.cancel()
            await asyncio.gather(self._refresher, return_exceptions=True)
        left = [(u, c) for u, conns in self._local.items() for c in conns]
        if left:
            await asyncio.gather(
                *(self._backends.presence.disconnect(u, c) for u, c in left),
                return_exceptions=True,
            )
        if self._subscriber is not None:
            await self._subscriber.close()

    async def attach(self, conn: LiveConnection) -> None:
        """Register ``conn``; return once events for its user reach this process.

        Raises :class:`TooManyConnections` (nothing registered) when a limit is reached or
        the hub is draining."""
        assert self._subscriber is not None, "Hub.start() first"
        self._register(conn)
        try:
            admitted = await self._backends.presence.connect(
                conn.user_id,
                conn.conn_id,
                self._limits.presence_ttl,
                limit=self._limits.max_per_user,
            )
        except BaseException:
            await self._forget(conn)
            raise
        if not admitted:
            await self._forget(conn)
            raise TooManyConnections(
                f"this user already has {self._limits.max_per_user} live connections",
                CLOSE_TOO_MANY_FOR_USER,
            )
        try:
            await self._subscribe(conn.user_id)
        except BaseException:
            await self.detach(conn)
            raise

    async def detach(self, conn: LiveConnection) -> None:
        await self._forget(conn)
        try:
            await self._backends.presence.disconnect(conn.user_id, conn.conn_id)
        except Exception as exc:
            log.warning("presence disconnect %s failed: %s", conn.user_id, exc)

    async def drain(self, timeout: float) -> int:
        """Refuse new connections, ask every live one to go away and wait up to ``timeout``
        seconds for them to leave; answer how many are still here."""
        self._closing = True
        leaving = [
            c for conns in self._local.values() for c in conns.values() if isinstance(c, Departing)
        ]
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(*(c.go_away() for c in leaving), return_exceptions=True)
                await self._idle.wait()
        except TimeoutError:
            log.warning("%d live connections still open after %.1f s", self._count, timeout)
        return self._count

    def deliver_local(self, user_id: str, payload: bytes) -> int:
        """Hand a frame to this process's connections of ``user_id``; answer how many."""
        conns = self._local.get(user_id)
        if not conns:
            return 0
        for conn in list(conns.values()):
            conn.offer(payload)
        return len(conns)

    def _register(self, conn: LiveConnection) -> None:
        if self._closing:
            raise TooManyConnections("the server is shutting down", CLOSE_GOING_AWAY)
        cap = self._limits.max_connections
        if cap is not None and self._count >= cap:
            raise TooManyConnections(
                f"this server holds its most live connections ({cap}); try again later",
                CLOSE_TRY_AGAIN_LATER,
            )
        conns = self._local.setdefault(conn.user_id, {})
        if conn.conn_id not in conns:
            conns[conn.conn_id] = conn
            self._count += 1
            self._idle.clear()

    async def _forget(self, conn: LiveConnection) -> None:
        conns = self._local.get(conn.user_id)
        if conns is None or conns.pop(conn.conn_id, None) is None:
            return
        self._count -= 1
        if self._count == 0:
            self._idle.set()
        if conns:
            return
        del self._local[conn.user_id]
        if conn.user_id in self._subscribed and self._subscriber is not None:
            del self._subscribed[conn.user_id]
            try:
                await self._subscriber.unsubscribe(self._prefix + conn.user_id)
            except Exception as exc:
                log.warning("unsubscribe %s failed: %s", conn.user_id, exc)

    async def _subscribe(self, user_id: str) -> None:
        assert self._subscriber is not None
        if user_id in self._subscribed:
            sub = self._subscribed[user_id]
            if sub is None:
                return  # active
        else:
            sub = asyncio.ensure_future(self._subscriber.subscribe(self._prefix + user_id))
            self._subscribed[user_id] = sub
        try:
            await asyncio.shield(sub)
        except Exception:
            if self._subscribed.get(user_id) is sub:
                del self._subscribed[user_id]
            raise
        if self._subscribed.get(user_id) is sub:
            self._subscribed[user_id] = None  # keep no finished task per user

    def _on_message(self, channel: str, payload: bytes) -> None:
        if channel.startswith(self._prefix):
            self.deliver_local(channel[len(self._prefix) :], payload)
        elif channel == self._holder_channel:
            try:
                pairs = unpack(payload)
            except ValueError as exc:
                log.warning("dropped a malformed envelope on %s: %s", channel, exc)
                return
            for user_id, frame in pairs:
                self.deliver_local(user_id, frame)

    async def _refresh_presence(self) -> None:
        """Every period, refresh the users connected at its start, one slice per step: a
        user connected since registered their own entry, and is refreshed within two
        periods (less than the TTL)."""
        ttl = self._limits.presence_ttl
        period = ttl / 3
        slices = max(1, int(period / self._limits.presence_refresh_step))
        step = period / slices
        while True:
            users = list(self._local)
            for index in range(slices):
                await asyncio.sleep(step)
                await self._refresh_users(users[index::slices], ttl)

    async def _refresh_users(self, users: list[str], ttl: float) -> None:
        """Refresh the entries of those of ``users`` still connected here."""
        entries = [(uid, cid) for uid in users for cid in self._local.get(uid, ())]
        try:
            for start in range(0, len(entries), _REFRESH_BATCH):
                await self._backends.presence.refresh(entries[start : start + _REFRESH_BATCH], ttl)
        except Exception as exc:
            log.warning("presence refresh failed: %s", exc)
