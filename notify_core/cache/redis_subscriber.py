"""A Redis pub/sub subscription set on a connection of its own, read by one task
(RESP2, named ``subscriber_client_name(namespace)`` in ``CLIENT LIST``): the subscriber of
:class:`notify_core.cache.redis.RedisPubSub`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Callable, Sequence

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from notify_core.cache.base import MessageHandler
from notify_core.errors import CacheUnavailable

log = logging.getLogger(__name__)

CHUNK = 1000
"""Channels per SUBSCRIBE / UNSUBSCRIBE command."""
_BACKOFF_MIN = 0.1
_BACKOFF_MAX = 5.0

_Waiters = dict[str, deque[list["asyncio.Future[None]"]]]


def _text(raw: object) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


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
