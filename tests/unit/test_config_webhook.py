"""NOTIFY_WEBHOOK_* settings: defaults, parsing and the errors that name the variable."""

from __future__ import annotations

import base64

import pytest

from delivery_svc.config_webhook import webhook_secret_key
from notify_app.settings import load_settings
from notify_core.constants import WEBHOOK_TIMEOUT_SECONDS
from notify_core.errors import ConfigError

KEY = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(KEY).decode()


def test_defaults_send_nothing_unsigned_and_guard_everything() -> None:
    webhook = load_settings({}, env_file=None).webhook
    assert webhook.secrets == ()
    assert webhook.timeout == WEBHOOK_TIMEOUT_SECONDS
    assert (webhook.allow_private, webhook.allow_http, webhook.allowed_hosts) == (False, False, ())


def test_every_setting_is_read() -> None:
    other = "whsec_" + base64.b64encode(b"k" * 24).decode().rstrip("=")
    webhook = load_settings(
        {
            "NOTIFY_WEBHOOK_SECRET": f"{SECRET}, {other}",
            "NOTIFY_WEBHOOK_TIMEOUT": "2.5",
            "NOTIFY_WEBHOOK_ALLOW_PRIVATE": "TRUE",
            "NOTIFY_WEBHOOK_ALLOW_HTTP": "yes",
            "NOTIFY_WEBHOOK_ALLOWED_HOSTS": "Hooks.Internal., *.corp.example, 10.0.0.0/8, ::1",
        },
        env_file=None,
    ).webhook
    assert webhook.secrets == (SECRET, other)
    assert webhook.timeout == 2.5
    assert webhook.allow_private and webhook.allow_http
    assert webhook.allowed_hosts == ("hooks.internal", "*.corp.example", "10.0.0.0/8", "::1/128")


def test_the_secret_key_is_the_base64_after_the_prefix() -> None:
    assert webhook_secret_key(SECRET) == KEY


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"NOTIFY_WEBHOOK_SECRET": base64.b64encode(KEY).decode()}, "whsec_"),
        ({"NOTIFY_WEBHOOK_SECRET": "whsec_not*base64!"}, "base64"),
        ({"NOTIFY_WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"short").decode()}, "24 to 64"),
        ({"NOTIFY_WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"x" * 65).decode()}, "got 65"),
        ({"NOTIFY_WEBHOOK_TIMEOUT": "soon"}, "NOTIFY_WEBHOOK_TIMEOUT"),
        ({"NOTIFY_WEBHOOK_TIMEOUT": "0"}, "between"),
        ({"NOTIFY_WEBHOOK_ALLOW_PRIVATE": "maybe"}, "NOTIFY_WEBHOOK_ALLOW_PRIVATE"),
        ({"NOTIFY_WEBHOOK_ALLOW_HTTP": "2"}, "NOTIFY_WEBHOOK_ALLOW_HTTP"),
        ({"NOTIFY_WEBHOOK_ALLOWED_HOSTS": "https://x.example/"}, "NOTIFY_WEBHOOK_ALLOWED_HOSTS"),
        ({"NOTIFY_WEBHOOK_ALLOWED_HOSTS": "bad host"}, "NOTIFY_WEBHOOK_ALLOWED_HOSTS"),
    ],
)
def test_a_malformed_setting_fails_naming_it(env: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env, env_file=None)
    assert words in caught.value.message
    if "SECRET" in next(iter(env)):
        assert "NOTIFY_WEBHOOK_SECRET" in caught.value.message
