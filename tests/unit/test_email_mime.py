"""The MIME form of an email: structure, encodings, and refusal of header injection."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
from typing import Any

import pytest

from delivery_svc.providers.base import EmailMessage
from delivery_svc.transport.email_mime import envelope_address, mime_bytes
from notify_core.errors import PermanentDeliveryError

NOW = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
LONG_URL = "https://notify.example.com/unsubscribe?token=" + "A1b2C3d4" * 40
MESSAGE = EmailMessage(
    to="Jürgen Müller <juergen@bücher.example>",
    sender='"Notify, Inc." <no-reply@notify.example.com>',
    subject="Grüße — your weekly digest is ready and waiting for you to read it today",
    html="<p>Grüße</p>",
    text="Grüße",
    message_id="n1.email@notify.example.com",
    idempotency_key="n1:email",
    headers={
        "List-Unsubscribe": f"<{LONG_URL}>, <mailto:unsubscribe@notify.example.com>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    },
    reply_to="support@notify.example.com",
)


def _parse(raw: bytes) -> Any:
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_the_message_round_trips_through_a_parser() -> None:
    raw = mime_bytes(MESSAGE, provider="smtp", now=NOW)
    raw.decode("ascii")  # 7-bit clean: any server takes it
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    msg = _parse(raw)
    assert msg["Message-ID"] == "<n1.email@notify.example.com>"
    assert msg["Date"] == "Wed, 04 Mar 2026 05:06:07 +0000"
    assert msg["Subject"] == MESSAGE.subject
    assert msg["To"].addresses[0].display_name == "Jürgen Müller"
    assert msg["To"].addresses[0].domain == "xn--bcher-kva.example"
    assert msg["From"].addresses[0].display_name == "Notify, Inc."
    assert msg["Reply-To"] == "support@notify.example.com"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg.get_body(("html",)).get_content().strip() == "<p>Grüße</p>"


def test_a_long_list_unsubscribe_url_is_neither_encoded_nor_broken() -> None:
    raw = mime_bytes(MESSAGE, provider="smtp", now=NOW)
    assert f"List-Unsubscribe: <{LONG_URL}>,".encode() in raw
    assert b"=?utf-8?" not in raw.split(b"List-Unsubscribe:", 1)[1].split(b"\r\n")[0]
    msg = _parse(raw)
    assert msg["List-Unsubscribe"] == MESSAGE.headers["List-Unsubscribe"]
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))


@pytest.mark.parametrize(
    "change",
    [
        {"subject": "Hello\r\nBcc: victim@example.com"},
        {"subject": "Hello\nBcc: victim@example.com"},
        {"to": "alice@example.com\r\nBcc: victim@example.com"},
        {"sender": "a@example.com\rX: y"},
        {"reply_to": "a@example.com\nX: y"},
        {"headers": {"X-Tag": "a\r\nBcc: victim@example.com"}},
        {"headers": {"X-Bad\r\nBcc": "victim@example.com"}},
        {"headers": {"Bcc": "victim@example.com"}},
        {"message_id": "<a@b>\r\nBcc: victim@example.com"},
    ],
)
def test_header_injection_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(PermanentDeliveryError) as info:
        mime_bytes(dataclasses.replace(MESSAGE, **change), provider="smtp")
    assert info.value.provider == "smtp"


@pytest.mark.parametrize(
    "to", ["not-an-address", "a@example.com, b@example.com", "jürgen@example.com", "<@x>", "a@"]
)
def test_unusable_recipients_are_refused(to: str) -> None:
    with pytest.raises(PermanentDeliveryError):
        mime_bytes(dataclasses.replace(MESSAGE, to=to), provider="smtp")


def test_envelope_addresses_are_bare_and_ascii() -> None:
    assert envelope_address("smtp", "to", MESSAGE.to) == "juergen@xn--bcher-kva.example"
    assert envelope_address("smtp", "sender", MESSAGE.sender) == "no-reply@notify.example.com"
