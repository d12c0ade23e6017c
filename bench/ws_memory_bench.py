"""(d) Memory per idle WebSocket connection on the edge.

``notify up`` runs as its own process. This process opens ``--warmup`` connections (each
its own user, as in the worst case: one pub/sub subscription and one presence entry per
connection), waits for each one's ``pending`` frame, lets the server settle and reads its
resident set size (``VmRSS`` in ``/proc/<pid>/status``); then it opens ``--connections``
more and reads it again. The difference divided by the number of new connections is the
memory one idle connection costs the server (its kernel socket buffers are not in it).

    .venv/bin/python bench/ws_memory_bench.py --connections 2000
    .venv/bin/python bench/ws_memory_bench.py --connections 2000 --backend real
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time
import uuid
from pathlib import Path

from common import BACKENDS, JWT_SECRET, notify_server, print_table, write_result
from websockets.asyncio.client import ClientConnection, connect

from notify_core.auth import issue_user_token


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


async def open_many(url: str, count: int, parallel: int = 100) -> list[ClientConnection]:
    sem = asyncio.Semaphore(parallel)

    async def one() -> ClientConnection:
        token = issue_user_token(JWT_SECRET, f"mem-{uuid.uuid4().hex[:12]}", 3600)
        async with sem:
            ws = await connect(f"{url}?token={token}", max_queue=4, compression=None)
            pending = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert pending["type"] == "pending", pending
            return ws

    return list(await asyncio.gather(*[one() for _ in range(count)]))


async def settled_rss(pid: int, seconds: float = 2.0) -> int:
    await asyncio.sleep(seconds)
    return rss_bytes(pid)


async def measure(url: str, pid: int, warmup: int, connections: int) -> dict[str, float]:
    first = await open_many(url, warmup)
    gc.collect()
    before = await settled_rss(pid)
    started = time.perf_counter()
    more = await open_many(url, connections)
    opened_s = time.perf_counter() - started
    after = await settled_rss(pid)
    for ws in first + more:
        await ws.close()
    per = (after - before) / connections
    return {
        "connections": connections,
        "rss_before_mib": before / 2**20,
        "rss_after_mib": after / 2**20,
        "bytes_per_connection": per,
        "kib_per_connection": per / 1024,
        "open_seconds": opened_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=2_000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--backend", choices=BACKENDS, default="embedded")
    args = parser.parse_args()
    with notify_server(args.backend) as server:
        result = asyncio.run(measure(server.ws_url, server.pid, args.warmup, args.connections))
    result["backend"] = args.backend
    print_table([result], list(result))
    path = write_result(f"ws_memory-{args.backend}", result)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
