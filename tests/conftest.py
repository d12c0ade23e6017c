"""Shared fixtures: the real backends (PostgreSQL, Redis, RabbitMQ) and test namespaces.

Tests that need a real backend ask for its fixture. When the backend is not reachable the
test is skipped with a message, unless ``NOTIFY_TEST_REQUIRE_REAL=1`` (CI sets it), in
which case it fails.

Override where they are with ``NOTIFY_TEST_POSTGRES_URL`` (an admin URL; each test session
creates and drops its own database), ``NOTIFY_TEST_REDIS_URL`` and ``NOTIFY_TEST_AMQP_URL``.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterable, Iterator
from urllib.parse import urlsplit

import pytest

from notify_core.constants import QUEUE_HOLD_STEPS, QUEUES, hold_queue_name, queue_name
from tests.support.backends import (
    AMQP_URL,
    NAMESPACE_PREFIX,
    POSTGRES_ADMIN_URL,
    REDIS_URL,
    REQUIRE_REAL,
)

pytest_plugins = [
    "tests.support.smtp",
    "tests.support.sendgrid",
    "tests.support.webhooks",
    "tests.support.ses",
    "tests.support.sns",
    "tests.support.apns",
    "tests.support.webpush",
    "tests.support.fcm",
    "tests.support.twilio",
]
"""The protocol fakes' fixtures (``smtp``, ``sendgrid``, ``receiver``, ``moto_url``,
``sns``, ``apns``, ``apns_key``, ``push_service``, ``fcm``, ``fcm_service_account``,
``twilio``), for every test that asks for one."""


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 1
        ):
            return True
    except OSError:
        return False


def _need(name: str, url: str, port: int) -> None:
    if _reachable(url, port):
        return
    message = f"{name} is not reachable at {url}"
    if REQUIRE_REAL:
        pytest.fail(message + " (NOTIFY_TEST_REQUIRE_REAL=1)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test session (dropped afterwards)."""
    _need("PostgreSQL", POSTGRES_ADMIN_URL, 5432)
    import psycopg

    name = f"notify_test_{uuid.uuid4().hex[:10]}"
    admin = POSTGRES_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url() -> str:
    _need("Redis", REDIS_URL, 6379)
    return REDIS_URL


@pytest.fixture(scope="session")
def amqp_url() -> str:
    _need("RabbitMQ", AMQP_URL, 5672)
    return AMQP_URL


_ISSUED: list[str] = []
"""The namespaces handed out in this session."""
_ON_BROKER: list[str] = []
"""Those of them whose test used RabbitMQ."""


def _own_namespace(request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace no other test uses, deleted when its fixture ends (the session checks
    at its end that none is left)."""
    name = f"{NAMESPACE_PREFIX}{uuid.uuid4().hex[:8]}"
    _ISSUED.append(name)
    yield name
    used = request.fixturenames
    # A failure here is caught again, loudly, by the session's own check at its end.
    with contextlib.suppress(Exception):
        if "redis_url" in used:
            _delete_redis_keys(f"{name}*")
    with contextlib.suppress(Exception):
        if "amqp_url" in used:
            _ON_BROKER.append(name)
            _delete_broker_objects(*_broker_objects(name))


@pytest.fixture
def namespace(request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace no other test uses: queues and Redis keys of this test only, deleted
    when the test ends (the session checks at its end that none is left)."""
    yield from _own_namespace(request)


@pytest.fixture(scope="module")
def module_namespace(request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace shared by one module's tests (a mesh of processes they all use), deleted
    when the module's tests are done."""
    yield from _own_namespace(request)


def _broker_objects(namespace: str) -> tuple[list[str], list[str]]:
    """The queues and exchanges a WorkQueue of ``namespace`` declares."""
    holds = [hold_queue_name(namespace, step) for step in QUEUE_HOLD_STEPS]
    return [queue_name(namespace, q) for q in QUEUES] + holds, holds


def _redis_keys(pattern: str) -> list[bytes]:
    import redis

    with redis.Redis.from_url(REDIS_URL) as client:
        return list(client.scan_iter(match=pattern, count=1_000))


def _delete_redis_keys(pattern: str) -> None:
    import redis

    keys = _redis_keys(pattern)
    with redis.Redis.from_url(REDIS_URL) as client:
        for start in range(0, len(keys), 500):
            client.unlink(*keys[start : start + 500])


def _delete_broker_objects(queues: Iterable[str], exchanges: Iterable[str]) -> None:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        channel = connection.channel()
        for queue in queues:
            channel.queue_delete(queue=queue)
        for exchange in exchanges:
            channel.exchange_delete(exchange=exchange)
    finally:
        connection.close()


def _vhost() -> str:
    import pika

    return str(pika.URLParameters(AMQP_URL).virtual_host)


def _listed(kind: str) -> list[str] | None:
    """This session's queues or exchanges in the vhost of NOTIFY_TEST_AMQP_URL, as
    ``rabbitmqctl`` lists them; None where rabbitmqctl cannot be used."""
    if shutil.which("rabbitmqctl") is None:
        return None
    command = ["rabbitmqctl", "-q", "--no-table-headers", f"list_{kind}", "-p", _vhost(), "name"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return [n.strip() for n in done.stdout.splitlines() if n.strip().startswith(NAMESPACE_PREFIX)]


def _declared(queues: Iterable[str]) -> list[str]:
    """Which of ``queues`` exist (passive declares: no management access needed)."""
    import pika

    existing = []
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        for queue in queues:
            channel = connection.channel()
            try:
                channel.queue_declare(queue=queue, passive=True)
                existing.append(queue)
                channel.close()
            except pika.exceptions.ChannelClosedByBroker:
                pass  # 404: it does not exist (and the broker closed the channel)
    finally:
        connection.close()
    return existing


def _broker_leftovers() -> list[str]:
    """Delete what this session left in RabbitMQ; return what could not be deleted."""
    queues, exchanges = _listed("queues"), _listed("exchanges")
    if queues is None or exchanges is None:  # no rabbitmqctl: look for the tracked names
        tracked = [_broker_objects(namespace) for namespace in _ON_BROKER]
        left = _declared(q for queues, _ in tracked for q in queues)
        _delete_broker_objects(left, [name for name in left if ".hold." in name])
        return _declared(left)
    _delete_broker_objects(queues, exchanges)
    return [*(_listed("queues") or []), *(_listed("exchanges") or [])]


@pytest.fixture(scope="session", autouse=True)
def _leave_nothing_behind() -> Iterator[None]:
    """At the end of the session, delete every Redis key and RabbitMQ queue and exchange
    of its namespaces (in the vhost of NOTIFY_TEST_AMQP_URL), then fail the run if any
    is left: repeated runs must not pile them up."""
    yield
    if not _ISSUED:
        return
    left: list[str] = []
    if _reachable(REDIS_URL, 6379):
        _delete_redis_keys(f"{NAMESPACE_PREFIX}*")
        left += [f"Redis key {k.decode()}" for k in _redis_keys(f"{NAMESPACE_PREFIX}*")]
    if _reachable(AMQP_URL, 5672):
        left += [f"RabbitMQ {name}" for name in _broker_leftovers()]
    assert not left, f"the test session left {len(left)} objects behind: {left[:10]}"
