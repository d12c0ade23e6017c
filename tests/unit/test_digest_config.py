"""Digest settings (NOTIFY_DIGEST_*): defaults, durations, and errors naming the variable."""

from __future__ import annotations

import pytest

from digest_svc.config_digest import DigestSettings
from notify_app.settings import load_settings
from notify_core.errors import ConfigError


def test_defaults() -> None:
    assert load_settings({}, env_file=None).digest == DigestSettings()
    assert DigestSettings().page == 1_000


def test_values_are_read() -> None:
    s = load_settings(
        {
            "NOTIFY_DIGEST_INTERVAL": "10s",
            "NOTIFY_DIGEST_LEASE": "1m",
            "NOTIFY_DIGEST_PAGE": "500",
            "NOTIFY_DIGEST_BATCH": "50",
            "NOTIFY_DIGEST_CONCURRENCY": "8",
            "NOTIFY_DIGEST_RETRY": "15m",
        },
        env_file=None,
    ).digest
    assert s == DigestSettings(
        interval=10.0, lease=60.0, page=500, batch=50, concurrency=8, retry=900.0
    )


def test_the_lease_outlasts_a_long_interval_by_default() -> None:
    s = load_settings({"NOTIFY_DIGEST_INTERVAL": "5m"}, env_file=None).digest
    assert s.lease == 600.0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NOTIFY_DIGEST_INTERVAL", "soon"),
        ("NOTIFY_DIGEST_INTERVAL", "2h"),
        ("NOTIFY_DIGEST_PAGE", "0"),
        ("NOTIFY_DIGEST_BATCH", "many"),
        ("NOTIFY_DIGEST_CONCURRENCY", "100000"),
        ("NOTIFY_DIGEST_RETRY", "-1"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value}, env_file=None)


def test_a_lease_shorter_than_the_interval_is_refused() -> None:
    with pytest.raises(ConfigError, match="NOTIFY_DIGEST_LEASE"):
        load_settings(
            {"NOTIFY_DIGEST_INTERVAL": "60s", "NOTIFY_DIGEST_LEASE": "30s"}, env_file=None
        )
