"""What a live connection (WebSocket or SSE) does with the frames the hub hands it.

Frames go through a bounded queue; a connection that lets it overflow is dropped, so one
slow client cannot slow anyone else down (DESIGN §7). Until the opening frames (``pending``,
or ``resumed`` and the missed notifications) are out, live frames wait aside; once they are
out, a ``notification`` frame whose id the opening already carried is dropped, then and
later, so a notification racing the opening query reaches the client once. A connection
lasts no longer than the token it was opened with (:func:`end_at_expiry`).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable

from notify_core.constants import LIVE_SEND_QUEUE
from notify_core.convert import live_event_id


class Outbox:
    """One connection's queue of frames; implements ``hub.LiveConnection``.

    Subclasses say how a frame is written (:meth:`write`), how a waiting writer is woken
    (:meth:`_wake`), what an overflow does (:meth:`_overflowed`) and how the connection
    ends when its token expires (:meth:`_expired`).
    """

    def __init__(self, user_id: str, conn_id: str, *, queue_limit: int = LIVE_SEND_QUEUE) -> None:
        self.user_id = user_id
        self.conn_id = conn_id
        self.closed = False
        self.overflowed = False
        self.expired = False
        self._queue: deque[bytes] = deque()
        self._limit = queue_limit
        self._early: list[bytes] | None = []  # frames arriving before the opening is out
        self._sent: set[str] = set()  # notification ids the opening carried

    def offer(self, payload: bytes) -> None:
        """Queue a frame without blocking; overflowing the queue drops the connection."""
        if self.closed:
            return
        waiting = self._early if self._early is not None else self._queue
        if self._early is None and self._sent and live_event_id(payload) in self._sent:
            return
        if len(waiting) >= self._limit:
            self.closed = self.overflowed = True
            self._queue.clear()
            self._overflowed()
            return
        waiting.append(payload)
        if self._early is None:
            self._wake()

    async def open(self, frames: Iterable[bytes], sent: set[str]) -> None:
        """Write the opening frames, then let the live frames through (minus ``sent``)."""
        for frame in frames:
            if self.closed:
                return
            await self.write(frame)
        self._sent = sent
        early, self._early = self._early or [], None
        for payload in early:
            self.offer(payload)

    def expire(self) -> None:
        """The connection's token expired: queue nothing more and end the connection."""
        if self.closed:
            return
        self.closed = self.expired = True
        self._queue.clear()
        self._expired()

    def take(self) -> bytes | None:
        """The next queued frame, if any."""
        return self._queue.popleft() if self._queue else None

    async def write(self, payload: bytes) -> None:
        raise NotImplementedError

    def _wake(self) -> None:
        raise NotImplementedError

    def _overflowed(self) -> None:
        raise NotImplementedError

    def _expired(self) -> None:
        raise NotImplementedError


def end_at_expiry(conn: Outbox, expires_at: float) -> asyncio.TimerHandle:
    """Expire ``conn`` when the clock reaches ``expires_at`` (its token's ``exp``, seconds
    since the epoch); cancel the handle when the connection ends first."""
    delay = max(0.0, expires_at - time.time())
    return asyncio.get_running_loop().call_later(delay, conn.expire)
