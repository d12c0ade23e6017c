"""pika's asyncio adapter as futures: the connection, one channel's RPCs, the publisher's
confirms and a consumer's buffered deliveries. :mod:`notify_core.queue.rabbitmq` builds the
work queue on these; nothing here knows about queues, priorities or the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions
import pika.spec
from pika.adapters.asyncio_connection import AsyncioConnection

from notify_core.constants import PRIORITY_LOW
from notify_core.errors import QueueUnavailable
from notify_core.queue.base import Delivery, Message

log = logging.getLogger(__name__)


def unavailable(message: str, cause: BaseException | None) -> QueueUnavailable:
    error = QueueUnavailable(f"{message}: {cause!r}" if cause is not None else message)
    error.__cause__ = cause
    return error


def resolve(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def fail(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


class Connection(AsyncioConnection):  # type: ignore[misc]
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


class Channel:
    """A pika channel whose RPCs are awaitable; pending ones fail when the channel closes."""

    def __init__(self, channel: Any, rpc_timeout: float) -> None:
        self.pika = channel
        self.rpc_timeout = rpc_timeout
        self._waiters: set[asyncio.Future[Any]] = set()
        self._close_hooks: list[Callable[[BaseException], None]] = []
        channel.add_on_close_callback(self._closed)

    @classmethod
    async def open(cls, connection: Any, rpc_timeout: float) -> Channel:
        opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        try:
            channel = connection.channel(on_open_callback=lambda _ch: resolve(opened, None))
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
            method(*args, callback=lambda frame: resolve(reply, frame), **kw)
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
            fail(waiter, unavailable("RabbitMQ channel closed", reason))
        self._waiters.clear()
        for hook in self._close_hooks:
            hook(reason)


class Publisher:
    """The confirm-mode channel: publish sequence number -> future of the broker's confirm."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self._seq = 0
        self._pending: dict[int, asyncio.Future[None]] = {}
        channel.on_close(self._fail_all)

    @classmethod
    async def open(cls, connection: Any, rpc_timeout: float) -> Publisher:
        publisher = cls(await Channel.open(connection, rpc_timeout))
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
                fail(future, QueueUnavailable("RabbitMQ refused (nacked) a published message"))
            else:
                resolve(future, None)

    def _fail_all(self, reason: BaseException) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            fail(future, unavailable("publisher channel closed before confirming", reason))


@dataclass(frozen=True, slots=True, eq=False)
class Tag:
    """A delivery's identity: the consumer channel it came on and its tag there."""

    channel: ConsumerChannel
    delivery_tag: int


def tag_of(delivery: Delivery) -> Tag:
    if not isinstance(delivery.tag, Tag):
        raise TypeError(f"not a RabbitMQQueue delivery: tag {delivery.tag!r}")
    return delivery.tag


class ConsumerChannel:
    """A channel with one consumer: its buffer (``None`` = channel gone) and unsettled tags."""

    def __init__(self, channel: Channel) -> None:
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
                tag=Tag(self, tag),
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
                unseen.append(tag_of(item).delivery_tag)
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


async def next_batch(consumer: ConsumerChannel, max_batch: int) -> list[Delivery] | None:
    """The deliveries buffered now (waiting for the first); ``None`` when the channel is gone."""
    first = await consumer.buffer.get()
    if first is None:
        return None
    batch = [first]
    while len(batch) < max_batch and not consumer.buffer.empty():
        item = consumer.buffer.get_nowait()
        if item is None:
            # Channel closed (RabbitMQ redelivers these) or consumer cancelled: requeue.
            consumer.settle([tag_of(d).delivery_tag for d in batch], ack=False)
            return None
        batch.append(item)
    return batch
