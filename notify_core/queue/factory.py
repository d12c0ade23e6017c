"""Choose the work-queue backend: RabbitMQ when an AMQP URL is configured, else the database."""

from __future__ import annotations

from collections.abc import Sequence

from notify_core.db.engine import Database
from notify_core.queue.base import WorkQueue
from notify_core.queue.database import DatabaseQueue
from notify_core.queue.rabbitmq import RabbitMQQueue


def create_queue(
    amqp_url: str | None, database: Database, namespace: str, queues: Sequence[str]
) -> WorkQueue:
    """A not yet started :class:`WorkQueue`: RabbitMQ at ``amqp_url`` (staging through the
    ``outbox`` of ``database``), or ``queue_jobs`` of ``database``."""
    if amqp_url:
        return RabbitMQQueue(amqp_url, namespace, queues, database=database)
    return DatabaseQueue(database, namespace, queues)
