"""A running node per test, on the embedded backends and on the real ones.

``node`` is parametrised: ``embedded`` (SQLite file, queue in the database, in-memory
cache and pub/sub) and ``real`` (PostgreSQL, RabbitMQ, Redis; skipped or failed per the
rules in tests/conftest.py).

The grouping window is the default (an hour): sends without a ``group_key`` never merge,
so tests that send many notifications of one type to one user get as many entries.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from notify_app.settings import NodeSettings
from tests.support.nodes import Env, embedded_settings, real_settings, running


@pytest.fixture(params=["embedded", "real"])
def settings(request: pytest.FixtureRequest, tmp_path: Path, namespace: str) -> NodeSettings:
    if request.param == "embedded":
        return embedded_settings(tmp_path)
    return real_settings(
        request.getfixturevalue("postgres_url"),
        request.getfixturevalue("redis_url"),
        request.getfixturevalue("amqp_url"),
        namespace,
    )


@pytest.fixture
async def env(settings: NodeSettings) -> AsyncIterator[Env]:
    async with running(settings) as e:
        yield e
