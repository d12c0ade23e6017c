"""Provider event webhooks: SendGrid's signed event webhook and SES events through SNS.

The fixtures are signed here the way the services sign them: SendGrid with ECDSA P-256
over ``timestamp + body``; SNS with RSA over its canonical string, under a certificate
the test issues and hands to the verifier through its fetcher.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from delivery_svc.providers.base import ProviderEvent
from delivery_svc.providers.sendgrid import SendGridWebhookVerifier, parse_sendgrid_events
from delivery_svc.providers.ses import parse_ses_event, parse_ses_events
from delivery_svc.transport.sns import SnsVerifier
from notify_core.errors import InvalidArgument, Unauthenticated

UTC = dt.UTC

# --- SendGrid ---------------------------------------------------------------------------

SG_KEY = ec.generate_private_key(ec.SECP256R1())
SG_PUBLIC_B64 = base64.b64encode(
    SG_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()
SG_TIMESTAMP = "1700000000"
SG_NOW = int(SG_TIMESTAMP) + 5
"""When the tests verify: five seconds after SendGrid signed."""


def _sg_sign(body: bytes, timestamp: str = SG_TIMESTAMP, key: Any = SG_KEY) -> str:
    return base64.b64encode(key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()


def _sg_headers(body: bytes, timestamp: str = SG_TIMESTAMP) -> dict[str, str]:
    return {
        "X-Twilio-Email-Event-Webhook-Signature": _sg_sign(body, timestamp),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }


SG_EVENTS: list[dict[str, Any]] = [
    {
        "email": "alice@example.com",
        "timestamp": 1700000001,
        "event": "processed",
        "sg_event_id": "ev-processed",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
    },
    {
        "email": "alice@example.com",
        "timestamp": 1700000002,
        "event": "delivered",
        "response": "250 OK",
        "sg_event_id": "ev-delivered",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        "notify_message_id": "<n1.email@notify.example.com>",
        "notify_idempotency_key": "n1:email",
    },
    {
        "email": "bob@example.com",
        "timestamp": 1700000003,
        "event": "bounce",
        "type": "bounce",
        "status": "5.1.1",
        "reason": "550 5.1.1 The email account that you tried to reach does not exist",
        "sg_event_id": "ev-bounce",
        "sg_message_id": (
            "LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0"
        ),
    },
    {
        "email": "carol@example.com",
        "timestamp": 1700000004,
        "event": "bounce",
        "type": "blocked",
        "reason": "421 try again later",
        "sg_message_id": "blk.filter",
    },
    {
        "email": "dan@example.com",
        "timestamp": 1700000005,
        "event": "deferred",
        "response": "400 try again later",
        "attempt": "5",
        "sg_message_id": "def.filter",
    },
    {
        "email": "erin@example.com",
        "timestamp": 1700000006,
        "event": "dropped",
        "reason": "Bounced Address",
        "sg_message_id": "drp.filter",
    },
    {
        "email": "alice@example.com",
        "timestamp": 1700000007,
        "event": "open",
        "sg_message_id": "opn.filter",
    },
    {
        "email": "alice@example.com",
        "timestamp": 1700000008,
        "event": "click",
        "url": "https://example.com/report",
        "sg_message_id": "clk.filter",
    },
    {
        "email": "frank@example.com",
        "timestamp": 1700000009,
        "event": "spamreport",
        "sg_message_id": "spm.filter",
    },
    {"email": "x@example.com", "event": "delivered", "sg_message_id": "no-timestamp"},
    {"email": "x@example.com", "timestamp": 1700000010, "event": "unsubscribe"},
]
SG_BODY = json.dumps(SG_EVENTS).encode() + b"\r\n"


def test_a_signed_sendgrid_batch_verifies_and_parses() -> None:
    verifier = SendGridWebhookVerifier(SG_PUBLIC_B64)
    events = verifier.events(SG_BODY, _sg_headers(SG_BODY), now=SG_NOW)
    assert [(e.kind, e.address) for e in events] == [
        ("delivered", "alice@example.com"),
        ("bounced", "bob@example.com"),
        ("dropped", "carol@example.com"),
        ("deferred", "dan@example.com"),
        ("dropped", "erin@example.com"),
        ("opened", "alice@example.com"),
        ("clicked", "alice@example.com"),
        ("complained", "frank@example.com"),
    ]
    delivered, bounced = events[0], events[1]
    assert delivered == ProviderEvent(
        provider="sendgrid",
        provider_message_id="14c5d75ce93",
        kind="delivered",
        address="alice@example.com",
        detail="250 OK",
        at=dt.datetime(2023, 11, 14, 22, 13, 22, tzinfo=UTC),
        message_id="<n1.email@notify.example.com>",
        event_id="ev-delivered",
    )
    assert bounced.provider_message_id == "LRzXl_NHStOGhQ4kofSm_A"
    assert "5.1.1" in bounced.detail and "does not exist" in bounced.detail
    assert events[2].detail.startswith("blocked")
    assert events[6].detail == "https://example.com/report"


def test_sendgrid_header_names_are_case_insensitive() -> None:
    headers = {k.lower(): v for k, v in _sg_headers(SG_BODY).items()}
    assert len(SendGridWebhookVerifier(SG_PUBLIC_B64).events(SG_BODY, headers, now=SG_NOW)) == 8


def test_a_flipped_byte_in_the_body_fails() -> None:
    verifier = SendGridWebhookVerifier(SG_PUBLIC_B64)
    headers = _sg_headers(SG_BODY)
    tampered = bytearray(SG_BODY)
    tampered[SG_BODY.index(b"bob")] ^= 0x01
    with pytest.raises(Unauthenticated):
        verifier.events(bytes(tampered), headers, now=SG_NOW)


@pytest.mark.parametrize("what", ["signature", "timestamp", "key", "missing"])
def test_sendgrid_signatures_that_do_not_verify(what: str) -> None:
    signature = _sg_sign(SG_BODY)
    timestamp = SG_TIMESTAMP
    key = SG_PUBLIC_B64
    if what == "signature":
        raw = bytearray(base64.b64decode(signature))
        raw[-1] ^= 0x01
        signature = base64.b64encode(bytes(raw)).decode()
    elif what == "timestamp":
        timestamp = "1700000001"
    elif what == "key":
        other = ec.generate_private_key(ec.SECP256R1()).public_key()
        key = other.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
    else:
        signature = ""
    with pytest.raises(Unauthenticated):
        SendGridWebhookVerifier(key).verify(SG_BODY, signature, timestamp, now=SG_NOW)


def test_sendgrids_published_test_vector_verifies() -> None:
    """The key, signature and payload SendGrid's own libraries test against."""
    key = (
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHB"
        "cepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA=="
    )
    signature = (
        "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRam"
        "r2nlxFDWYNH2j/0="
    )
    payload = b'{"category":"example_payload","event":"test_event","message_id":"message_id"}'
    verifier = SendGridWebhookVerifier(key)
    verifier.verify(payload, signature, "1588788367", now=1588788367 + 60)
    with pytest.raises(Unauthenticated, match="does not verify"):
        verifier.verify(payload, signature, "1388788367", now=1388788367 + 60)


