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
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions
import pika.spec
from pika.adapters.asyncio_connection import AsyncioConnection
from sqlalchemy.ext.asyncio import AsyncConnection

from notify_core.constants import (
    MAX_PRIORITY,
    OUTBOX_SWEEP_AFTER_SECONDS,
    PRIORITY_LOW,
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
from notify_core.queue.base import Delivery, Message, Staged
from notify_core.queue.outbox import Outbox

log = logging.getLogger(__name__)


def _unavailable(message: str, cause: BaseException | None) -> QueueUnavailable:
    error = QueueUnavailable(f"{message}: {cause!r}" if cause is not None else message)
    error.__cause__ = cause
    return error


def _resolve(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _fail(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


class _Connection(AsyncioConnection):  # type: ignore[misc]
    """pika's asyncio connection, writing each message (method, header, body frames) at once.

    pika hands the transport one buffer per frame, and the transport makes one ``send()``
    per buffer; joining a message's frames cuts the syscalls by three and speeds publishing
    up ~1.7x. The bytes on the wire are the same.
    """

    def _output_marshaled_frames(self, marshaled_frames: Sequence[bytes]) -> None:
        data = b"".join(marshaled_frames)
        self.bytes_sent += len(data)
        self.frames_sent += len(marshaled_frames)
        self._adapter_emit_data(data)


class _Channel:
    """A pika channel whose RPCs are awaitable; pending ones fail when the channel closes."""

    def __init__(self, channel: Any, rpc_timeout: float) -> None:
        self.pika = channel
        self.rpc_timeout = rpc_timeout
        self._waiters: set[asyncio.Future[Any]] = set()
        self._close_hooks: list[Callable[[BaseException], None]] = []
        channel.add_on_close_callback(self._closed)

    @classmethod
    async def open(cls, connection: Any, rpc_timeout: float) -> _Channel:
        opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        try:
            channel = connection.channel(on_open_callback=lambda _ch: _resolve(opened, None))
        except pika.exceptions.AMQPError as exc:
            raise QueueUnavailable(f"cannot open a RabbitMQ channel: {exc!r}") from exc
        wrapped = cls(channel, rpc_timeout)
        await wrapped._wait(opened, "channel open")
        return wrapped

    @property
    def is_open(self) -> bool:
        return bool(self.pika.is_open)

    def on_close(self, hook: Callable[[BaseException], None]) -> None:
        self._close_hooks.append(hook)

    async def call(self, method: Callable[..., None], *args: Any, **kw: Any) -> Any:
        """Send an RPC (``method`` of this channel) and return the broker's reply frame."""
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        try:
            method(*args, callback=lambda frame: _resolve(reply, frame), **kw)
        except pika.exceptions.AMQPError as exc:
            raise QueueUnavailable(f"RabbitMQ channel unusable: {exc!r}") from exc
        return await self._wait(reply, getattr(method, "__name__", "rpc"))

    def close(self) -> None:
        if self.pika.is_open:
            with contextlib.suppress(pika.exceptions.AMQPError):
                self.pika.close()

    async def _wait(self, future: asyncio.Future[Any], what: str) -> Any:
        self._waiters.add(future)
        try:
            async with asyncio.timeout(self.rpc_timeout):
                return await future
        except TimeoutError as exc:
            raise QueueUnavailable(
                f"RabbitMQ did not answer {what} within {self.rpc_timeout:g}s"
            ) from exc
        finally:
            self._waiters.discard(future)

    def _closed(self, _channel: Any, reason: BaseException) -> None:
        for waiter in self._waiters:
            _fail(waiter, _unavailable("RabbitMQ channel closed", reason))
        self._waiters.clear()
        for hook in self._close_hooks:
            hook(reason)


class _Publisher:
    """The confirm-mode channel: publish sequence number -> future of the broker's confirm."""

    def __init__(self, channel: _Channel) -> None:
        self.channel = channel
        self._seq = 0
        self._pending: dict[int, asyncio.Future[None]] = {}
        channel.on_close(self._fail_all)

    @classmethod
    async def open(cls, connection: Any, rpc_timeout: float) -> _Publisher:
        publisher = cls(await _Channel.open(connection, rpc_timeout))
        chan = publisher.channel
        await chan.call(chan.pika.confirm_delivery, publisher._on_confirm)
        return publisher

    def publish(
        self, routing_key: str, message: Message, exchange: str = "", expiration: str | None = None
    ) -> tuple[int, asyncio.Future[None]]:
        properties = pika.BasicProperties(
            delivery_mode=pika.DeliveryMode.Persistent,
            priority=message.priority,
            message_id=message.message_id,
            expiration=expiration,
        )
        self.channel.pika.basic_publish(
            exchange=exchange, routing_key=routing_key, body=message.body, properties=properties
        )
        self._seq += 1
        confirmed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending[self._seq] = confirmed
        return self._seq, confirmed

    def forget(self, seq: int) -> None:
        future = self._pending.pop(seq, None)
        if future is not None and not future.done():
            future.cancel()

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        last = method.delivery_tag
        if method.multiple:
            seqs = list(itertools.takewhile(lambda s: s <= last, self._pending))
        else:
            seqs = [last] if last in self._pending else []
        nacked = isinstance(method, pika.spec.Basic.Nack)
        for seq in seqs:
            future = self._pending.pop(seq)
            if nacked:
                _fail(future, QueueUnavailable("RabbitMQ refused (nacked) a published message"))
            else:
                _resolve(future, None)

    def _fail_all(self, reason: BaseException) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            _fail(future, _unavailable("publisher channel closed before confirming", reason))


@dataclass(frozen=True, slots=True, eq=False)
class _Tag:
    """A delivery's identity: the consumer channel it came on and its tag there."""

    channel: _ConsumerChannel
    delivery_tag: int


def _tag_of(delivery: Delivery) -> _Tag:
    if not isinstance(delivery.tag, _Tag):
        raise TypeError(f"not a RabbitMQQueue delivery: tag {delivery.tag!r}")
    return delivery.tag


class _ConsumerChannel:
    """A channel with one consumer: its buffer (``None`` = channel gone) and unsettled tags."""

    def __init__(self, channel: _Channel) -> None:
        self.channel = channel
        self.buffer: asyncio.Queue[Delivery | None] = asyncio.Queue()
        self.outstanding: dict[int, None] = {}
        """Delivered, not yet acked or nacked; in delivery (= tag) order."""
        self.consumer_tag: str | None = None
        self.retired = False
        channel.on_close(self._closed)
        channel.pika.add_on_cancel_callback(self._cancelled_by_broker)

    def on_message(self, _channel: Any, method: Any, properties: Any, body: bytes) -> None:
        tag = int(method.delivery_tag)
        self.outstanding[tag] = None
        if self.retired:
            self.settle([tag], ack=False)
            return
        priority = properties.priority
        self.buffer.put_nowait(
            Delivery(
                body=body,
                priority=PRIORITY_LOW if priority is None else int(priority),
                tag=_Tag(self, tag),
                redelivered=bool(method.redelivered),
                message_id=properties.message_id,
            )
        )

    def settle(self, tags: Sequence[int], *, ack: bool) -> None:
        """Ack or nack (requeue) ``tags``; one ``multiple`` frame for an unbroken prefix."""
        wanted = {t for t in tags if t in self.outstanding}
        if not wanted:
            return
        top, prefix_end, covered = max(wanted), 0, 0
        for tag in self.outstanding:
            if tag > top or tag not in wanted:
                break
            prefix_end, covered = tag, covered + 1
        frames = [(prefix_end, True)] if covered > 1 else []
        frames += [(t, False) for t in sorted(wanted) if covered <= 1 or t > prefix_end]
        for tag in wanted:
            del self.outstanding[tag]
        try:
            for tag, multiple in frames:
                if ack:
                    self.channel.pika.basic_ack(delivery_tag=tag, multiple=multiple)
                else:
                    self.channel.pika.basic_nack(delivery_tag=tag, multiple=multiple, requeue=True)
        except pika.exceptions.AMQPError as exc:
            log.debug("settling on a dead channel (%r); RabbitMQ redelivers instead", exc)
        if self.retired and not self.outstanding:
            self.channel.close()

    def retire(self) -> None:
        """The iterator is gone: stop consuming, requeue what it never saw, close when settled."""
        if self.retired:
            return
        self.retired = True
        if not self.channel.is_open:
            return
        if self.consumer_tag is not None:
            with contextlib.suppress(pika.exceptions.AMQPError):
                self.channel.pika.basic_cancel(self.consumer_tag)
        unseen: list[int] = []
        while not self.buffer.empty():
            item = self.buffer.get_nowait()
            if item is not None:
                unseen.append(_tag_of(item).delivery_tag)
        self.settle(unseen, ack=False)
        if not self.outstanding:
            self.channel.close()

    def _closed(self, _reason: BaseException) -> None:
        self.outstanding.clear()
        self.buffer.put_nowait(None)

    def _cancelled_by_broker(self, _frame: Any) -> None:
        # The queue was deleted, or its node went away: subscribe again.
        log.warning("RabbitMQ cancelled the consumer %s", self.consumer_tag)
        self.buffer.put_nowait(None)


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
        self._admin: _Channel | None = None
        self._publisher: _Publisher | None = None
        self._channel_lock = asyncio.Lock()
        self._ready = asyncio.Event()
        self._stopped = asyncio.Event()
        self._closing = False
        self._closed_waiter: asyncio.Future[None] | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._active: set[_ConsumerChannel] = set()
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
        consumer: _ConsumerChannel | None = None
        try:
            while (consumer := await self._subscribe(name, prefetch)) is not None:
                while (batch := await _next_batch(consumer, max_batch)) is not None:
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
            conn = _Connection(
                params,
                on_open_callback=lambda _c: _resolve(opened, None),
                on_open_error_callback=lambda _c, exc: _fail(
                    opened, _unavailable("cannot connect to RabbitMQ", exc)
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
            admin = await _Channel.open(conn, self._timeout)
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
            publisher = await _Publisher.open(conn, self._timeout)
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
                _resolve(self._closed_waiter, None)
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

    async def _get_publisher(self) -> _Publisher:
        publisher = self._publisher
        if publisher is not None and publisher.channel.is_open:
            return publisher
        async with self._channel_lock:
            conn = self._require_connection()
            if self._publisher is None or not self._publisher.channel.is_open:
                self._publisher = await _Publisher.open(conn, self._timeout)
            return self._publisher

    async def _get_admin(self) -> _Channel:
        admin = self._admin
        if admin is not None and admin.is_open:
            return admin
        async with self._channel_lock:
            conn = self._require_connection()
            if self._admin is None or not self._admin.is_open:
                self._admin = await _Channel.open(conn, self._timeout)
            return self._admin

    def _require_connection(self) -> Any:
        if self._closing or self._conn is None or not self._ready.is_set():
            raise QueueUnavailable("RabbitMQ is not connected")
        return self._conn

    async def _subscribe(self, name: str, prefetch: int) -> _ConsumerChannel | None:
        """A consuming channel on the current connection; ``None`` once closing."""
        delay = 0.5
        while not self._closing:
            if not self._ready.is_set():
                await _wait(self._ready, 0.5)
                continue
            channel: _Channel | None = None
            try:
                channel = await _Channel.open(self._conn, self._timeout)
                await channel.call(channel.pika.basic_qos, prefetch_count=prefetch)
                consumer = _ConsumerChannel(channel)
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
        by_channel: dict[_ConsumerChannel, list[int]] = {}
        for delivery in deliveries:
            tag = _tag_of(delivery)
            by_channel.setdefault(tag.channel, []).append(tag.delivery_tag)
        for consumer, tags in by_channel.items():
            consumer.settle(tags, ack=ack)


async def _next_batch(consumer: _ConsumerChannel, max_batch: int) -> list[Delivery] | None:
    """The deliveries buffered now (waiting for the first); ``None`` when the channel is gone."""
    first = await consumer.buffer.get()
    if first is None:
        return None
    batch = [first]
    while len(batch) < max_batch and not consumer.buffer.empty():
        item = consumer.buffer.get_nowait()
        if item is None:
            # Channel closed (RabbitMQ redelivers these) or consumer cancelled: requeue.
            consumer.settle([_tag_of(d).delivery_tag for d in batch], ack=False)
            return None
        batch.append(item)
    return batch


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Wait for ``event`` at most ``seconds``.

    ``asyncio.timeout``, not ``wait_for``: on Python 3.11 ``wait_for`` swallows a
    cancellation that arrives as the event is set, and the consumer would never stop.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
