"""One-click unsubscribe tokens, links and RFC 8058 headers (pure)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from notify_core.constants import MAX_UNSUBSCRIBE_TOKEN, UNSUBSCRIBE_TTL_SECONDS
from notify_core.domain import CHANNELS
from notify_core.errors import InvalidArgument
from preference_svc.unsubscribe import (
    ONE_CLICK,
    UnsubscribeClaim,
    list_unsubscribe_headers,
    make_token,
    parse_link_request,
    read_token,
    unsubscribe_url,
)
from preference_svc.unsubscribe_pages import confirm_page, done_page

SECRET = "unsubscribe-secret-0123456789"
NOW = 1_700_000_000
LATER = NOW + 3600


def _raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _refused(token: str, now: float = NOW, secret: str = SECRET) -> str:
    with pytest.raises(InvalidArgument) as info:
        read_token(secret, token, now)
    assert info.value.field == "token"
    return info.value.message


def test_a_token_round_trips_its_claim() -> None:
    token = make_token(SECRET, "user-1", "comment", "email", LATER)
    assert read_token(SECRET, token, NOW) == UnsubscribeClaim("user-1", "comment", "email", LATER)


def test_unicode_fields_and_every_channel_round_trip() -> None:
    token = make_token(SECRET, "usér/ø 1", "billing.invoice", "*", LATER)
    claim = read_token(SECRET, token, NOW)
    assert (claim.user_id, claim.type, claim.channel) == ("usér/ø 1", "billing.invoice", "*")
    assert claim.channels == CHANNELS
    assert read_token(SECRET, make_token(SECRET, "u", "t", "sms", LATER), NOW).channels == ("sms",)


def test_the_token_is_url_safe_and_compact() -> None:
    token = make_token(SECRET, "user-42", "comment", "email", LATER)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert len(token) < 100
    assert _raw(token)[0] == 2  # the version byte leads


def test_every_altered_byte_is_a_bad_signature() -> None:
    raw = _raw(make_token(SECRET, "user-1", "comment", "email", LATER))
    for at in range(1, len(raw)):  # byte 0 is the version: see the next test
        for flip in (0x01, 0x80):
            tampered = bytearray(raw)
            tampered[at] ^= flip
            assert "bad signature" in _refused(_encode(bytes(tampered))), (at, flip)


def test_an_altered_version_byte_is_refused_as_unsupported() -> None:
    raw = bytearray(_raw(make_token(SECRET, "user-1", "comment", "email", LATER)))
    raw[0] = 3
    assert "unsupported version 3" in _refused(_encode(bytes(raw)))


def test_every_altered_character_is_refused() -> None:
    token = make_token(SECRET, "user-1", "comment", "email", LATER)
    for at, char in enumerate(token):
        other = "A" if char != "A" else "B"
        _refused(token[:at] + other + token[at + 1 :])


def test_another_secret_or_a_spliced_payload_is_a_bad_signature() -> None:
    token = make_token(SECRET, "user-1", "comment", "email", LATER)
    assert "bad signature" in _refused(token, secret="another-secret-0123456789")
    mine = _raw(make_token(SECRET, "attacker", "comment", "email", LATER))
    theirs = _raw(token)
    spliced = mine[:-32] + theirs[-32:]
    assert "bad signature" in _refused(_encode(spliced))


def test_an_expired_token_is_refused_with_when() -> None:
    token = make_token(SECRET, "user-1", "comment", "email", NOW)
    assert read_token(SECRET, token, NOW - 1).expires_at == NOW
    message = _refused(token, now=NOW)
    assert "expired at 2023-11-14T22:13:20Z" in message
    assert "bad signature" not in message


def test_a_forged_expired_token_says_bad_signature_not_expired() -> None:
    token = make_token("another-secret-0123456789", "user-1", "comment", "email", NOW - 10)
    assert "bad signature" in _refused(token)


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        ("", "too short"),
        ("abc", "too short"),
        ("not base64!", "base64"),
        ("a" * (MAX_UNSUBSCRIBE_TOKEN + 1), f"longer than {MAX_UNSUBSCRIBE_TOKEN}"),
        (_encode(b"\x01" + b"\x00" * 20), "too short"),
    ],
)
def test_a_malformed_token_says_so(token: str, problem: str) -> None:
    message = _refused(token)
    assert message.startswith("token: is malformed")
    assert problem in message


def test_a_padded_token_is_malformed() -> None:
    token = make_token(SECRET, "user-1", "comment", "email", LATER)
    assert len(token) % 4  # has padding to add
    assert "without padding" in _refused(token + "=" * (-len(token) % 4))


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("", "comment", "email"), "user_id"),
        (("u", "", "email"), "type"),
        (("u", "x" * 51, "email"), "type"),
        (("u", "comment", "fax"), "channel"),
    ],
)
def test_make_token_refuses_bad_fields(args: tuple[str, str, str], field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        make_token(SECRET, *args, LATER)
    assert info.value.field == field


def test_unsubscribe_url_joins_the_public_base() -> None:
    assert (
        unsubscribe_url("https://notify.example.com/", "abc-_1")
        == "https://notify.example.com/unsubscribe?token=abc-_1"
    )
    assert (
        unsubscribe_url("https://example.com/notify", "t")
        == "https://example.com/notify/unsubscribe?token=t"
    )


def test_headers_are_exactly_rfc_8058() -> None:
    url = "https://notify.example.com/unsubscribe?token=abc"
    assert list_unsubscribe_headers(url) == {
        "List-Unsubscribe": "<https://notify.example.com/unsubscribe?token=abc>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert ONE_CLICK == "List-Unsubscribe=One-Click"


def test_headers_list_a_mailto_too() -> None:
    url = "https://notify.example.com/unsubscribe?token=abc"
    expected = "<mailto:leave@example.com?subject=unsubscribe>, <" + url + ">"
    for mailto in (
        "leave@example.com?subject=unsubscribe",
        "mailto:leave@example.com?subject=unsubscribe",
    ):
        headers = list_unsubscribe_headers(url, mailto)
        assert headers["List-Unsubscribe"] == expected
        assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


@pytest.mark.parametrize(
    ("url", "mailto", "field"),
    [
        ("https://x.example/u?t=a\r\nBcc: victim@example.com", None, "url"),
        ("https://x.example/u?t=a>, <https://evil.example", None, "url"),
        ("javascript:alert(1)", None, "url"),
        ("https://x.example/u", "a@example.com>\r\nX: y", "mailto"),
        ("https://x.example/ü", None, "url"),
    ],
)
def test_headers_refuse_what_would_break_the_header(
    url: str, mailto: str | None, field: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        list_unsubscribe_headers(url, mailto)
    assert info.value.field == field


def test_a_link_request_defaults_to_email_and_thirty_days() -> None:
    link = parse_link_request({"type": "comment"})
    assert (link.type, link.channel, link.ttl_seconds) == (
        "comment",
        "email",
        UNSUBSCRIBE_TTL_SECONDS,
    )
    assert UNSUBSCRIBE_TTL_SECONDS == 30 * 24 * 3600
    link = parse_link_request({"type": "comment", "channel": "*", "ttl_seconds": 60})
    assert (link.channel, link.ttl_seconds) == ("*", 60)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ({}, "type"),
        ({"type": 3}, "type"),
        ({"type": "comment", "channel": "fax"}, "channel"),
        ({"type": "comment", "ttl_seconds": 0}, "ttl_seconds"),
        ({"type": "comment", "ttl_seconds": True}, "ttl_seconds"),
        ({"type": "comment", "ttl_seconds": 10**9}, "ttl_seconds"),
        ({"type": "comment", "user_id": "x"}, "user_id"),
    ],
)
def test_a_bad_link_request_names_the_field(body: Any, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_link_request(body)
    assert info.value.field == field


def test_pages_escape_the_type_and_post_to_the_same_token() -> None:
    claim = UnsubscribeClaim("u", "<script>x</script>", "email", LATER)
    page = bytes(confirm_page(claim, "tok-_1").body).decode()
    assert "<script>x</script>" not in page and "&lt;script&gt;" in page
    assert "by email" in page
    assert '<form method="post" action="?token=tok-_1">' in page
    done = bytes(done_page(UnsubscribeClaim("u", "comment", "*", LATER)).body).decode()
    assert "<strong>comment</strong> notifications on any channel" in done
