"""Work-queue throughput: publish N messages in batches, then consume and ack them all.

Each target given on the command line is one backend: a SQLite file path, a PostgreSQL URL
(``postgresql://...``, an existing database; it is migrated) or an AMQP URL
(``amqp://...``). Every run uses a fresh namespace and removes its messages afterwards.

    .venv/bin/python bench/queue_bench.py /tmp/q.db \\
        postgresql://postgres@127.0.0.1:5432/notify_bench amqp://guest:guest@127.0.0.1:5672/%2F

Prints publish and consume msgs/s per backend and writes ``bench/results/queue.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from notify_core.constants import PRIORITY_NORMAL, QUEUE_ROUTE, queue_name  # noqa: E402
from notify_core.db.engine import Database  # noqa: E402
from notify_core.db.migrate import upgrade  # noqa: E402
from notify_core.queue.base import Message, WorkQueue  # noqa: E402
from notify_core.queue.database import DatabaseQueue  # noqa: E402
from notify_core.queue.rabbitmq import RabbitMQQueue  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "queue.json"


def kind_of(target: str) -> str:
    if target.startswith("amqp"):
        return "rabbitmq"
    if target.startswith("postgresql"):
        return "postgres"
    return "sqlite"


async def run_one(
    target: str, count: int, batch: int, prefetch: int, publishers: int
) -> dict[str, Any]:
    kind = kind_of(target)
    namespace = f"bench{uuid.uuid4().hex[:10]}"
    database: Database | None = None
    queue: WorkQueue
    if kind == "rabbitmq":
        queue = RabbitMQQueue(target, namespace, [QUEUE_ROUTE])
    else:
        url = target if kind == "postgres" else f"sqlite:///{target}"
        await asyncio.to_thread(upgrade, url)
        database = Database(url)
        queue = DatabaseQueue(database, namespace, [QUEUE_ROUTE])
    await queue.start()
    body = json.dumps({"id": str(uuid.uuid4()), "pad": "x" * 120}).encode()
    batches = [
        [Message(body, PRIORITY_NORMAL, message_id=str(i + j)) for j in range(batch)]
        for i in range(0, count, batch)
    ]
    try:
        started = time.perf_counter()
        next_batch = iter(batches)

        async def publisher() -> None:
            for messages in next_batch:
                await queue.publish(QUEUE_ROUTE, messages)

        await asyncio.gather(*(publisher() for _ in range(publishers)))
        publish_seconds = time.perf_counter() - started
        published = sum(len(b) for b in batches)

        received: set[str | None] = set()
        duplicates = 0
        started = time.perf_counter()
        async with asyncio.timeout(max(60.0, count / 100)):
            async for deliveries in queue.consume(QUEUE_ROUTE, prefetch=prefetch, max_batch=batch):
                for d in deliveries:
                    duplicates += d.message_id in received
                    received.add(d.message_id)
                await queue.ack(deliveries)
                if len(received) >= published:
                    break
        consume_seconds = time.perf_counter() - started
        depth = await queue.depth(QUEUE_ROUTE)
    finally:
        await queue.purge(QUEUE_ROUTE)
        await queue.close()
        if database is not None:
            await database.close()
        if kind == "rabbitmq":
            await asyncio.to_thread(_delete_queue, target, queue_name(namespace, QUEUE_ROUTE))
    return {
        "backend": kind,
        "messages": published,
        "batch": batch,
        "publishers": publishers,
        "prefetch": prefetch,
        "publish_seconds": round(publish_seconds, 3),
        "publish_msgs_per_s": round(published / publish_seconds),
        "consume_seconds": round(consume_seconds, 3),
        "consume_msgs_per_s": round(published / consume_seconds),
        "duplicates": duplicates,
        "depth_after": depth,
    }


def _delete_queue(url: str, name: str) -> None:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        connection.channel().queue_delete(name)
    finally:
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="+", help="SQLite path, postgresql:// or amqp:// URL")
    parser.add_argument("-n", "--messages", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100, help="messages per publish call")
    parser.add_argument("--prefetch", type=int, default=500)
    parser.add_argument("--publishers", type=int, default=1, help="concurrent publish loops")
    args = parser.parse_args()

    results = []
    for target in args.targets:
        if kind_of(target) == "sqlite":
            target = str(Path(target).resolve())
        result = asyncio.run(
            run_one(target, args.messages, args.batch, args.prefetch, args.publishers)
        )
        results.append(result)
        print(
            f"{result['backend']:>9}: publish {result['publish_msgs_per_s']:>8} msgs/s"
            f"   consume+ack {result['consume_msgs_per_s']:>8} msgs/s"
            f"   ({result['messages']} msgs, {result['duplicates']} duplicates)",
            flush=True,
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "queue",
                "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "python": platform.python_version(),
                "machine": platform.machine(),
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
