"""SNS's HTTPS side as a node sees it: the certificate SNS signs with (:class:`SnsSide`
serves it, and records the subscribe URLs a node GETs), the ``sns`` fixture, and signing
messages the way SNS does (signature version 2)."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from delivery_svc.transport.sns import SnsHttp
from notify_app.node import Node
from notify_app.settings import NodeSettings
from notify_core.errors import Unavailable

SNS_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123456789.pem"


def certificate(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


class SnsSide:
    """SNS's HTTPS side: the signing certificate, and the subscribe URLs GOT."""

    def __init__(self) -> None:
        self.pem = certificate(SNS_KEY)
        self.certificates: list[str] = []
        self.subscribed: list[str] = []
        self.down = False

    async def fetch(self, url: str) -> bytes:
        self.certificates.append(url)
        return self.pem

    async def get(self, url: str) -> None:
        if self.down:
            raise Unavailable("SNS SubscribeURL: ConnectError")
        self.subscribed.append(url)

    def node(self, settings: NodeSettings, **changes: Any) -> Node:
        """A node on ``settings`` whose SNS calls come here."""
        changed = dataclasses.replace(settings, **changes)
        return Node(changed, sns_http=SnsHttp(self.fetch, self.get))


@pytest.fixture
def sns() -> Iterator[SnsSide]:
    yield SnsSide()


def sns_sign(message: dict[str, Any], key: rsa.RSAPrivateKey = SNS_KEY) -> dict[str, Any]:
    if message["Type"] == "Notification":
        names = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        names = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    text = "".join(f"{n}\n{message[n]}\n" for n in names if n in message)
    signature = key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())
    return {
        **message,
        "SignatureVersion": "2",
        "Signature": base64.b64encode(signature).decode(),
        "SigningCertURL": CERT_URL,
    }
