"""NOTIFY_FCM_CREDENTIALS and NOTIFY_FCM_ENDPOINT: read and checked at start, a bad value
refused with the variable (and the key file's field) named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from delivery_svc.providers.fcm import PROVIDER, FcmSettings, read_settings
from notify_core.errors import ConfigError
from tests.support.fcm import CLIENT_EMAIL, PROJECT_ID, new_key, write_service_account


def test_unset_turns_fcm_off() -> None:
    assert read_settings({}) is None
    assert read_settings({"NOTIFY_FCM_CREDENTIALS": "  "}) is None
    assert PROVIDER.read_settings({"NOTIFY_FCM_ENDPOINT": "https://fcm.example.com"}) is None


def test_a_service_account_file_is_read(fcm_service_account: Path) -> None:
    settings = read_settings({"NOTIFY_FCM_CREDENTIALS": str(fcm_service_account)})
    assert isinstance(settings, FcmSettings)
    assert settings.credentials_file == str(fcm_service_account)
    assert settings.endpoint == "https://fcm.googleapis.com"
    assert settings.account.project_id == PROJECT_ID
    assert settings.account.client_email == CLIENT_EMAIL
    assert settings.account.token_uri == "https://oauth2.googleapis.com/token"
    assert settings.account.private_key_id == "0123456789abcdef"
    assert "PRIVATE KEY" not in repr(settings)


def test_the_endpoint_is_an_http_url_without_its_trailing_slash(
    fcm_service_account: Path,
) -> None:
    env = {
        "NOTIFY_FCM_CREDENTIALS": str(fcm_service_account),
        "NOTIFY_FCM_ENDPOINT": "https://fcm.example.com/",
    }
    settings = read_settings(env)
    assert settings is not None and settings.endpoint == "https://fcm.example.com"


def test_an_endpoint_that_is_not_a_url_is_refused(fcm_service_account: Path) -> None:
    env = {
        "NOTIFY_FCM_CREDENTIALS": str(fcm_service_account),
        "NOTIFY_FCM_ENDPOINT": "fcm.googleapis.com",
    }
    with pytest.raises(ConfigError, match="NOTIFY_FCM_ENDPOINT must start with one of http"):
        read_settings(env)


def _refused(path: Path | str, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        read_settings({"NOTIFY_FCM_CREDENTIALS": str(path)})
    assert "NOTIFY_FCM_CREDENTIALS" in str(info.value)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    _refused(tmp_path / "nope.json", "cannot be read: No such file")


def test_a_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    path.write_text("-----BEGIN PRIVATE KEY-----\n")
    _refused(path, "is not JSON")


def test_a_json_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    path.write_text("[]")
    _refused(path, "is not a JSON object")


@pytest.mark.parametrize("name", ["project_id", "client_email", "private_key", "token_uri"])
def test_a_missing_field_is_named(tmp_path: Path, name: str) -> None:
    _refused(write_service_account(tmp_path, new_key(), **{name: None}), f"field {name} is missing")


def test_a_blank_field_is_named(tmp_path: Path) -> None:
    _refused(write_service_account(tmp_path, new_key(), project_id="  "), "field project_id")


def test_another_kind_of_google_credential_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "adc.json"
    path.write_text(json.dumps({"type": "authorized_user", "client_id": "x"}))
    _refused(path, "type must be service_account, got 'authorized_user'")


def test_a_private_key_that_is_not_pem_is_refused(tmp_path: Path) -> None:
    _refused(
        write_service_account(tmp_path, new_key(), private_key="not a key"),
        "field private_key is not a PEM private key",
    )


def test_a_private_key_that_is_not_rsa_is_refused(tmp_path: Path) -> None:
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    _refused(
        write_service_account(tmp_path, new_key(), private_key=pem),
        "field private_key must be an RSA key",
    )


def test_a_token_uri_that_is_not_a_url_is_refused(tmp_path: Path) -> None:
    _refused(
        write_service_account(tmp_path, new_key(), token_uri="oauth2.googleapis.com/token"),
        "field token_uri must be an http",
    )
