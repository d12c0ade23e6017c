"""APNs settings (``NOTIFY_APNS_*``) and the pure parts of a notification: headers,
payload, collapse id."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from delivery_svc.providers.apns import (
    APNS_DEFAULT_ENDPOINT,
    PROVIDER,
    ApnsSettings,
    ProviderToken,
    collapse_id,
    notification_headers,
    notification_payload,
    read_settings,
)
from delivery_svc.providers.base import PushMessage
from notify_core.errors import ConfigError
from tests.support.apns import KEY_ID, TEAM_ID, TOPIC, ApnsKey


def _env(key: ApnsKey, **changes: str) -> dict[str, str]:
    env = {
        "NOTIFY_APNS_KEY_FILE": key.path,
        "NOTIFY_APNS_KEY_ID": KEY_ID,
        "NOTIFY_APNS_TEAM_ID": TEAM_ID,
        "NOTIFY_APNS_TOPIC": TOPIC,
    }
    env.update(changes)
    return {k: v for k, v in env.items() if v != "<unset>"}


def test_unset_turns_apns_off() -> None:
    assert read_settings({}) is None
    assert read_settings({"NOTIFY_APNS_ENDPOINT": "https://api.sandbox.push.apple.com"}) is None


def test_all_four_make_the_settings_with_the_production_endpoint(apns_key: ApnsKey) -> None:
    settings = read_settings(_env(apns_key))
    assert settings == ApnsSettings(apns_key.path, KEY_ID, TEAM_ID, TOPIC)
    assert settings.endpoint == APNS_DEFAULT_ENDPOINT == "https://api.push.apple.com"
    assert settings.key is not None
    assert settings.key.private_numbers() == apns_key.private_key.private_numbers()
    assert "PRIVATE" not in repr(settings) and "private_value" not in repr(settings)


def test_the_sandbox_endpoint_is_taken(apns_key: ApnsKey) -> None:
    env = _env(apns_key, NOTIFY_APNS_ENDPOINT="https://api.sandbox.push.apple.com/")
    settings = read_settings(env)
    assert settings is not None and settings.endpoint == "https://api.sandbox.push.apple.com"


@pytest.mark.parametrize(
    "unset",
    ["NOTIFY_APNS_KEY_FILE", "NOTIFY_APNS_KEY_ID", "NOTIFY_APNS_TEAM_ID", "NOTIFY_APNS_TOPIC"],
)
def test_some_but_not_all_names_the_missing_variable(apns_key: ApnsKey, unset: str) -> None:
    with pytest.raises(ConfigError, match=f"{unset} not set"):
        read_settings(_env(apns_key, **{unset: "<unset>"}))


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("NOTIFY_APNS_KEY_ID", "abc", "NOTIFY_APNS_KEY_ID must be ten"),
        ("NOTIFY_APNS_TEAM_ID", "team 12345", "NOTIFY_APNS_TEAM_ID must be ten"),
        ("NOTIFY_APNS_TOPIC", "com.example/app", "NOTIFY_APNS_TOPIC must be the app's bundle"),
        ("NOTIFY_APNS_ENDPOINT", "http://api.push.apple.com", "NOTIFY_APNS_ENDPOINT must"),
        ("NOTIFY_APNS_KEY_FILE", "/nonexistent/AuthKey.p8", "NOTIFY_APNS_KEY_FILE cannot be read"),
    ],
)
def test_a_bad_value_names_its_variable(
    apns_key: ApnsKey, name: str, value: str, match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        read_settings(_env(apns_key, **{name: value}))


def test_a_file_that_is_not_a_key_is_refused(apns_key: ApnsKey, tmp_path: Path) -> None:
    junk = tmp_path / "junk.p8"
    junk.write_text("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ConfigError, match="NOTIFY_APNS_KEY_FILE is not a PEM private key"):
        read_settings(_env(apns_key, NOTIFY_APNS_KEY_FILE=str(junk)))


@pytest.mark.parametrize("kind", ["rsa", "p384"])
def test_a_key_that_is_not_p256_is_refused(apns_key: ApnsKey, tmp_path: Path, kind: str) -> None:
    key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if kind == "rsa"
        else ec.generate_private_key(ec.SECP384R1())
    )
    path = tmp_path / f"{kind}.p8"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(ConfigError, match="NOTIFY_APNS_KEY_FILE must hold an EC P-256 key"):
        read_settings(_env(apns_key, NOTIFY_APNS_KEY_FILE=str(path)))


def test_a_key_file_that_is_a_directory_is_refused(apns_key: ApnsKey, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="NOTIFY_APNS_KEY_FILE cannot be read"):
        read_settings(_env(apns_key, NOTIFY_APNS_KEY_FILE=str(tmp_path)))


def test_the_spec_declares_the_apns_platform() -> None:
    assert (PROVIDER.name, PROVIDER.platform) == ("apns", "apns")
    assert PROVIDER.read_settings({}) is None


MESSAGE = PushMessage(
    send_id="0b5a2c6e-7f0d-4e8a-9a43-1f0f6b2c9d11",
    token="ab" * 32,
    title="Hello",
    body="",
    data={"notification_id": "n1", "aps": "ignored"},
    priority="low",
    ttl=60,
    collapse_key="k",
    badge=0,
)


def test_headers_of_a_low_priority_alert() -> None:
    assert notification_headers(MESSAGE, topic=TOPIC, now=1000.7) == {
        "apns-id": MESSAGE.send_id,
        "apns-topic": TOPIC,
        "apns-push-type": "alert",
        "apns-priority": "5",
        "apns-expiration": "1060",
        "apns-collapse-id": "k",
    }


def test_the_payload_keeps_aps_over_a_data_key_and_omits_an_empty_body() -> None:
    assert notification_payload(MESSAGE) == {
        "notification_id": "n1",
        "aps": {"alert": {"title": "Hello"}, "badge": 0},
    }


@pytest.mark.parametrize(
    ("key", "kept"),
    [("a" * 64, True), ("group:build-42", True), ("a" * 65, False), ("é", False), ("a b", False)],
)
def test_collapse_ids_are_the_key_or_its_digest(key: str, kept: bool) -> None:
    cid = collapse_id(key)
    assert (cid == key) is kept
    assert cid.isascii() and cid.isprintable() and 0 < len(cid) <= 64
    if not kept:
        assert len(cid) == 64 and collapse_id(key) == cid


def test_the_provider_token_is_cached_renewed_at_50_minutes_and_once_when_rejected(
    apns_key: ApnsKey,
) -> None:
    now = [1_000_000.0]
    token = ProviderToken(
        apns_key.private_key, key_id=KEY_ID, team_id=TEAM_ID, clock=lambda: now[0]
    )
    first = token.current()
    now[0] += 50 * 60 - 1
    assert token.current() == first
    now[0] += 1
    second = token.current()
    assert second != first
    claims = jwt.decode(second, apns_key.private_key.public_key(), algorithms=["ES256"])
    assert claims == {"iss": TEAM_ID, "iat": 1_000_000 + 50 * 60}
    renewed = token.renew(second)
    assert renewed != second
    assert token.renew(second) == renewed  # a second send refused with it: no new token
    assert token.current() == renewed
