"""Where the real backends are (``NOTIFY_TEST_*``; see tests/conftest.py), and the prefix
of every namespace this test session hands out."""

from __future__ import annotations

import os
import uuid

POSTGRES_ADMIN_URL = os.environ.get(
    "NOTIFY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("NOTIFY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("NOTIFY_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
REQUIRE_REAL = os.environ.get("NOTIFY_TEST_REQUIRE_REAL") == "1"

NAMESPACE_PREFIX = f"t{uuid.uuid4().hex[:4]}"
"""Every namespace of this session starts with it, so the session can clean up after itself."""
