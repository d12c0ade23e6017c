"""The RabbitMQ work queue, on pika's asyncio adapter and the running event loop (no threads).

One connection per :class:`RabbitMQQueue`. Publishes go through one channel in confirm
mode; each ``consume()`` has a channel of its own (its ``basic_qos`` is the prefetch). A
lost connection is re-established in the background; consumers resume on the new one and
RabbitMQ redelivers what the old one had not acked.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import pika
import pika.exceptions
import pika.spec
from sqlalchemy.ext.asyncio import AsyncConnection

from notify_core.constants import (
    MAX_PRIORITY,
    OUTBOX_SWEEP_AFTER_SECONDS,
    QUEUE_AMQP_MAX_PRIORITY,
    QUEUE_CONFIRM_TIMEOUT_SECONDS,
    QUEUE_HOLD_STEPS,
    QUEUE_RECONNECT_MAX_SECONDS,
    amqp_connection_name,
    hold_queue_name,
    queue_name,
)
from notify_core.db.engine import Database
from notify_core.errors import QueueUnavailable
from notify_core.queue.amqp_channels import (
    Channel,
    Connection,
    ConsumerChannel,
    Publisher,
    fail,
    next_batch,
    resolve,
    tag_of,
    unavailable,
)
from notify_core.queue.base import Delivery, Message, Staged
from notify_core.queue.outbox import Outbox

log = logging.getLogger(__name__)


class RabbitMQQueue:
    """A :class:`~notify_core.queue.base.WorkQueue` on RabbitMQ.

    Guarantees, beyond those of the protocol:

    * Queues are durable with ``x-max-priority``; messages are persistent. ``publish``
      returns when the broker has confirmed every message; a nack, a lost channel or no
      confirm within ``confirm_timeout`` raises ``QueueUnavailable``, as does publishing
      while disconnected (at once, never waiting for the reconnection).
    * ``start()`` raises ``QueueUnavailable`` when RabbitMQ cannot be reached. Afterwards a
      lost connection is re-established with backoff and queues are declared again;
      ``consume()`` iterators carry on over the new connection. Acks for deliveries of a
      dead channel are dropped: RabbitMQ redelivers those messages.
    * A ``consume()`` iterator that is closed keeps its channel until every delivery it
      yielded is acked or nacked; deliveries it had buffered but not yielded are requeued.
    * ``stage`` writes to the ``outbox`` table of ``database`` (required for it); this
      object's relay publishes those rows (:mod:`notify_core.queue.outbox`).
    """

    def __init__(
        self,
        url: str,
        namespace: str,
        queues: Sequence[str],
        *,
        confirm_timeout: float = QUEUE_CONFIRM_TIMEOUT_SECONDS,
        database: Database | None = None,
        sweep_after: float = OUTBOX_SWEEP_AFTER_SECONDS,
    ) -> None:
        self._url = url
        self._namespace = namespace
        self._names = {q: queue_name(namespace, q) for q in queues}
        self._timeout = confirm_timeout
        self._conn: Any = None
        self._admin: Channel | None = None
        self._publisher: Publisher | None = None
        self._channel_lock = asyncio.Lock()
        self._ready = asyncio.Event()
        self._stopped = asyncio.Event()
        self._closing = False
        self._closed_waiter: asyncio.Future[None] | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._active: set[ConsumerChannel] = set()
        self.outbox: Outbox | None = None
        if database is not None:
            self.outbox = Outbox(
                database, self._names, self._publish_delayed, sweep_after=sweep_after
            )

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and declare the queues; ``QueueUnavailable`` if RabbitMQ is unreachable."""
        if self._closing:
            raise RuntimeError("RabbitMQQueue is closed")
        reconnecting = self._reconnect_task is not None and not self._reconnect_task.done()
        if self._conn is None and not reconnecting:
            await self._connect()
        if self.outbox is not None:
            self.outbox.start()

    async def close(self) -> None:
        """Stop the consumers and close the connection (RabbitMQ requeues unacked messages)."""
        if self._closing:
            return
        self._closing = True
        self._stopped.set()
        if self.outbox is not None:
            await self.outbox.close()
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnect_task
        for consumer in self._active:
            consumer.buffer.put_nowait(None)
        conn = self._conn
        if conn is not None and not (conn.is_closing or conn.is_closed):
            self._closed_waiter = asyncio.get_running_loop().create_future()
            with contextlib.suppress(pika.exceptions.AMQPError):
                conn.close()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._timeout):
                        await self._closed_waiter
        self._conn = self._admin = self._publisher = None
        self._ready.clear()

    # -- publishing ---------------------------------------------------------------------

    async def publish(self, queue: str, messages: Sequence[Message], *, delay: float = 0.0) -> None:
        """Publish every message, then wait for all their confirms together.

        Delayed messages go through the fanout exchange of a hold queue with the work
        queue's name as routing key; the hold queue has a TTL and dead-letters to the
        default exchange, which routes by that same key: back to the work queue. The
        per-message expiration (the exact delay) may shorten the wait below the step."""
        name = self._name(queue)
        exchange, expiration = "", None
        if delay > 0:
            step = next((s for s in QUEUE_HOLD_STEPS if s >= delay), QUEUE_HOLD_STEPS[-1])
            exchange = hold_queue_name(self._namespace, step)
            expiration = str(max(1, round(min(delay, step) * 1000)))
        for message in messages:
            if not 0 <= message.priority <= MAX_PRIORITY:
                raise ValueError(f"priority {message.priority} is outside 0..{MAX_PRIORITY}")
        if not messages:
            return
        publisher = await self._get_publisher()
        seqs: list[int] = []
        confirms: list[asyncio.Future[None]] = []
        try:
            try:
                for message in messages:
                    seq, confirmed = publisher.publish(name, message, exchange, expiration)
                    seqs.append(seq)
                    confirms.append(confirmed)
            except pika.exceptions.AMQPError as exc:
                raise QueueUnavailable(f"publishing to {name} failed: {exc!r}") from exc
            _, unconfirmed = await asyncio.wait(confirms, timeout=self._timeout)
            if unconfirmed:
                raise QueueUnavailable(
                    f"RabbitMQ confirmed {len(confirms) - len(unconfirmed)} of {len(confirms)}"
                    f" messages within {self._timeout:g}s"
                )
            errors = [e for e in (f.exception() for f in confirms) if e is not None]
            if errors:
                raise QueueUnavailable(f"{len(errors)} messages not confirmed") from errors[0]
        finally:
            for seq in seqs:
                publisher.forget(seq)

    async def _publish_delayed(self, queue: str, messages: Sequence[Message], delay: float) -> None:
        await self.publish(queue, messages, delay=delay)

    async def stage(
        self,
        conn: AsyncConnection,
        queue: str,
        messages: Sequence[Message],
        *,
        delay: float = 0.0,
    ) -> Staged:
        """Write the messages to the outbox in the caller's transaction."""
        if self.outbox is None:
            raise RuntimeError("this RabbitMQQueue has no database to stage jobs in")
        return await self.outbox.stage(conn, queue, messages, delay)

    def flush(self, staged: Iterable[Staged]) -> None:
        """Hand committed outbox rows to the relay."""
        if self.outbox is not None:
            self.outbox.flush(staged)

    # -- consuming ----------------------------------------------------------------------

    async def consume(
        self, queue: str, *, prefetch: int = 100, max_batch: int = 100
    ) -> AsyncIterator[list[Delivery]]:
        """Yield what has arrived (1..max_batch deliveries), across reconnections."""
        name = self._name(queue)
        if prefetch < 1 or max_batch < 1:
            raise ValueError("prefetch and max_batch must be at least 1")
        consumer: ConsumerChannel | None = None
        try:
            while (consumer := await self._subscribe(name, prefetch)) is not None:
                while (batch := await next_batch(consumer, max_batch)) is not None:
                    yield batch
                self._active.discard(consumer)
                consumer.retire()  # if only cancelled, its channel lives on until settled
        finally:
            if consumer is not None:
                self._active.discard(consumer)
                consumer.retire()

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """``basic_ack``; ``multiple`` for the run of tags acked together."""
        self._settle(deliveries, ack=True)

    async def nack(self, deliveries: Sequence[Delivery]) -> None:
        """``basic_nack(requeue=True)``."""
        self._settle(deliveries, ack=False)

    # -- inspection ---------------------------------------------------------------------

    async def depth(self, queue: str) -> int:
        """Ready messages of ``queue`` (``queue_declare(passive=True).message_count``)."""
        name = self._name(queue)
        admin = await self._get_admin()
        frame = await admin.call(admin.pika.queue_declare, queue=name, passive=True)
        return int(frame.method.message_count)

    async def purge(self, queue: str) -> None:
        """``queue_purge``: drops the ready messages (unacked ones stay with their consumer)."""
        name = self._name(queue)
        admin = await self._get_admin()
        await admin.call(admin.pika.queue_purge, queue=name)

    async def ping(self) -> None:
        """A round trip to the broker (a passive declare), or ``QueueUnavailable``."""
        admin = await self._get_admin()
        for name in itertools.islice(self._names.values(), 1):
            await admin.call(admin.pika.queue_declare, queue=name, passive=True)

    # -- connection ---------------------------------------------------------------------

    def _name(self, queue: str) -> str:
        try:
            return self._names[queue]
        except KeyError:
            raise ValueError(f"queue {queue!r} was not declared for this WorkQueue") from None

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        opened: asyncio.Future[None] = loop.create_future()
        try:
            params = pika.URLParameters(self._url)
            params.client_properties = {"connection_name": amqp_connection_name(self._namespace)}
            conn = Connection(
                params,
                on_open_callback=lambda _c: resolve(opened, None),
                on_open_error_callback=lambda _c, exc: fail(
                    opened, unavailable("cannot connect to RabbitMQ", exc)
                ),
                on_close_callback=self._connection_closed,
                custom_ioloop=loop,
            )
        except (pika.exceptions.AMQPError, OSError, ValueError) as exc:
            raise QueueUnavailable(f"cannot connect to RabbitMQ: {exc!r}") from exc
        try:
            try:
                async with asyncio.timeout(self._timeout):
                    await opened
            except TimeoutError as exc:
                raise QueueUnavailable(f"no RabbitMQ connection within {self._timeout:g}s") from exc
            self._conn = conn
            admin = await Channel.open(conn, self._timeout)
            arguments = {"x-max-priority": QUEUE_AMQP_MAX_PRIORITY}
            for name in self._names.values():
                await admin.call(
                    admin.pika.queue_declare, queue=name, durable=True, arguments=arguments
                )
            for step in QUEUE_HOLD_STEPS:
                hold = hold_queue_name(self._namespace, step)
                await admin.call(
                    admin.pika.exchange_declare, exchange=hold, exchange_type="fanout", durable=True
                )
                await admin.call(
                    admin.pika.queue_declare,
                    queue=hold,
                    durable=True,
                    arguments={
                        "x-message-ttl": round(step * 1000),
                        "x-dead-letter-exchange": "",
                    },
                )
                await admin.call(admin.pika.queue_bind, queue=hold, exchange=hold)
            publisher = await Publisher.open(conn, self._timeout)
        except BaseException:
            if self._conn is conn:
                self._conn = None
            if not (conn.is_closing or conn.is_closed):
                with contextlib.suppress(pika.exceptions.AMQPError):
                    conn.close()
            raise
        if self._conn is not conn or not conn.is_open:
            raise QueueUnavailable("lost the RabbitMQ connection while setting it up")
        self._admin, self._publisher = admin, publisher
        self._ready.set()

    def _connection_closed(self, conn: Any, reason: BaseException) -> None:
        if conn is not self._conn:
            return
        was_ready = self._ready.is_set()
        self._conn = self._admin = self._publisher = None
        self._ready.clear()
        if self._closing:
            if self._closed_waiter is not None:
                resolve(self._closed_waiter, None)
            return
        if not was_ready:
            return  # still in _connect(), which fails and is retried by its caller
        log.warning("lost the RabbitMQ connection (%r); reconnecting", reason)
        self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        delay = 0.5
        while not self._closing:
            try:
                await self._connect()
            except QueueUnavailable as exc:
                log.warning("reconnecting to RabbitMQ failed (%s); next try in %.1fs", exc, delay)
                await _wait(self._stopped, delay)
                delay = min(delay * 2, QUEUE_RECONNECT_MAX_SECONDS)
            else:
                log.warning("reconnected to RabbitMQ")
                return

    async def _get_publisher(self) -> Publisher:
        publisher = self._publisher
        if publisher is not None and publisher.channel.is_open:
            return publisher
        async with self._channel_lock:
            conn = self._require_connection()
            if self._publisher is None or not self._publisher.channel.is_open:
                self._publisher = await Publisher.open(conn, self._timeout)
            return self._publisher

    async def _get_admin(self) -> Channel:
        admin = self._admin
        if admin is not None and admin.is_open:
            return admin
        async with self._channel_lock:
            conn = self._require_connection()
            if self._admin is None or not self._admin.is_open:
                self._admin = await Channel.open(conn, self._timeout)
            return self._admin

    def _require_connection(self) -> Any:
        if self._closing or self._conn is None or not self._ready.is_set():
            raise QueueUnavailable("RabbitMQ is not connected")
        return self._conn

    async def _subscribe(self, name: str, prefetch: int) -> ConsumerChannel | None:
        """A consuming channel on the current connection; ``None`` once closing."""
        delay = 0.5
        while not self._closing:
            if not self._ready.is_set():
                await _wait(self._ready, 0.5)
                continue
            channel: Channel | None = None
            try:
                channel = await Channel.open(self._conn, self._timeout)
                await channel.call(channel.pika.basic_qos, prefetch_count=prefetch)
                consumer = ConsumerChannel(channel)
                frame = await channel.call(
                    channel.pika.basic_consume, name, consumer.on_message, auto_ack=False
                )
            except QueueUnavailable as exc:
                if channel is not None:
                    channel.close()
                if self._closing:
                    break
                log.warning("cannot consume from %s (%s); retrying in %.1fs", name, exc, delay)
                await _wait(self._stopped, delay)
                delay = min(delay * 2, QUEUE_RECONNECT_MAX_SECONDS)
                continue
            consumer.consumer_tag = frame.method.consumer_tag
            self._active.add(consumer)
            return consumer
        return None

    def _settle(self, deliveries: Sequence[Delivery], *, ack: bool) -> None:
        by_channel: dict[ConsumerChannel, list[int]] = {}
        for delivery in deliveries:
            tag = tag_of(delivery)
            by_channel.setdefault(tag.channel, []).append(tag.delivery_tag)
        for consumer, tags in by_channel.items():
            consumer.settle(tags, ack=ack)


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Wait for ``event`` at most ``seconds``.

    ``asyncio.timeout``, not ``wait_for``: on Python 3.11 ``wait_for`` swallows a
    cancellation that arrives as the event is set, and the consumer would never stop.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
