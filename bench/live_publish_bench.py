"""(i) A batch's live events, per user or per holder, and where one crosses the other.

One process on Redis: ``--hubs`` hubs, each on its own Redis connections (as edge processes
are), hold N users (one connection each, spread evenly); ``publish_changes`` sends one
event to each of them, per user (one PUBLISH per user) or per holder (one presence read,
one envelope per hub), alternately, ``--repeat`` times for each N. Timed from the call to
the last connection receiving its event (hubs and publisher share this process's event
loop, so the time includes the hubs' work). Also timed: ``presence.get`` for 1,000 users.

    .venv/bin/python bench/live_publish_bench.py
    .venv/bin/python bench/live_publish_bench.py --sizes 1,10,20,50 --repeat 50

Results: ``bench/results/<--name>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from common import REDIS_URL, print_table, write_result

from notify_core.cache.redis import RedisBackends
from notify_core.live import publish_changes
from realtime_svc.hub import Hub


class Counter:
    """Connections' receipts: set ``done`` when ``target`` frames have arrived."""

    def __init__(self) -> None:
        self.count = 0
        self.target = 0
        self.done = asyncio.Event()

    def expect(self, target: int) -> None:
        self.count, self.target = 0, target
        self.done.clear()

    def hit(self) -> None:
        self.count += 1
        if self.count >= self.target:
            self.done.set()


class Conn:
    def __init__(self, user_id: str, conn_id: str, counter: Counter) -> None:
        self.user_id = user_id
        self.conn_id = conn_id
        self._counter = counter

    def offer(self, payload: bytes) -> None:
        self._counter.hit()


def rows(users: list[str]) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        {
            "id": uuid.uuid4().hex,
            "user_id": u,
            "type": "bench",
            "title": "t",
            "message": "m" * 80,
            "data": {"n": i},
            "priority": "normal",
            "read": False,
            "created_at": now,
            "routed_at": now,
        }
        for i, u in enumerate(users)
    ]


async def one(
    publisher: RedisBackends, ns: str, users: list[str], counter: Counter, by_holder: bool
) -> float:
    batch = rows(users)
    counter.expect(len(users))
    began = time.perf_counter()
    await publish_changes(
        publisher.pubsub,
        ns,
        batch,
        [],
        presence=publisher.presence if by_holder else None,
        by_holder_min=1,
    )
    await asyncio.wait_for(counter.done.wait(), 60)
    return time.perf_counter() - began


async def run(args: argparse.Namespace) -> dict[str, Any]:
    ns = f"bench-live-{uuid.uuid4().hex[:8]}"
    sizes = [int(s) for s in args.sizes.split(",")]
    counter = Counter()
    publisher = RedisBackends(REDIS_URL, ns)
    hubs: list[tuple[Hub, RedisBackends]] = []
    out: dict[str, Any] = {"sizes": [], "presence_get_1000_ms": None}
    try:
        for _ in range(args.hubs):
            backends = RedisBackends(REDIS_URL, ns)
            hub = Hub(backends, ns)
            await hub.start()
            hubs.append((hub, backends))
        users = [f"u{i:06d}" for i in range(max(sizes))]
        for i, user in enumerate(users):
            hub = hubs[i % len(hubs)][0]
            await hub.attach(Conn(user, hub.new_connection_id(), counter))
        gets = []
        for _ in range(args.repeat):
            began = time.perf_counter()
            await publisher.presence.get(users[:1000])
            gets.append(time.perf_counter() - began)
        out["presence_get_1000_ms"] = round(1000 * statistics.median(gets), 2)
        for size in sizes:
            times: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(args.repeat):
                for by_holder in (False, True):
                    times[by_holder].append(
                        await one(publisher, ns, users[:size], counter, by_holder)
                    )
            per_user, by_holder_ = (statistics.median(times[k]) for k in (False, True))
            out["sizes"].append(
                {
                    "events": size,
                    "per_user_ms": round(1000 * per_user, 3),
                    "by_holder_ms": round(1000 * by_holder_, 3),
                    "per_user_per_s": round(size / per_user),
                    "by_holder_per_s": round(size / by_holder_),
                    "faster": "by holder" if by_holder_ < per_user else "per user",
                }
            )
            print_table(out["sizes"][-1:], list(out["sizes"][-1]))
    finally:
        for hub, backends in hubs:
            await hub.close()
            await backends.close()
        await publisher.close()
        await forget(ns)
    return out


async def forget(ns: str) -> None:
    """Delete this run's keys (last-seen times outlive the connections)."""
    admin = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in admin.scan_iter(match=f"{ns}:*", count=1000)]
        for i in range(0, len(keys), 1000):
            await admin.delete(*keys[i : i + 1000])
    finally:
        await admin.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hubs", type=int, default=8)
    parser.add_argument("--sizes", default="1,2,5,10,15,20,30,50,100,1000,10000")
    parser.add_argument("--repeat", type=int, default=21, help="median of this many")
    parser.add_argument("--name", default="live_publish")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(f"presence.get of 1,000 users: {result['presence_get_1000_ms']} ms (median)")
    print_table(result["sizes"], list(result["sizes"][0]))
    write_result(args.name, {"params": vars(args), **result})


if __name__ == "__main__":
    main()
