"""The WorkQueue contract (``notify_core/queue/base.py``), run against every backend.

Each behaviour is checked on the database queue over SQLite and over PostgreSQL, and on
RabbitMQ; a few tests cover what only one kind of backend has (leases, reconnection).
Every wait is bounded, so a broken queue fails a test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pika
import pytest
import sqlalchemy as sa

from notify_core.constants import (
    PRIORITY_HIGH,
    PRIORITY_LOW,
    PRIORITY_NORMAL,
    QUEUE_ROUTE,
    amqp_connection_name,
    queue_name,
)
from notify_core.db.engine import Database
from notify_core.db.migrate import upgrade
from notify_core.db.schema import outbox
from notify_core.errors import QueueUnavailable
from notify_core.queue.base import Delivery, Message, WorkQueue
from notify_core.queue.database import DatabaseQueue
from notify_core.queue.rabbitmq import RabbitMQQueue
from tests.support.cuts import close_rabbitmq_connections
from tests.support.waiting import eventually

QUEUE = QUEUE_ROUTE
OTHER = "contract-other"
QUEUES = (QUEUE, OTHER)
WAIT = 10.0
"""Longest wait for something that should happen."""
QUIET = 0.5
"""How long we watch for something that should not happen."""
SWEEP_AFTER = 0.3
"""The RabbitMQ outbox sweeps rows this old (short, so lost hand-overs show quickly)."""
REPO = Path(__file__).resolve().parents[2]


class Backend:
    """Builds started queue objects of one backend and closes them at teardown."""

    def __init__(
        self, kind: str, factory: Callable[..., WorkQueue], url: str, database: Database
    ) -> None:
        self.kind = kind
        self.url = url
        self.database = database
        """The service database: ``stage`` writes in its transactions."""
        self._factory = factory
        self._opened: list[WorkQueue] = []

    async def open(self, **options: Any) -> WorkQueue:
        queue = self._factory(**options)
        await asyncio.wait_for(queue.start(), WAIT)
        self._opened.append(queue)
        return queue

    async def close_all(self) -> None:
        for queue in reversed(self._opened):
            await asyncio.wait_for(queue.close(), WAIT)


class Collector:
    """Runs one ``consume()`` iterator in a task and keeps what it yields."""

    def __init__(self, queue: WorkQueue, name: str = QUEUE, *, ack: bool = False, **kw: int):
        self.queue = queue
        self.batches: list[list[Delivery]] = []
        self._ack = ack
        self._arrived = asyncio.Event()
        self.task = asyncio.create_task(self._run(queue.consume(name, **kw)))

    async def _run(self, deliveries: AsyncIterator[list[Delivery]]) -> None:
        async for batch in deliveries:
            assert len(batch) >= 1
            self.batches.append(batch)
            self._arrived.set()
            if self._ack:
                await self.queue.ack(batch)

    @property
    def deliveries(self) -> list[Delivery]:
        return [d for batch in self.batches for d in batch]

    async def wait_for(self, count: int, within: float = WAIT) -> list[Delivery]:
        """Wait until at least ``count`` deliveries arrived; return all of them."""

        async def until() -> None:
            while len(self.deliveries) < count:
                if self.task.done():
                    self.task.result()
                    raise AssertionError("the consumer stopped")
                self._arrived.clear()
                await self._arrived.wait()

        await asyncio.wait_for(until(), within)
        return self.deliveries

    async def stop(self) -> None:
        self.task.cancel()
        done, _ = await asyncio.wait({self.task}, timeout=WAIT)
        assert done, "the consumer ignored its cancellation"
        if not self.task.cancelled():
            self.task.result()


def bodies(deliveries: list[Delivery]) -> list[bytes]:
    return [d.body for d in deliveries]


# -- backends ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def migrated_postgres_url(postgres_url: str) -> str:
    upgrade(postgres_url)
    return postgres_url


async def _backend(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, namespace: str
) -> AsyncIterator[Backend]:
    if kind == "rabbitmq":
        amqp_url: str = request.getfixturevalue("amqp_url")
        database = Database(request.getfixturevalue("migrated_postgres_url"))

        def rabbit(**kw: Any) -> WorkQueue:
            options = {"database": database, "sweep_after": SWEEP_AFTER, **kw}
            return RabbitMQQueue(amqp_url, namespace, QUEUES, **options)

        backend = Backend(kind, rabbit, amqp_url, database)
        try:
            yield backend
        finally:
            await backend.close_all()
            await asyncio.to_thread(_delete_amqp_queues, amqp_url, namespace)
            async with database.write() as conn:
                await conn.execute(outbox.delete().where(outbox.c.queue.like(f"{namespace}%")))
            await database.close()
        return
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'queue.db'}"
        await asyncio.to_thread(upgrade, url)
    else:
        url = request.getfixturevalue("migrated_postgres_url")
    database = Database(url)
    backend = Backend(
        kind, lambda **kw: DatabaseQueue(database, namespace, QUEUES, **kw), url, database
    )
    try:
        yield backend
    finally:
        await backend.close_all()
        await database.close()


def _delete_amqp_queues(amqp_url: str, namespace: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        for queue in QUEUES:
            channel.queue_delete(queue_name(namespace, queue))
    finally:
        connection.close()


@pytest.fixture(params=["sqlite", "postgres", "rabbitmq"])
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path, namespace: str
) -> AsyncIterator[Backend]:
    async for value in _backend(request.param, request, tmp_path, namespace):
        yield value


@pytest.fixture(params=["sqlite", "postgres"])
async def db_backend(
    request: pytest.FixtureRequest, tmp_path: Path, namespace: str
) -> AsyncIterator[Backend]:
    async for value in _backend(request.param, request, tmp_path, namespace):
        yield value


@pytest.fixture
async def rabbit_backend(
    request: pytest.FixtureRequest, tmp_path: Path, namespace: str
) -> AsyncIterator[Backend]:
    async for value in _backend("rabbitmq", request, tmp_path, namespace):
        yield value


# -- the contract -----------------------------------------------------------------------


async def test_published_message_is_consumed_with_its_body_priority_and_id(backend: Backend):
    queue = await backend.open()
    await queue.publish(QUEUE, [Message(b"hello", PRIORITY_HIGH, message_id="m-1")])

    collector = Collector(queue)
    [delivery] = await collector.wait_for(1)

    assert delivery.body == b"hello"
    assert delivery.priority == PRIORITY_HIGH
    assert delivery.message_id == "m-1"
    assert delivery.redelivered is False
    await queue.ack([delivery])
    await collector.stop()


async def test_a_delayed_message_waits_its_delay_then_arrives_with_its_priority(
    backend: Backend,
):
    queue = await backend.open()
    started = time.monotonic()
    await queue.publish(QUEUE, [Message(b"later", PRIORITY_HIGH, message_id="d-1")], delay=0.8)
    await queue.publish(QUEUE, [Message(b"now")])
    collector = Collector(queue)
    first = await collector.wait_for(1)
    assert bodies(first) == [b"now"]
    both = await collector.wait_for(2, within=10.0)
    waited = time.monotonic() - started
    assert bodies(both) == [b"now", b"later"]
    assert both[1].priority == PRIORITY_HIGH and both[1].message_id == "d-1"
    assert waited >= 0.8
    await queue.ack(both)
    await collector.stop()


async def test_waiting_messages_are_delivered_high_then_normal_then_low(backend: Backend):
    queue = await backend.open()
    for priority in (PRIORITY_LOW, PRIORITY_NORMAL, PRIORITY_HIGH):
        await queue.publish(QUEUE, [Message(b"%d-%d" % (priority, i), priority) for i in range(3)])

    collector = Collector(queue, prefetch=20)
    received = await collector.wait_for(9)

    assert [d.priority for d in received] == [2, 2, 2, 1, 1, 1, 0, 0, 0]
    assert all(d.body.startswith(b"%d-" % d.priority) for d in received)
    await queue.ack(received)
    await collector.stop()


async def test_prefetch_bounds_the_deliveries_not_yet_acked(backend: Backend):
    queue = await backend.open()
    await queue.publish(QUEUE, [Message(b"%d" % i) for i in range(20)])

    collector = Collector(queue, prefetch=5, max_batch=100)
    first = await collector.wait_for(5)
    await asyncio.sleep(QUIET)
    assert len(collector.deliveries) == 5

    await queue.ack(first)
    await collector.wait_for(10)
    await asyncio.sleep(QUIET)
    assert len(collector.deliveries) == 10

    await queue.ack(collector.deliveries[5:])
    await collector.wait_for(15)
    await queue.ack(collector.deliveries[10:])
    received = await collector.wait_for(20)
    await queue.ack(received[15:])
    assert sorted(bodies(received)) == sorted(b"%d" % i for i in range(20))
    await collector.stop()


async def test_unacked_deliveries_come_back_after_the_consumer_closes(backend: Backend):
    first_queue = await backend.open()
    await first_queue.publish(QUEUE, [Message(b"a"), Message(b"b"), Message(b"c")])
    first = Collector(first_queue)
    assert sorted(bodies(await first.wait_for(3))) == [b"a", b"b", b"c"]

    await first_queue.close()
    await asyncio.wait_for(first.task, WAIT)  # close() ends the iterator

    second_queue = await backend.open()
    second = Collector(second_queue)
    again = await second.wait_for(3)
    assert sorted(bodies(again)) == [b"a", b"b", b"c"]
    assert all(d.redelivered for d in again)
    await second_queue.ack(again)
    await second.stop()


async def test_nacked_delivery_is_delivered_again(backend: Backend):
    queue = await backend.open()
    await queue.publish(QUEUE, [Message(b"retry me")])
    collector = Collector(queue)
    [delivery] = await collector.wait_for(1)

    await queue.nack([delivery])
    _, again = await collector.wait_for(2)

    assert again.body == b"retry me"
    assert again.redelivered is True
    await queue.ack([again])
    await collector.stop()


async def test_acked_delivery_is_gone_for_good(backend: Backend):
    queue = await backend.open()
    await queue.publish(QUEUE, [Message(b"once")])
    collector = Collector(queue)
    [delivery] = await collector.wait_for(1)

    await queue.ack([delivery])
    await asyncio.sleep(QUIET)
    assert len(collector.deliveries) == 1
    await eventually(lambda: queue.depth(QUEUE), lambda n: n == 0, WAIT)
    await queue.close()

    reopened = await backend.open()
    fresh = Collector(reopened)
    await asyncio.sleep(QUIET)
    assert fresh.deliveries == []
    assert await reopened.depth(QUEUE) == 0
    await fresh.stop()


async def test_deliveries_can_be_acked_after_their_iterator_is_closed(backend: Backend):
    queue = await backend.open()
    await queue.publish(QUEUE, [Message(b"first"), Message(b"second"), Message(b"third")])
    deliveries = queue.consume(QUEUE, prefetch=10, max_batch=1)
    [first] = await asyncio.wait_for(anext(deliveries), WAIT)
    await asyncio.wait_for(deliveries.aclose(), WAIT)  # type: ignore[attr-defined]

    await queue.ack([first])
    await eventually(lambda: queue.depth(QUEUE), lambda n: n == 2, WAIT)

    collector = Collector(queue, ack=True)
    await collector.wait_for(2)
    await asyncio.sleep(QUIET)
    assert len(collector.deliveries) == 2
    assert sorted([first.body, *bodies(collector.deliveries)]) == [b"first", b"second", b"third"]
    await collector.stop()


async def test_a_thousand_messages_published_in_one_call_arrive_exactly_once(backend: Backend):
    queue = await backend.open()
    expected = [b"%04d" % i for i in range(1000)]
    await asyncio.wait_for(queue.publish(QUEUE, [Message(b) for b in expected]), WAIT)

    collector = Collector(queue, ack=True, prefetch=200, max_batch=100)
    await collector.wait_for(1000, within=30)
    await asyncio.sleep(QUIET)

    assert sorted(bodies(collector.deliveries)) == expected
    assert all(len(batch) <= 100 for batch in collector.batches)
    await eventually(lambda: queue.depth(QUEUE), lambda n: n == 0, WAIT)
    await collector.stop()


async def test_two_consumers_on_one_queue_never_receive_the_same_message(backend: Backend):
    one, two = await backend.open(), await backend.open()
    first = Collector(one, ack=True, prefetch=10, max_batch=5)
    second = Collector(two, ack=True, prefetch=10, max_batch=5)
    expected = [b"%03d" % i for i in range(300)]
    for start in range(0, 300, 50):
        await one.publish(QUEUE, [Message(b) for b in expected[start : start + 50]])

    async def delivered() -> int:
        return len(first.deliveries) + len(second.deliveries)

    await eventually(delivered, lambda n: n == 300, 30)
    await asyncio.sleep(QUIET)

    got_one, got_two = set(bodies(first.deliveries)), set(bodies(second.deliveries))
    assert len(first.deliveries) + len(second.deliveries) == 300
    assert not got_one & got_two
    assert sorted(got_one | got_two) == expected
    assert got_one and got_two, "both consumers took part"
    await first.stop()
    await second.stop()


async def test_depth_counts_only_ready_messages(backend: Backend):
    queue = await backend.open()
    assert await queue.depth(QUEUE) == 0
    await queue.publish(QUEUE, [Message(b"%d" % i) for i in range(5)])
    await queue.publish(OTHER, [Message(b"elsewhere")])
    assert await queue.depth(QUEUE) == 5
    assert await queue.depth(OTHER) == 1

    collector = Collector(queue, prefetch=2)
    taken = await collector.wait_for(2)
    await eventually(lambda: queue.depth(QUEUE), lambda n: n == 3, WAIT)

    await queue.nack(taken)
    # given back, taken again by prefetch
    await eventually(lambda: queue.depth(QUEUE), lambda n: n == 3, WAIT)
    await collector.stop()


async def test_purge_drops_every_waiting_message(backend: Backend):
    queue = await backend.open()
    await queue.publish(QUEUE, [Message(b"%d" % i) for i in range(10)])
    await queue.publish(OTHER, [Message(b"kept")])

    await queue.purge(QUEUE)

    assert await queue.depth(QUEUE) == 0
    assert await queue.depth(OTHER) == 1
    collector = Collector(queue)
    await asyncio.sleep(QUIET)
    assert collector.deliveries == []
    await collector.stop()


# -- staging in the caller's transaction (the outbox) -----------------------------------


async def _stage(backend: Backend, queue: WorkQueue, *messages: Message, **kw: Any) -> Any:
    """Stage ``messages`` in a transaction of the service database and commit it."""
    async with backend.database.write() as conn:
        return await queue.stage(conn, QUEUE, list(messages), **kw)


async def test_staged_messages_are_delivered_once_the_transaction_commits(backend: Backend):
    queue = await backend.open()
    staged = await _stage(backend, queue, Message(b"a", PRIORITY_HIGH, "s-1"), Message(b"b"))
    queue.flush([staged])

    collector = Collector(queue)
    received = await collector.wait_for(2)
    assert sorted(bodies(received)) == [b"a", b"b"]
    assert {d.message_id for d in received} == {"s-1", None}
    assert [d.priority for d in received if d.body == b"a"] == [PRIORITY_HIGH]
    await queue.ack(received)
    await collector.stop()


async def test_messages_staged_in_a_rolled_back_transaction_are_never_delivered(
    backend: Backend,
):
    queue = await backend.open()

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with backend.database.write() as conn:
            await queue.stage(conn, QUEUE, [Message(b"rolled back")])
            raise Abort
    queue.flush([])
    await queue.publish(QUEUE, [Message(b"marker")])

    collector = Collector(queue)
    await collector.wait_for(1)
    await asyncio.sleep(QUIET + SWEEP_AFTER)
    assert bodies(collector.deliveries) == [b"marker"]
    await queue.ack(collector.deliveries)
    await collector.stop()


async def test_a_message_staged_by_a_process_that_died_before_flushing_is_delivered(
    backend: Backend,
):
    dying = await backend.open()
    await _stage(backend, dying, Message(b"orphan", message_id="o-1"))
    # No flush: the process dies between its commit and its hand-over to the relay.
    await dying.close()

    survivor = await backend.open()
    collector = Collector(survivor)
    [delivery] = await collector.wait_for(1, within=WAIT + SWEEP_AFTER)
    assert (delivery.body, delivery.message_id) == (b"orphan", "o-1")
    await survivor.ack([delivery])
    await collector.stop()


async def test_a_staged_delay_is_kept(backend: Backend):
    queue = await backend.open()
    started = time.monotonic()
    queue.flush([await _stage(backend, queue, Message(b"later"), delay=0.8)])
    queue.flush([await _stage(backend, queue, Message(b"now"))])
    collector = Collector(queue)
    assert bodies(await collector.wait_for(1)) == [b"now"]
    both = await collector.wait_for(2)
    assert bodies(both) == [b"now", b"later"]
    assert time.monotonic() - started >= 0.8
    await queue.ack(both)
    await collector.stop()


# -- RabbitMQ only ----------------------------------------------------------------------


async def test_rabbitmq_unreachable_raises_queue_unavailable(namespace: str):
    queue = RabbitMQQueue("amqp://guest:guest@127.0.0.1:1/", namespace, QUEUES)
    with pytest.raises(QueueUnavailable):
        await asyncio.wait_for(queue.start(), WAIT)
    with pytest.raises(QueueUnavailable):
        await asyncio.wait_for(queue.publish(QUEUE, [Message(b"lost")]), WAIT)
    await queue.close()


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl")
async def test_rabbitmq_consumer_resumes_after_the_connection_is_lost(
    rabbit_backend: Backend, namespace: str
):
    queue = await rabbit_backend.open()
    await queue.publish(QUEUE, [Message(b"survives")])
    collector = Collector(queue)
    [before] = await collector.wait_for(1)

    closed = await asyncio.to_thread(close_rabbitmq_connections, amqp_connection_name(namespace))
    assert closed == 1

    _, after = await collector.wait_for(2, within=30)  # same iterator, new connection
    assert after.body == b"survives"
    assert after.redelivered is True
    await queue.ack([before])  # a delivery of the dead channel: dropped, not an error
    await queue.ack([after])

    async def publish_again() -> None:
        while True:
            try:
                await queue.publish(QUEUE, [Message(b"later")])
                return
            except QueueUnavailable:
                await asyncio.sleep(0.1)

    await asyncio.wait_for(publish_again(), WAIT)
    _, _, later = await collector.wait_for(3)
    assert later.body == b"later"
    await queue.ack([later])
    await eventually(lambda: queue.depth(QUEUE), lambda n: n == 0, WAIT)
    await collector.stop()


# -- database only ----------------------------------------------------------------------

_CHILD = """
import asyncio, sys
from notify_core.db.engine import Database
from notify_core.queue.database import DatabaseQueue