def test_max_age_refuses_old_requests() -> None:
    verifier = SendGridWebhookVerifier(SG_PUBLIC_B64, max_age=300)
    signature = _sg_sign(SG_BODY)
    verifier.verify(SG_BODY, signature, SG_TIMESTAMP, now=int(SG_TIMESTAMP) + 299)
    with pytest.raises(Unauthenticated, match="too old"):
        verifier.verify(SG_BODY, signature, SG_TIMESTAMP, now=int(SG_TIMESTAMP) + 301)


def test_signatures_older_than_ten_minutes_or_from_the_future_are_refused() -> None:
    verifier = SendGridWebhookVerifier(SG_PUBLIC_B64)
    signature = _sg_sign(SG_BODY)
    signed_at = int(SG_TIMESTAMP)
    verifier.verify(SG_BODY, signature, SG_TIMESTAMP, now=signed_at + 600)
    verifier.verify(SG_BODY, signature, SG_TIMESTAMP, now=signed_at - 60)
    with pytest.raises(Unauthenticated, match="too old"):
        verifier.verify(SG_BODY, signature, SG_TIMESTAMP, now=signed_at + 601)
    with pytest.raises(Unauthenticated, match="in the future"):
        verifier.verify(SG_BODY, signature, SG_TIMESTAMP, now=signed_at - 61)


def test_a_malformed_public_key_is_refused_at_construction() -> None:
    with pytest.raises(ValueError):
        SendGridWebhookVerifier("bm90IGEga2V5")


@pytest.mark.parametrize("body", [b"not json", b'{"event": "delivered"}'])
def test_a_sendgrid_body_that_is_not_an_array_is_invalid(body: bytes) -> None:
    with pytest.raises(InvalidArgument):
        parse_sendgrid_events(body)


# --- SNS and SES ------------------------------------------------------------------------

SNS_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc123.pem"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-events"
NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _certificate(key: rsa.RSAPrivateKey, days: int = 30) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


SNS_CERT = _certificate(SNS_KEY)


