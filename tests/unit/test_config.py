"""Configuration: defaults, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from notify_core.config import load_settings
from notify_core.errors import ConfigError


def test_defaults_are_embedded() -> None:
    s = load_settings({}, env_file=None)
    assert s.database_url == "sqlite:///notify.db"
    assert s.redis_url is None and s.amqp_url is None
    assert (s.http_port, s.grpc_port) == (8080, 50051)
    assert s.api_keys == frozenset() and s.jwt_secret is None


def test_values_are_read() -> None:
    s = load_settings(
        {
            "NOTIFY_DATABASE_URL": "postgresql://u@h/db",
            "NOTIFY_REDIS_URL": "redis://h:1/0",
            "NOTIFY_AMQP_URL": "amqp://g:g@h/",
            "NOTIFY_HTTP_PORT": "9000",
            "NOTIFY_API_KEYS": "key-one-123, key-two-456",
            "NOTIFY_JWT_SECRET": "x" * 20,
        },
        env_file=None,
    )
    assert s.database_url == "postgresql+psycopg://u@h/db"
    assert s.http_port == 9000
    assert s.api_keys == {"key-one-123", "key-two-456"}


def test_the_send_lease_is_a_minute_unless_set() -> None:
    assert load_settings({}, env_file=None).send_lease == 60.0
    assert load_settings({"NOTIFY_SEND_LEASE": "5"}, env_file=None).send_lease == 5.0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NOTIFY_HTTP_PORT", "eighty"),
        ("NOTIFY_GRPC_PORT", "70000"),
        ("NOTIFY_DATABASE_URL", "mysql://x"),
        ("NOTIFY_REDIS_URL", "http://x"),
        ("NOTIFY_AMQP_URL", "redis://x"),
        ("NOTIFY_API_KEYS", "short"),
        ("NOTIFY_JWT_SECRET", "tiny"),
        ("NOTIFY_NAMESPACE", "bad name!"),
        ("NOTIFY_SQLITE_SYNCHRONOUS", "OFF"),
        ("NOTIFY_WS_PING_INTERVAL", "soon"),
        ("NOTIFY_SEND_LEASE", "0"),
    ],
)
def test_malformed_setting_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value}, env_file=None)


def test_env_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("NOTIFY_HTTP_PORT=9100\nNOTIFY_GRPC_PORT=9200\n")
    s = load_settings({"NOTIFY_GRPC_PORT": "9300"}, env_file=env_file)
    assert (s.http_port, s.grpc_port) == (9100, 9300)
