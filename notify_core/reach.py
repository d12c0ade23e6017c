"""The start-up check that every configured backend answers.

``notify up``, ``serve`` and the commands that use the database call :func:`check_backends`
first, so that an unreachable database, Redis or RabbitMQ is one line naming its variable
(``NOTIFY_DATABASE_URL: cannot connect to postgresql+psycopg://u:***@db:5432/n
(connection refused)``) rather than a traceback from deep inside a library.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from itertools import islice
from urllib.parse import urlsplit

import pika
import redis.asyncio as aioredis

from notify_core.config import Settings
from notify_core.db.engine import Database
from notify_core.errors import BackendUnreachable
from notify_core.redact import MASK, redact, redact_url

Probe = Callable[[str, float], Awaitable[None]]

_PHRASES = (
    ("connection refused", "connection refused"),
    ("password authentication failed", "authentication failed"),
    ("access_refused", "authentication failed"),
    ("invalid username-password", "authentication failed"),
    ("wrongpass", "authentication failed"),
    ("noauth", "authentication required"),
    ("name or service not known", "unknown host"),
    ("could not translate host name", "unknown host"),
    ("temporary failure in name resolution", "unknown host"),
    ("no route to host", "no route to host"),
    ("network is unreachable", "network unreachable"),
)


async def _database(url: str, timeout: float) -> None:
    db = Database(url, pool_size=1)
    try:
        await db.ping()
    finally:
        await db.close()


async def _redis(url: str, timeout: float) -> None:
    # One bare RESP2 connection, as the pub/sub subscribers open (stricter about AUTH than
    # the RESP3 handshake), then PING.
    pool = aioredis.ConnectionPool.from_url(
        url, protocol=2, socket_connect_timeout=timeout, socket_timeout=timeout
    )
    conn = pool.make_connection()  # type: ignore[no-untyped-call]
    try:
        await conn.connect()
        await conn.send_command("PING")
        await conn.read_response()
    finally:
        await conn.disconnect()
        await pool.aclose()


def _rabbitmq_blocking(url: str, timeout: float) -> None:
    params = pika.URLParameters(url)
    params.socket_timeout = params.stack_timeout = timeout
    params.connection_attempts = 1
    pika.BlockingConnection(params).close()


async def _rabbitmq(url: str, timeout: float) -> None:
    await asyncio.to_thread(_rabbitmq_blocking, url, timeout)


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc``, its causes and contexts, and the driver errors SQLAlchemy wraps."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or any(e is s for s in seen):
            continue
        seen.append(e)
        todo += [e.__cause__, e.__context__, getattr(e, "orig", None)]
        todo.append(getattr(e, "exception", None))  # pika's connector errors
        todo += [a for a in e.args if isinstance(a, BaseException)]
    return seen


def reason(exc: BaseException, timeout: float) -> str:
    """Why a connection failed, in a few words (no password: the text is redacted)."""
    chain = _chain(exc)
    for e in chain:
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, socket.gaierror):
            return "unknown host"
        if isinstance(e, TimeoutError):
            return f"no answer within {timeout:g}s"
    text = " ".join(f"{e} {e!r}" for e in chain).lower()
    for phrase, short in _PHRASES:
        if phrase in text:
            return short
    first = next(islice((str(e) for e in reversed(chain) if str(e).strip()), 1), "")
    return redact(first.strip().splitlines()[0][:200]) if first else type(exc).__name__


async def check_backends(settings: Settings, timeout: float = 5.0) -> None:
    """Connect once to the database and, when configured, Redis and RabbitMQ;
    :class:`BackendUnreachable` naming the first that does not answer."""
    backends: list[tuple[str, str | None, Probe]] = [
        ("NOTIFY_DATABASE_URL", settings.database_url, _database),
        ("NOTIFY_REDIS_URL", settings.redis_url, _redis),
        ("NOTIFY_AMQP_URL", settings.amqp_url, _rabbitmq),
    ]
    for variable, url, probe in backends:
        if url is None:
            continue
        try:
            async with asyncio.timeout(timeout):
                await probe(url, timeout)
        except Exception as exc:
            why = reason(exc, timeout)
            password = _password(url)
            if password:
                why = why.replace(password, MASK)
            raise BackendUnreachable(
                f"{variable}: cannot connect to {redact_url(url)} ({why})"
            ) from exc


def _password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None
