"""Delivery jobs: one per (notification, channel) send, on that channel's priority queue.

The router (and the scheduler, when it releases held work) queues them; the delivery
workers consume them. A job carries only the delivery row's id: the row is the truth
(status, attempts, lease), so a duplicate job is harmless.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from notify_core.constants import DELIVERY_CHANNELS, PRIORITY_NAMES, delivery_queue
from notify_core.queue.base import Message, WorkQueue
from notify_core.queue.database import DatabaseQueue


def delivery_message(delivery_id: str, priority: str) -> Message:
    return Message(
        body=json.dumps({"id": delivery_id}).encode(),
        priority=PRIORITY_NAMES[priority],
        message_id=delivery_id,
    )


def group_jobs(sends: Iterable[tuple[str, str, str]]) -> dict[str, list[Message]]:
    """``(delivery_id, channel, priority)`` → messages per queue; channels without
    workers are left out (their rows stay pending)."""
    out: dict[str, list[Message]] = {}
    for delivery_id, channel, priority in sends:
        if channel in DELIVERY_CHANNELS:
            out.setdefault(delivery_queue(channel, priority), []).append(
                delivery_message(delivery_id, priority)
            )
    return out


async def publish_in_txn(
    same_txn: DatabaseQueue | None, conn: AsyncConnection, jobs: Mapping[str, Sequence[Message]]
) -> None:
    """Write the jobs in the caller's transaction when the queue lives in the database."""
    if same_txn is not None:
        for queue, messages in jobs.items():
            await same_txn.publish_in(conn, queue, messages)


async def publish_after_commit(
    queue: WorkQueue, same_txn: DatabaseQueue | None, jobs: Mapping[str, Sequence[Message]]
) -> None:
    """After the commit: wake local consumers (database queue) or publish (RabbitMQ)."""
    for name, messages in jobs.items():
        if same_txn is not None:
            same_txn.wake(name)
        else:
            await queue.publish(name, messages)
