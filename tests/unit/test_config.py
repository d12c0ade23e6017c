"""Configuration: defaults, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from notify_app.settings import KNOWN, load_settings
from notify_core.config_names import DeclaredEnv
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


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("NOTIFY_DATABSE_URL", "NOTIFY_DATABASE_URL"),
        ("NOTIFY_JWT_SECRETS", "NOTIFY_JWT_SECRET"),
        ("NOTIFY_WEBHOOK_ALLOW_HTTPS", "NOTIFY_WEBHOOK_ALLOW_HTTP"),
        ("NOTIFY_SMTP_PASS", "NOTIFY_SMTP_PASSWORD"),
    ],
)
def test_an_unknown_setting_stops_start_naming_the_nearest_known_one(typo: str, meant: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({typo: "x"}, env_file=None)
    assert str(caught.value) == f"{typo} is not a setting of Notify; did you mean {meant}?"


def test_an_unknown_setting_in_the_env_file_stops_start(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("NOTIFY_HTTP_PROT=9100\n")
    with pytest.raises(ConfigError, match=r"NOTIFY_HTTP_PROT .*NOTIFY_HTTP_PORT"):
        load_settings({}, env_file=env_file)


def test_the_test_suites_own_names_and_other_prefixes_are_not_settings() -> None:
    env = {"NOTIFY_TEST_REDIS_URL": "redis://x", "NOTIFYX": "1", "OTHER_THING": "1"}
    assert load_settings(env, env_file=None).redis_url is None


def test_every_name_the_parsers_read_is_declared() -> None:
    env = DeclaredEnv({"NOTIFY_HTTP_PORT": "1"}, KNOWN)
    assert env.get("NOTIFY_HTTP_PORT") == "1" and env.get("NOTIFY_GRPC_PORT") is None
    with pytest.raises(LookupError, match=r"NOTIFY_HTTP_PROT .*not declared"):
        env.get("NOTIFY_HTTP_PROT")
    with pytest.raises(LookupError):
        _ = "NOTIFY_HTTP_PROT" in env


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NOTIFY_DATABASE_URL", "mysql://notify:s3cret-pw@db/notify"),
        ("NOTIFY_REDIS_URL", "http://:s3cret-pw@cache:6379/0"),
        ("NOTIFY_AMQP_URL", "redis://guest:s3cret-pw@mq/"),
        ("NOTIFY_SES_ENDPOINT_URL", "ftp://key:s3cret-pw@ses.local"),
    ],
)
def test_a_malformed_url_is_named_without_its_password(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({name: value}, env_file=None)
    assert name in str(caught.value) and ":***@" in str(caught.value)
    assert "s3cret-pw" not in str(caught.value)
