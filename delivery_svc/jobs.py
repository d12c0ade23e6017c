"""Delivery jobs: one per (notification, channel) send, on that channel's priority queue.

The router (and the scheduler, when it releases held work) queues them; the delivery
workers consume them. A job carries only the delivery row's id: the row is the truth
(status, attempts, lease), so a duplicate job is harmless.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from notify_core.constants import delivery_queue
from notify_core.domain import DELIVERY_CHANNELS, Priority
from notify_core.queue.base import Message, Staged, WorkQueue


def delivery_message(delivery_id: str, priority: str) -> Message:
    return Message(
        body=json.dumps({"id": delivery_id}).encode(),
        priority=Priority(priority).queue_priority,
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


async def stage_jobs(
    queue: WorkQueue, conn: AsyncConnection, jobs: Mapping[str, Sequence[Message]]
) -> list[Staged]:
    """Stage the jobs in the caller's transaction; ``queue.flush`` them after the commit."""
    return [await queue.stage(conn, name, messages) for name, messages in jobs.items()]
