"""The hub refreshes its connections' presence spread over each period, in slices, rather
than all at once; every user still connected is refreshed at least every two periods
(within the TTL), and a user who left is not brought back."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass

from notify_core.cache.memory import MemoryBackends, MemoryPresence
from realtime_svc.hub import Hub, HubLimits

TTL = 3.0  # a period of 1 s
STEP = 0.25  # 4 slices per period
USERS = 40


class RecordingPresence(MemoryPresence):
    """The in-memory presence backend, noting when each refresh came and what it named."""

    def __init__(self) -> None:
        super().__init__()
        self.refreshes: list[tuple[float, list[str]]] = []

    async def refresh(self, entries: Sequence[tuple[str, str]], ttl: float) -> None:
        self.refreshes.append((time.monotonic(), [user for user, _ in entries]))
        await super().refresh(entries, ttl)


@dataclass
class Conn:
    user_id: str
    conn_id: str

    def offer(self, payload: bytes) -> None:
        pass


async def test_presence_is_refreshed_in_slices_never_two_periods_apart() -> None:
    presence = RecordingPresence()
    hub = Hub(
        MemoryBackends(presence=presence),
        "ns",
        HubLimits(presence_ttl=TTL, presence_refresh_step=STEP),
    )
    await hub.start()
    conns = [Conn(f"user-{i}", f"c{i}") for i in range(USERS)]
    try:
        for conn in conns:
            await hub.attach(conn)
        await asyncio.sleep(1.6)
        gone = conns[0]
        await hub.detach(gone)
        left_at = len(presence.refreshes)
        await asyncio.sleep(2.0)
    finally:
        await hub.close()
    calls = [(at, users) for at, users in presence.refreshes if users]
    # Spread: several calls a step apart, none carrying much more than a quarter of the
    # users (refreshing all at once would name all 40 in one call).
    assert len(calls) >= 6, calls
    assert max(len(users) for _, users in calls) <= USERS // 4 + 1, calls
    # Everyone still here is refreshed again and again, never more than two periods apart.
    times: dict[str, list[float]] = {}
    for at, users in calls:
        for user in users:
            times.setdefault(user, []).append(at)
    for conn in conns[1:]:
        seen = times[conn.user_id]
        assert len(seen) >= 2, (conn.user_id, seen)
        assert max(b - a for a, b in itertools.pairwise(seen)) <= 2 * TTL / 3 + 0.5
    # The one who left is never refreshed after leaving.
    assert all(gone.user_id not in users for _, users in presence.refreshes[left_at:])
