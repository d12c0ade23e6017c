"""Cutting one deployment's own connections to the shared backends, as a network fault or
a backend restart would, without touching anyone else's.

Each cut finds the deployment's connections by what they announce: the RabbitMQ
``connection_name`` (``amqp_connection_name``), the Redis client names
(``cache_client_name``, ``subscriber_client_name``) and, on PostgreSQL, the database (each
test session has its own). :class:`Cutter` repeats the three cuts while a test floods a
node, and counts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass

import psycopg
import redis

from notify_core.constants import amqp_connection_name, cache_client_name, subscriber_client_name


def close_rabbitmq_connections(connection_name: str) -> int:
    """Make the broker drop the connections named ``connection_name`` (as a broker restart
    or a network cut would); answer how many."""
    listing = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "pid", "client_properties"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    marker = f'{{"connection_name","{connection_name}"}}'
    pids = [line.split("\t", 1)[0] for line in listing.stdout.splitlines() if marker in line]
    closed = 0
    for pid in pids:
        result = subprocess.run(
            ["rabbitmqctl", "-q", "close_connection", pid, "connection cut by a test"],
            capture_output=True,
            timeout=30,
            check=False,
        )
        closed += result.returncode == 0  # it may have closed by itself in between
    return closed


def terminate_postgres_backends(admin_url: str, database: str) -> int:
    """``pg_terminate_backend`` every connection to ``database`` but our own; answer how
    many. ``admin_url`` is a libpq URL of another database on the same server."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return sum(1 for (done,) in rows if done)


def kill_redis_clients(redis_url: str, names: frozenset[str]) -> int:
    """``CLIENT KILL`` the clients whose name is one of ``names``; answer how many."""
    admin = redis.Redis.from_url(redis_url)
    try:
        killed = 0
        for client in admin.client_list():
            if client.get("name") in names:
                killed += int(admin.client_kill_filter(_id=client["id"]))
        return killed
    finally:
        admin.close()


@dataclass
class Cuts:
    """How many times each backend's connections were cut (at least one connection each)."""

    rounds: int = 0
    rabbitmq: int = 0
    postgres: int = 0
    redis: int = 0

    def __str__(self) -> str:
        return (
            f"{self.rounds} rounds of cuts: RabbitMQ {self.rabbitmq}, "
            f"PostgreSQL {self.postgres}, Redis {self.redis}"
        )


@dataclass(frozen=True)
class Cutter:
    """Cuts one deployment's connections at once, then ``interval`` seconds after each
    round, while it runs.

    ``postgres`` is ``(admin_url, database)``; ``namespace`` names the deployment's RabbitMQ
    and Redis clients.
    """

    namespace: str
    postgres: tuple[str, str]
    redis_url: str
    interval: float = 1.5

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Cuts]:
        """Cut until the block ends (the round under way finishes first)."""
        cuts = Cuts()
        stop = asyncio.Event()
        task = asyncio.create_task(self._loop(cuts, stop))
        try:
            yield cuts
        finally:
            stop.set()
            await task

    async def _loop(self, cuts: Cuts, stop: asyncio.Event) -> None:
        names = frozenset(
            {cache_client_name(self.namespace), subscriber_client_name(self.namespace)}
        )
        while not stop.is_set():
            rabbitmq, postgres, redis_clients = await asyncio.gather(
                asyncio.to_thread(close_rabbitmq_connections, amqp_connection_name(self.namespace)),
                asyncio.to_thread(terminate_postgres_backends, *self.postgres),
                asyncio.to_thread(kill_redis_clients, self.redis_url, names),
            )
            cuts.rounds += 1
            cuts.rabbitmq += rabbitmq > 0
            cuts.postgres += postgres > 0
            cuts.redis += redis_clients > 0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
