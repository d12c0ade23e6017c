"""Shared fixtures: the real backends (PostgreSQL, Redis, RabbitMQ) and test namespaces.

Tests that need a real backend ask for its fixture. When the backend is not reachable the
test is skipped with a message, unless ``NOTIFY_TEST_REQUIRE_REAL=1`` (CI sets it), in
which case it fails.

Override where they are with ``NOTIFY_TEST_POSTGRES_URL`` (an admin URL; each test session
creates and drops its own database), ``NOTIFY_TEST_REDIS_URL`` and ``NOTIFY_TEST_AMQP_URL``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

POSTGRES_ADMIN_URL = os.environ.get(
    "NOTIFY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("NOTIFY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("NOTIFY_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
REQUIRE_REAL = os.environ.get("NOTIFY_TEST_REQUIRE_REAL") == "1"


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


_NAMESPACE_PREFIX = f"t{uuid.uuid4().hex[:4]}"
"""Every namespace of this session starts with it, so the session can clean up after itself."""


@pytest.fixture
def namespace() -> str:
    """A namespace no other test uses: queues and Redis keys of this test only."""
    return f"{_NAMESPACE_PREFIX}{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session", autouse=True)
def _drop_broker_objects() -> Iterator[None]:
    """At the end of the session, delete the RabbitMQ queues and exchanges its namespaces
    declared (work queues, hold queues), so that repeated runs do not pile them up."""
    yield
    if not _reachable(AMQP_URL, 5672) or shutil.which("rabbitmqctl") is None:
        return
    import pika

    def names(kind: str) -> list[str]:
        out = subprocess.run(
            ["rabbitmqctl", "-q", "--no-table-headers", f"list_{kind}", "name"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        ).stdout
        return [n.strip() for n in out.splitlines() if n.strip().startswith(_NAMESPACE_PREFIX)]

    with contextlib.suppress(Exception):
        queues, exchanges = names("queues"), names("exchanges")
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        try:
            channel = connection.channel()
            for queue in queues:
                channel.queue_delete(queue=queue)
            for exchange in exchanges:
                channel.exchange_delete(exchange=exchange)
        finally:
            connection.close()