class Fetcher:
    def __init__(self, pem: bytes = SNS_CERT) -> None:
        self.pem = pem
        self.urls: list[str] = []

    async def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        return self.pem


def _sns_sign(message: dict[str, Any], version: str = "2", key: Any = SNS_KEY) -> dict[str, Any]:
    """Sign as SNS does: "Name\\nValue\\n" for each signed field present, in this order."""
    if message["Type"] == "Notification":
        names = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        names = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    text = "".join(f"{n}\n{message[n]}\n" for n in names if n in message)
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(text.encode(), padding.PKCS1v15(), digest)
    return {
        **message,
        "SignatureVersion": version,
        "Signature": base64.b64encode(signature).decode(),
        "SigningCertURL": CERT_URL,
    }


def _notification(event: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": TOPIC,
        "Message": json.dumps(event),
        "Timestamp": "2026-01-02T03:04:00.000Z",
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
        **extra,
    }


MAIL: dict[str, Any] = {
    "timestamp": "2026-01-02T03:00:00.000Z",
    "source": "no-reply@notify.example.com",
    "messageId": "010701812345abcd-11111111-2222-3333-4444-555555555555-000000",
    "destination": ["alice@example.com"],
    "commonHeaders": {"messageId": "<n1.email@notify.example.com>"},
}
BOUNCE: dict[str, Any] = {
    "eventType": "Bounce",
    "mail": MAIL,
    "bounce": {
        "bounceType": "Permanent",
        "bounceSubType": "General",
        "timestamp": "2026-01-02T03:01:00.000Z",
        "bouncedRecipients": [
            {
                "emailAddress": "alice@example.com",
                "action": "failed",
                "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1 user unknown",
            }
        ],
    },
}


@pytest.mark.parametrize("version", ["1", "2"])
async def test_a_signed_ses_bounce_verifies_and_maps_to_bounced(version: str) -> None:
    fetcher = Fetcher()
    verifier = SnsVerifier(fetcher, topic_arns=[TOPIC])
    body = json.dumps(_sns_sign(_notification(BOUNCE), version))
    message = await verifier.verify(body, now=NOW)
    assert message.type == "Notification"
    assert message.topic_arn == TOPIC
    [event] = parse_ses_events(message)
    assert event == ProviderEvent(
        provider="ses",
        provider_message_id=MAIL["messageId"],
        kind="bounced",
        address="alice@example.com",
        detail="Permanent/General: smtp; 550 5.1.1 user unknown",
        at=dt.datetime(2026, 1, 2, 3, 1, tzinfo=UTC),
        message_id="<n1.email@notify.example.com>",
        event_id="22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
    )
    assert fetcher.urls == [CERT_URL]


async def test_a_subject_is_part_of_the_signed_string_and_certs_are_cached() -> None:
    fetcher = Fetcher()
    verifier = SnsVerifier(fetcher, topic_arns=[TOPIC])
    signed = _sns_sign(_notification(BOUNCE, Subject="Amazon SES Email Event Notification"))
    await verifier.verify(json.dumps(signed), now=NOW)
    await verifier.verify(json.dumps(_sns_sign(_notification(BOUNCE))), now=NOW)
    assert fetcher.urls == [CERT_URL]  # fetched once, then cached
    with pytest.raises(Unauthenticated):
        await verifier.verify(json.dumps({**signed, "Subject": "Changed"}), now=NOW)


async def test_a_flipped_byte_in_the_sns_message_fails() -> None:
    signed = _sns_sign(_notification(BOUNCE))
    message = signed["Message"]
    i = message.index("Permanent")
    tampered = {**signed, "Message": message[:i] + "Transient" + message[i + 9 :]}
    with pytest.raises(Unauthenticated, match="does not verify"):
        await SnsVerifier(Fetcher(), topic_arns=[TOPIC]).verify(json.dumps(tampered), now=NOW)


async def test_a_subscription_confirmation_returns_its_subscribe_url() -> None:
    url = (
        "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription"
        f"&TopicArn={TOPIC}&Token=2336412f37"
    )
    confirmation = {
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37",
        "TopicArn": TOPIC,
        "Message": f"You have chosen to subscribe to the topic {TOPIC}.",
        "SubscribeURL": url,
        "Timestamp": "2026-01-02T03:04:00.000Z",
    }
    message = await SnsVerifier(Fetcher(), topic_arns=[TOPIC]).verify(
        json.dumps(_sns_sign(confirmation)), now=NOW
    )
    assert message.type == "SubscriptionConfirmation"
    assert message.subscribe_url == url
    assert parse_ses_events(message) == []


