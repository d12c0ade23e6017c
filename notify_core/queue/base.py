"""The work-queue protocol and the guarantees every implementation gives.

Guarantees (checked by ``tests/contract/test_queue_contract.py`` against every backend):

* ``publish`` returns only once every message is durable (RabbitMQ: persistent messages on
  a durable queue, publisher-confirmed; database: committed). It raises
  :class:`~notify_core.errors.QueueUnavailable` if any message may not be.
* Delivery is at least once: a message is removed only by ``ack``. A message whose consumer
  dies (connection lost, process killed) before ``ack`` is delivered again.
* Among messages waiting in one queue, higher priority is delivered first
  (``PRIORITY_HIGH`` > ``PRIORITY_NORMAL`` > ``PRIORITY_LOW``); FIFO within a priority is
  best effort.
* At most ``prefetch`` messages are delivered to one consumer and not yet acked.
* A message published with a ``delay`` is not delivered before the delay has passed.
* ``stage`` writes messages inside the caller's database transaction: they are delivered
  if and only if that transaction commits, even if the process dies right after the
  commit or the broker is away at that moment (then as soon as it is back). ``flush``
  after the commit only makes delivery prompt. A staged message may be delivered twice.

Queues are named by their logical name (``constants.QUEUE_*``); an implementation is built
with the namespace and the list of logical queues, and prefixes the names itself
(``constants.queue_name``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from notify_core.constants import PRIORITY_NORMAL


@dataclass(frozen=True, slots=True)
class Message:
    """A message to publish."""

    body: bytes
    priority: int = PRIORITY_NORMAL
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class Staged:
    """Messages written in a transaction by ``WorkQueue.stage``, for ``flush`` after it."""

    queue: str
    messages: tuple[Message, ...]
    delay: float = 0.0
    row_ids: tuple[str, ...] = ()
    """The outbox rows holding them (RabbitMQ); empty when the queue is the database."""


@dataclass(slots=True)
class Delivery:
    """A message received by a consumer; ``tag`` is backend-specific and opaque."""

    body: bytes
    priority: int
    tag: object
    redelivered: bool = False
    message_id: str | None = None


class WorkQueue(Protocol):
    """A durable priority work queue (at-least-once)."""

    async def start(self) -> None:
        """Connect and declare every queue Notify uses."""
        ...

    async def close(self) -> None:
        """Stop consumers and disconnect. Unacked deliveries go back to their queue."""
        ...

    async def publish(self, queue: str, messages: Sequence[Message], *, delay: float = 0.0) -> None:
        """Publish ``messages`` to ``queue`` and return when all are durable.

        With ``delay`` (seconds) they are delivered no sooner than that (retries): the
        database queue makes them available then; RabbitMQ parks them in the hold queue of
        the smallest ``QUEUE_HOLD_STEPS`` step not shorter than the delay, whose expiry
        dead-letters them back to ``queue``.
        """
        ...

    async def stage(
        self,
        conn: AsyncConnection,
        queue: str,
        messages: Sequence[Message],
        *,
        delay: float = 0.0,
    ) -> Staged:
        """Write ``messages`` for ``queue`` inside the transaction of ``conn`` (a connection
        of the service database): they commit with the caller's rows or not at all. Hand
        the answer to ``flush`` once the transaction has committed."""
        ...

    def flush(self, staged: Iterable[Staged]) -> None:
        """After the commit of the staged messages: deliver them now rather than at the
        next sweep (wake local consumers, or publish). Never blocks, never raises."""
        ...

    def consume(
        self, queue: str, *, prefetch: int = 100, max_batch: int = 100
    ) -> AsyncIterator[list[Delivery]]:
        """Yield batches of deliveries (1..max_batch) as they arrive, forever.

        The consumer must ``ack`` (or ``nack``) every delivery of a batch; the iterator
        is stopped by ``close()`` or by closing the async generator.
        """
        ...

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Remove these deliveries for good."""
        ...

    async def nack(self, deliveries: Sequence[Delivery]) -> None:
        """Give these deliveries back to the queue for another try."""
        ...

    async def depth(self, queue: str) -> int:
        """How many messages wait in ``queue`` (ready, not delivered to a consumer)."""
        ...

    async def purge(self, queue: str) -> None:
        """Drop every waiting message of ``queue`` (tests and operators only)."""
        ...

    async def ping(self) -> None:
        """Raise ``QueueUnavailable`` unless the backend answers."""
        ...


def job_ids(batch: Sequence[Delivery], log: logging.Logger) -> list[str]:
    """The ids the jobs in ``batch`` name, in order: one for a job ``{"id": ...}``, each of
    a job ``{"ids": [...]}``. A malformed job is logged and left out (it is acked with the
    rest: retrying cannot fix it)."""
    ids: list[str] = []
    for d in batch:
        try:
            body = json.loads(d.body)
            named = body["ids"] if "ids" in body else [body["id"]]
            if not isinstance(named, list):
                raise TypeError("ids is not a list")
            ids.extend(str(i) for i in named)
        except (ValueError, KeyError, TypeError):
            log.error("dropping malformed job %r", d.body[:200])
    return ids
