"""Messages with plain ASCII headers are written directly: the same message as the stdlib
builder makes (headers, parts, decoded content), byte for byte apart from the boundary
where both take 7bit; anything else still goes through the stdlib."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import re
from typing import Any

import pytest

from delivery_svc.providers.base import EmailMessage
from delivery_svc.transport.email_mime import (
    POLICY,
    _plain_mime,
    build_mime,
    envelope_address,
    mime_bytes,
)
from notify_core.errors import PermanentDeliveryError

NOW = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
URL = "https://notify.example.com/unsubscribe?token=" + "A1b2C3d4" * 40
PLAIN = EmailMessage(
    to="alice@example.com",
    sender="Notify <no-reply@notify.example.com>",
    subject="Your daily digest: 12 new notifications, from 3 people you follow and more",
    html="<p>Hello</p>",
    text="Hello",
    message_id="d1.digest@notify.example.com",
    idempotency_key="d1",
    headers={
        "List-Unsubscribe": f"<{URL}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    },
)
_BOUNDARY = re.compile(rb"===============\d+==")


def same(a: bytes, b: bytes) -> bool:
    """Equal but for the (random) boundary."""
    return _BOUNDARY.sub(b"B", a) == _BOUNDARY.sub(b"B", b)


def structure(raw: bytes) -> Any:
    """Headers (boundary aside), and per part its headers but the transfer encoding, and
    its decoded content."""
    parsed = email.message_from_bytes(_BOUNDARY.sub(b"B", raw), policy=email.policy.compat32)
    parts = [
        (
            [(k, v) for k, v in part.items() if k != "Content-Transfer-Encoding"],
            part.get_payload(decode=True),
        )
        for part in parsed.get_payload()
    ]
    return list(parsed.items()), parts


def stdlib(message: EmailMessage) -> bytes:
    return build_mime(message, provider="smtp", now=NOW).as_bytes(policy=POLICY)


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"reply_to": "support@notify.example.com", "to": "Alice Smith <a.smith@mail.example.org>"},
        {"text": "short\nlines\n", "html": "<p>" + "x" * 300 + "</p>"},
        {"text": "a = b, and trailing space \nnext", "html": "<a href='x?a=1&b=2'>x</a>"},
        {"text": "Grüße — 日本語", "html": "<p>Grüße</p>\r\n<p>two</p>"},
        {"text": ".starts with a dot\r\n.\r\nand a lone dot", "html": ""},
        {"text": "", "subject": ""},
        {"text": "tab\there\x01control", "headers": {}},
    ],
)
def test_written_directly_as_the_stdlib_writes_it(change: dict[str, Any]) -> None:
    message = dataclasses.replace(PLAIN, **change)
    direct = _plain_mime(message, "smtp", NOW)
    assert direct is not None
    assert same(direct, mime_bytes(message, provider="smtp", now=NOW))
    theirs = stdlib(message)
    assert structure(direct) == structure(theirs)
    if b"quoted-printable" not in theirs and b"base64" not in theirs:
        assert same(direct, theirs)
    assert all(len(line) <= 998 for line in direct.split(b"\r\n"))
    for body_line in direct.split(b"\r\n\r\n", 1)[1].split(b"\r\n"):
        assert len(body_line) <= 78
    assert b"\n" not in direct.replace(b"\r\n", b"")


@pytest.mark.parametrize(
    "change",
    [
        {"subject": "Grüße"},
        {"sender": '"Notify, Inc." <no-reply@notify.example.com>'},
        {"to": "Jürgen <j@example.com>"},
        {"to": "j@bücher.example"},
        {"headers": {"X-Name": "Jürgen"}},
    ],
)
def test_other_headers_go_the_stdlib_way(change: dict[str, Any]) -> None:
    message = dataclasses.replace(PLAIN, **change)
    assert _plain_mime(message, "smtp", NOW) is None
    assert same(mime_bytes(message, provider="smtp", now=NOW), stdlib(message))


@pytest.mark.parametrize(
    "change",
    [
        {"subject": "Hi\r\nBcc: v@example.com"},
        {"to": "a@example.com\r\nBcc: v@example.com"},
        {"headers": {"X-Tag": "a\nBcc: v@example.com"}},
        {"headers": {"To": "v@example.com"}},
        {"message_id": "no-at-sign"},
        {"sender": "Notify Inc. <n@example.com>"},  # a '.' in a name wants quotes
    ],
)
def test_the_direct_way_refuses_what_the_stdlib_way_refuses(change: dict[str, Any]) -> None:
    with pytest.raises(PermanentDeliveryError):
        mime_bytes(dataclasses.replace(PLAIN, **change), provider="smtp")


@pytest.mark.parametrize(
    ("raw", "bare"),
    [
        ("alice@example.com", "alice@example.com"),
        (" Notify <no-reply@notify.example.com> ", "no-reply@notify.example.com"),
        ("<bob@example.com>", "bob@example.com"),
        ('"Notify, Inc." <n@example.com>', "n@example.com"),
        ("j@bücher.example", "j@xn--bcher-kva.example"),
    ],
)
def test_envelope_addresses(raw: str, bare: str) -> None:
    assert envelope_address("smtp", "to", raw) == bare