@pytest.mark.parametrize(
    "cert_url",
    [
        "https://sns.eu-west-1.amazonaws.com.evil.example/cert.pem",
        "http://sns.eu-west-1.amazonaws.com/cert.pem",
        "https://evil.example/sns.eu-west-1.amazonaws.com.pem",
        "https://user@sns.eu-west-1.amazonaws.com/cert.pem",
    ],
)
async def test_a_certificate_off_sns_hosts_is_never_fetched(cert_url: str) -> None:
    fetcher = Fetcher()
    signed = {**_sns_sign(_notification(BOUNCE)), "SigningCertURL": cert_url}
    with pytest.raises(Unauthenticated, match="not on an SNS host"):
        await SnsVerifier(fetcher, topic_arns=[TOPIC]).verify(json.dumps(signed), now=NOW)
    assert fetcher.urls == []


async def test_a_certificate_from_another_key_fails() -> None:
    other = _certificate(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    with pytest.raises(Unauthenticated, match="does not verify"):
        await SnsVerifier(Fetcher(other), topic_arns=[TOPIC]).verify(
            json.dumps(_sns_sign(_notification(BOUNCE))), now=NOW
        )


async def test_an_expired_certificate_fails() -> None:
    with pytest.raises(Unauthenticated, match="not valid now"):
        await SnsVerifier(Fetcher(), topic_arns=[TOPIC]).verify(
            json.dumps(_sns_sign(_notification(BOUNCE))), now=NOW + dt.timedelta(days=31)
        )


async def test_an_unknown_signature_version_or_topic_fails() -> None:
    signed = {**_sns_sign(_notification(BOUNCE)), "SignatureVersion": "3"}
    with pytest.raises(Unauthenticated, match="SignatureVersion"):
        await SnsVerifier(Fetcher(), topic_arns=[TOPIC]).verify(json.dumps(signed), now=NOW)
    with pytest.raises(Unauthenticated, match="topic"):
        await SnsVerifier(Fetcher(), topic_arns=["arn:aws:sns:eu-west-1:1:other"]).verify(
            json.dumps(_sns_sign(_notification(BOUNCE))), now=NOW
        )


def test_a_verifier_without_topics_cannot_be_made() -> None:
    with pytest.raises(ValueError, match="topic"):
        SnsVerifier(Fetcher(), topic_arns=[])


def _kinds(event: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(e.kind, e.address, e.detail) for e in parse_ses_event(event)]


def test_ses_events_map_to_kinds() -> None:
    transient = {**BOUNCE, "bounce": {**BOUNCE["bounce"], "bounceType": "Transient"}}
    assert _kinds(transient)[0][0] == "dropped"
    complaint = {
        "notificationType": "Complaint",
        "mail": MAIL,
        "complaint": {
            "complainedRecipients": [{"emailAddress": "alice@example.com"}],
            "complaintFeedbackType": "abuse",
            "timestamp": "2026-01-02T03:05:00Z",
        },
    }
    assert _kinds(complaint) == [("complained", "alice@example.com", "abuse")]
    delivery = {
        "eventType": "Delivery",
        "mail": MAIL,
        "delivery": {
            "timestamp": "2026-01-02T03:00:02.000Z",
            "recipients": ["alice@example.com"],
            "smtpResponse": "250 2.6.0 Message received",
        },
    }
    assert _kinds(delivery) == [("delivered", "alice@example.com", "250 2.6.0 Message received")]
    opened = {"eventType": "Open", "mail": MAIL, "open": {"timestamp": "2026-01-02T04:00:00Z"}}
    assert _kinds(opened) == [("opened", "alice@example.com", "")]
    click = {
        "eventType": "Click",
        "mail": MAIL,
        "click": {"timestamp": "2026-01-02T04:01:00Z", "link": "https://example.com/r"},
    }
    assert _kinds(click) == [("clicked", "alice@example.com", "https://example.com/r")]
    delay = {
        "eventType": "DeliveryDelay",
        "mail": MAIL,
        "deliveryDelay": {
            "timestamp": "2026-01-02T04:02:00Z",
            "delayType": "MailboxFull",
            "delayedRecipients": [{"emailAddress": "alice@example.com", "status": "4.2.2"}],
        },
    }
    assert _kinds(delay) == [("deferred", "alice@example.com", "MailboxFull: 4.2.2")]
    assert _kinds({"eventType": "Send", "mail": MAIL, "send": {}}) == []


async def test_a_notification_that_is_not_an_ses_event_is_invalid() -> None:
    signed = _sns_sign({**_notification(BOUNCE), "Message": "hello"})
    message = await SnsVerifier(Fetcher(), topic_arns=[TOPIC]).verify(json.dumps(signed), now=NOW)
    with pytest.raises(InvalidArgument):
        parse_ses_events(message)
