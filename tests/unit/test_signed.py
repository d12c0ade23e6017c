"""Signed tokens: the format, and the links already sent in the version 1 layouts."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from delivery_svc.tracking import (
    click_token,
    open_token,
    read_click_token,
    read_open_token,
)
from notify_core.errors import InvalidArgument
from notify_core.signed import NEVER, V1, Verified, sign, verify
from preference_svc.unsubscribe import UnsubscribeClaim, make_token, read_token

SECRET = "legacy-secret-0123456789abcdef"
DELIVERY = "0b7f3c2e-8d4c-4c1e-9a57-0f5f0d7b1c11"
TARGET = "https://shop.example/p?id=42&ref=mail#top"

# Made by the version 1 code (make_token, open_token, click_token) before this format,
# with SECRET: links in mailboxes look like these and must keep working.
V1_UNSUBSCRIBE = (
    "AQAAAAB3NZQAAAZ1c2VyLTEAB2NvbW1lbnQABWVtYWlsPvkoi1asLRj2ZvVAS69D_IRMR5kSkTj0dx9YGZhoqoQ"
)
"""user-1, comment, email, until 2_000_000_000."""
V1_UNSUBSCRIBE_ALL = (
    "AQAAAAB3NZQAAAp1c8Opci_DuCAxAA9iaWxsaW5nLmludm9pY2UAASqu4wTC_SZDaK1A"
    "A1nOGHh-nwFTXzMlE2LriFEM0NdZqA"
)
"""usér/ø 1, billing.invoice, every channel, until 2_000_000_000."""
V1_UNSUBSCRIBE_EXPIRED = (
    "AQAAAABlU_EAAAZ1c2VyLTEAB2NvbW1lbnQABWVtYWlsT03V38JCcmHNzC7RVKyONwNE5zdRCtoXsm3U88BJ_ZQ"
)
"""user-1, comment, email, until 1_700_000_000."""
V1_OPEN = (
    "AQAkMGI3ZjNjMmUtOGQ0Yy00YzFlLTlhNTctMGY1ZjBkN2IxYzExp1gL2pncDbHs2J"
    "lQTMeATl7WVy2EU8DRV1JwGUl_BOs"
)
V1_CLICK = (
    "AQAkMGI3ZjNjMmUtOGQ0Yy00YzFlLTlhNTctMGY1ZjBkN2IxYzExAClodHRwczovL3Nob3AuZXhhbXBsZS9wP2lkPTQy"
    "JnJlZj1tYWlsI3RvcCDxxrrILPbY4F5agzRFXQrxZm93lk4fpCI7RuBfWO6A"
)
NOW = 1_800_000_000


def _raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _refused(call: Callable[..., object], *args: object) -> str:
    with pytest.raises(InvalidArgument) as info:
        call(*args)
    assert info.value.field == "token"
    return info.value.message


# --- the links already sent -------------------------------------------------------------


def test_a_version_1_unsubscribe_link_still_works() -> None:
    assert read_token(SECRET, V1_UNSUBSCRIBE, NOW) == UnsubscribeClaim(
        "user-1", "comment", "email", 2_000_000_000
    )
    claim = read_token(SECRET, V1_UNSUBSCRIBE_ALL, NOW)
    assert (claim.user_id, claim.type, claim.channel) == ("usér/ø 1", "billing.invoice", "*")


def test_a_version_1_unsubscribe_link_still_expires_and_is_still_signed() -> None:
    assert "expired at 2023-11-14T22:13:20Z" in _refused(
        read_token, SECRET, V1_UNSUBSCRIBE_EXPIRED, NOW
    )
    assert "bad signature" in _refused(read_token, "another-secret-0123456789", V1_UNSUBSCRIBE, NOW)
    raw = bytearray(_raw(V1_UNSUBSCRIBE))
    raw[12] ^= 0x01
    assert "bad signature" in _refused(read_token, SECRET, _encode(bytes(raw)), NOW)


def test_version_1_tracking_links_still_count() -> None:
    assert read_open_token(SECRET, V1_OPEN) == DELIVERY
    claim = read_click_token(SECRET, V1_CLICK)
    assert (claim.delivery_id, claim.url) == (DELIVERY, TARGET)
    assert "bad signature" in _refused(read_open_token, "another-secret-0123456789", V1_OPEN)
    assert "bad signature" in _refused(read_click_token, SECRET, V1_OPEN)


def test_version_1_layouts_are_not_interchangeable() -> None:
    assert "bad signature" in _refused(read_open_token, SECRET, V1_UNSUBSCRIBE)
    assert "bad signature" in _refused(read_token, SECRET, V1_CLICK, NOW)


def test_new_links_use_version_2() -> None:
    for token in (
        make_token(SECRET, "user-1", "comment", "email", 2_000_000_000),
        open_token(SECRET, DELIVERY),
        click_token(SECRET, DELIVERY, TARGET),
    ):
        assert _raw(token)[0] == 2
    assert _raw(make_token(SECRET, "user-1", "comment", "email", 2_000_000_000)) != _raw(
        V1_UNSUBSCRIBE
    )


# --- the format -------------------------------------------------------------------------


def test_a_token_round_trips_its_fields_and_expiry() -> None:
    token = sign(SECRET, "test", ("a", "", "ü" * 3), 2_000_000_000)
    assert verify(SECRET, "test", token, count=3, now=NOW, max_chars=100) == Verified(
        ("a", "", "ü" * 3), 2_000_000_000
    )
    lasting = sign(SECRET, "test", ("a",))
    assert verify(SECRET, "test", lasting, count=1, now=NOW, max_chars=100).expires_at is None
    assert int.from_bytes(_raw(lasting)[1:9], "big") == NEVER


def test_the_purpose_and_the_field_count_are_part_of_the_token() -> None:
    token = sign(SECRET, "test", ("a", "b"))
    assert "bad signature" in _refused(
        lambda: verify(SECRET, "other", token, count=2, now=NOW, max_chars=100)
    )
    assert "trailing bytes" in _refused(
        lambda: verify(SECRET, "test", token, count=1, now=NOW, max_chars=100)
    )
    assert "truncated" in _refused(
        lambda: verify(SECRET, "test", token, count=3, now=NOW, max_chars=100)
    )


def test_version_1_is_read_only_where_it_was_issued() -> None:
    assert "unsupported version 1" in _refused(
        lambda: verify(SECRET, "track-open", V1_OPEN, count=1, now=None, max_chars=4096)
    )
    verified = verify(
        SECRET, "track-open", V1_OPEN, count=1, now=None, max_chars=4096, v1=V1.LASTING
    )
    assert verified == Verified((DELIVERY,), None)


def test_an_expired_token_is_refused_only_after_its_signature() -> None:
    token = sign(SECRET, "test", ("a",), NOW)
    assert verify(SECRET, "test", token, count=1, now=NOW - 1, max_chars=100).expires_at == NOW
    assert "expired at" in _refused(
        lambda: verify(SECRET, "test", token, count=1, now=NOW, max_chars=100)
    )
    assert "bad signature" in _refused(
        lambda: verify("other-secret-0123456789", "test", token, count=1, now=NOW, max_chars=100)
    )


@pytest.mark.parametrize("expires_at", [-1, NEVER + 1])
def test_an_expiry_outside_8_bytes_is_refused(expires_at: int) -> None:
    with pytest.raises(ValueError, match="expires_at"):
        sign(SECRET, "test", ("a",), expires_at)
