"""Passwords in URLs never reach a message or a log line."""

from __future__ import annotations

import logging

import pytest

from notify_core.redact import RedactingFormatter, redact, redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql+psycopg://postgres:s3cret@127.0.0.1:5999/x",
            "postgresql+psycopg://postgres:***@127.0.0.1:5999/x",
        ),
        ("amqp://guest:s3cret@mq:5672/%2F", "amqp://guest:***@mq:5672/%2F"),
        ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("rediss://cache:6380/0?password=s3cret", "rediss://cache:6380/0"),
        ("redis://user@cache/0", "redis://user@cache/0"),
        ("sqlite:///notify.db", "sqlite:///notify.db"),
        ("sqlite:////var/lib/notify/notify.db", "sqlite:////var/lib/notify/notify.db"),
        ("http://[::1]:s3cret", "<malformed URL>"),
    ],
)
def test_redact_url_hides_the_password_and_keeps_the_rest(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_scrubs_every_url_in_a_text() -> None:
    text = "failed: amqp://u:p4ss@mq/ then postgresql://a:b0b@db/d; plain http://example.com/a"
    assert redact(text) == (
        "failed: amqp://u:***@mq/ then postgresql://a:***@db/d; plain http://example.com/a"
    )


def test_log_lines_are_redacted() -> None:
    record = logging.LogRecord(
        "notify", logging.INFO, __file__, 1, "connecting to %s", ("redis://:s3cret@h/0",), None
    )
    assert RedactingFormatter("%(message)s").format(record) == "connecting to redis://:***@h/0"