async def main():
    url, namespace, name = sys.argv[1:4]
    queue = DatabaseQueue(Database(url), namespace, [name], visibility_timeout=0.5)
    await queue.start()
    async for batch in queue.consume(name, prefetch=1):
        print(batch[0].body.decode(), flush=True)
        await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_lease_is_extended_while_held_and_expires_when_the_holder_dies(
    db_backend: Backend, namespace: str
):
    queue = await db_backend.open(visibility_timeout=0.5)
    await queue.publish(QUEUE, [Message(b"job")])
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CHILD,
        db_backend.url,
        namespace,
        QUEUE,
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), 30)
        assert line.strip() == b"job"

        collector = Collector(queue)
        await asyncio.sleep(1.5)  # three lease lengths: the child's heartbeat keeps it
        assert collector.deliveries == []
    finally:
        child.kill()
        await child.wait()

    [delivery] = await collector.wait_for(1, within=5)
    assert delivery.body == b"job"
    assert delivery.redelivered is True
    await queue.ack([delivery])
    await collector.stop()


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl")
async def test_rabbitmq_staged_while_the_connection_is_down_is_published_after_it_returns(
    rabbit_backend: Backend, namespace: str
):
    queue = await rabbit_backend.open()
    closed = await asyncio.to_thread(close_rabbitmq_connections, amqp_connection_name(namespace))
    assert closed == 1
    # The hand-over finds no connection; the row waits in the outbox for the sweep.
    queue.flush([await _stage(rabbit_backend, queue, Message(b"kept", message_id="k-1"))])

    collector = Collector(queue)
    [delivery] = await collector.wait_for(1, within=30)
    assert (delivery.body, delivery.message_id) == (b"kept", "k-1")
    await queue.ack([delivery])
    await collector.stop()

    async def left() -> int:
        async with rabbit_backend.database.read() as conn:
            count = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(outbox)
                .where(outbox.c.queue == queue_name(namespace, QUEUE))
            )
        return int(count or 0)

    await eventually(left, lambda n: n == 0, WAIT)
