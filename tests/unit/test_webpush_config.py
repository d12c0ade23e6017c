"""Web push settings (NOTIFY_VAPID_*), the Topic header and the payload that must fit one
aes128gcm record."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from delivery_svc.providers.base import PushMessage
from delivery_svc.providers.webpush import (
    KEY_VAR,
    MAX_PLAINTEXT_BYTES,
    SUBJECT_VAR,
    encode_payload,
    read_settings,
    topic_for,
    vapid_public_key,
)
from notify_core.errors import ConfigError, DeliveryError

SUBJECT = "https://notify.example/contact"


def write_key(path: Path, key: object, password: bytes | None = None) -> str:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    assert isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey)
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    return str(path)


@pytest.fixture
def key_file(tmp_path: Path) -> str:
    return write_key(tmp_path / "vapid.pem", ec.generate_private_key(ec.SECP256R1()))


def test_unset_turns_web_push_off() -> None:
    assert read_settings({}) is None
    assert read_settings({KEY_VAR: "  "}) is None


def test_a_key_with_a_subject_gives_the_public_key_browsers_need(key_file: str) -> None:
    settings = read_settings({KEY_VAR: key_file, SUBJECT_VAR: SUBJECT})
    assert settings is not None
    assert (settings.key_file, settings.subject) == (key_file, SUBJECT)
    assert "private_key" not in repr(settings)
    public = vapid_public_key(settings)
    assert re.fullmatch(r"[A-Za-z0-9_-]{87}", public)
    raw = base64.urlsafe_b64decode(public + "=")
    assert len(raw) == 65 and raw[0] == 4
    expected = settings.private_key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    assert raw == expected


def test_the_sec1_pem_that_openssl_writes_is_read(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "sec1.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    settings = read_settings({KEY_VAR: str(path), SUBJECT_VAR: "mailto:ops@notify.example"})
    assert settings is not None


def test_the_webhook_allowances_apply_to_endpoints(key_file: str) -> None:
    settings = read_settings(
        {
            KEY_VAR: key_file,
            SUBJECT_VAR: SUBJECT,
            "NOTIFY_WEBHOOK_ALLOWED_HOSTS": "Push.Internal, 10.0.0.0/8",
            "NOTIFY_WEBHOOK_ALLOW_PRIVATE": "true",
            "NOTIFY_WEBHOOK_ALLOW_HTTP": "true",
        }
    )
    assert settings is not None
    assert settings.allowed_hosts == ("push.internal", "10.0.0.0/8")
    assert settings.allow_private
    assert not settings.policy.allow_http  # endpoints are https, whatever webhooks allow


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({SUBJECT_VAR: SUBJECT}, KEY_VAR),
        ({KEY_VAR: "KEY"}, SUBJECT_VAR),
        ({KEY_VAR: "KEY", SUBJECT_VAR: "ops@notify.example"}, SUBJECT_VAR),
        ({KEY_VAR: "KEY", SUBJECT_VAR: "http://notify.example"}, SUBJECT_VAR),
        ({KEY_VAR: "KEY", SUBJECT_VAR: "mailto:nobody"}, SUBJECT_VAR),
        ({KEY_VAR: "KEY", SUBJECT_VAR: SUBJECT, "NOTIFY_WEBHOOK_ALLOWED_HOSTS": "a/b"}, "HOSTS"),
        ({KEY_VAR: "/no/such/vapid.pem", SUBJECT_VAR: SUBJECT}, KEY_VAR),
    ],
)
def test_bad_settings_name_the_variable(key_file: str, env: dict[str, str], names: str) -> None:
    env = {k: key_file if v == "KEY" else v for k, v in env.items()}
    with pytest.raises(ConfigError, match=names):
        read_settings(env)


@pytest.mark.parametrize("kind", ["text", "rsa", "p384", "encrypted"])
def test_a_key_file_that_is_not_an_unencrypted_p256_key_is_refused(
    tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "key.pem"
    if kind == "text":
        path.write_text("not a key\n")
    elif kind == "rsa":
        write_key(path, rsa.generate_private_key(public_exponent=65537, key_size=2048))
    elif kind == "p384":
        write_key(path, ec.generate_private_key(ec.SECP384R1()))
    else:
        write_key(path, ec.generate_private_key(ec.SECP256R1()), password=b"secret")
    with pytest.raises(ConfigError, match=KEY_VAR):
        read_settings({KEY_VAR: str(path), SUBJECT_VAR: SUBJECT})


def test_a_topic_is_the_key_when_it_fits_else_a_stable_hash() -> None:
    assert topic_for("comments-42_x") == "comments-42_x"
    assert topic_for("a" * 32) == "a" * 32
    for key in ("a" * 33, "comment:42", "thread é"):
        topic = topic_for(key)
        assert re.fullmatch(r"[A-Za-z0-9_-]{32}", topic)
        assert topic == topic_for(key)
    assert topic_for("comment:42") != topic_for("comment:43")


def push(body: str, title: str = "Title", **data: str) -> PushMessage:
    return PushMessage("s", "{}", title, body, data, "normal", 60)


def test_the_payload_is_compact_json_of_title_body_and_data() -> None:
    raw = encode_payload(push("héllo", notification_id="n1"))
    assert raw == '{"title":"Title","body":"héllo","data":{"notification_id":"n1"}}'.encode()


@pytest.mark.parametrize("unit", ["a", "é", "👋", '"', "\n"])
def test_a_long_body_is_cut_to_fit_one_record(unit: str) -> None:
    body = unit * 5000
    raw = encode_payload(push(body))
    assert len(raw) <= MAX_PLAINTEXT_BYTES
    assert len(raw) > MAX_PLAINTEXT_BYTES - 16
    cut = json.loads(raw)["body"]
    assert cut.endswith("…") and body.startswith(cut[:-1])


def test_a_payload_whose_data_alone_is_too_large_is_refused() -> None:
    with pytest.raises(DeliveryError, match="cannot be cut") as caught:
        encode_payload(push("short", blob="x" * 5000))
    assert caught.value.permanent
