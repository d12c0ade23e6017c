"""Tracking tokens and the HTML rewriting, pure."""

from __future__ import annotations

import base64
import re

import pytest

from delivery_svc.tracking import (
    append_pixel,
    click_token,
    click_url,
    normalise_target,
    open_pixel_url,
    open_token,
    read_click_token,
    read_open_token,
    rewrite_links,
    track_html,
)
from notify_core.errors import InvalidArgument
from preference_svc.unsubscribe import make_token

SECRET = "tracking-secret-0123456789abcdef"
PUBLIC = "https://notify.example.com/"
DELIVERY = "0b7f3c2e-8d4c-4c1e-9a57-0f5f0d7b1c11"
CLICK_RE = re.compile(r"https://notify\.example\.com/t/c/([A-Za-z0-9_-]+)")


def targets(html: str) -> list[str]:
    return [read_click_token(SECRET, t).url for t in CLICK_RE.findall(html)]


# --- tokens ------------------------------------------------------------------------------


def test_an_open_pixel_url_carries_the_delivery() -> None:
    url = open_pixel_url(SECRET, PUBLIC, DELIVERY)
    assert url.startswith("https://notify.example.com/t/o/") and url.endswith(".gif")
    token = url.removeprefix("https://notify.example.com/t/o/").removesuffix(".gif")
    assert read_open_token(SECRET, token) == DELIVERY


def test_a_click_url_carries_the_delivery_and_exactly_the_target() -> None:
    target = "https://shop.example/p?id=42&ref=mail#top"
    url = click_url(SECRET, "https://notify.example.com/base", DELIVERY, target)
    assert url.startswith("https://notify.example.com/base/t/c/")
    claim = read_click_token(SECRET, url.rsplit("/", 1)[1])
    assert (claim.delivery_id, claim.url) == (DELIVERY, target)


def flip(token: str, at: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return token[:at] + alphabet[(alphabet.index(token[at]) + 1) % 64] + token[at + 1 :]


@pytest.mark.parametrize("at", [0, 3, 10, 40, -2])
def test_any_changed_character_is_refused(at: int) -> None:
    token = click_token(SECRET, DELIVERY, "https://shop.example/p")
    with pytest.raises(InvalidArgument) as caught:
        read_click_token(SECRET, flip(token, at % len(token)))
    assert caught.value.field == "token"


def test_a_forged_target_is_refused() -> None:
    token = click_token(SECRET, DELIVERY, "https://a.example/")
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    forged = raw.replace(b"https://a.example/", b"https://e.example/")
    token = base64.urlsafe_b64encode(bytes(forged)).rstrip(b"=").decode()
    with pytest.raises(InvalidArgument, match="bad signature"):
        read_click_token(SECRET, token)


def test_tokens_are_not_interchangeable() -> None:
    with pytest.raises(InvalidArgument, match="bad signature"):
        read_click_token(SECRET, open_token(SECRET, DELIVERY))
    with pytest.raises(InvalidArgument, match="bad signature"):
        read_open_token(SECRET, click_token(SECRET, DELIVERY, "https://a.example/"))
    with pytest.raises(InvalidArgument, match="bad signature"):
        read_open_token("another-secret-0123456789abcdef", open_token(SECRET, DELIVERY))
    unsubscribe = make_token(SECRET, "u1", "comment", "email", 2**31)
    with pytest.raises(InvalidArgument):
        read_open_token(SECRET, unsubscribe)


@pytest.mark.parametrize("token", ["", "!!!", "AQ", "A" * 5000, open_token(SECRET, "d") + "="])
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        read_open_token(SECRET, token)
    assert caught.value.field == "token"


@pytest.mark.parametrize(
    "target", ["javascript:alert(1)", "mailto:a@b.example", "/relative", "ftp://x/", "https://"]
)
def test_only_absolute_http_targets_are_signed(target: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        click_url(SECRET, PUBLIC, DELIVERY, target)
    assert caught.value.field == "target_url"


def test_targets_are_signed_as_a_browser_would_request_them() -> None:
    assert normalise_target(" https://bücher.example/é ü?q=a b ") == (
        "https://xn--bcher-kva.example/%C3%A9%20%C3%BC?q=a%20b"
    )
    assert normalise_target("HTTPS://x.example/a%20b?c=%2F") == "https://x.example/a%20b?c=%2F"
    with pytest.raises(InvalidArgument):
        normalise_target("https://x.example\\@evil.example/")


# --- rewriting ---------------------------------------------------------------------------


def test_double_single_and_unquoted_hrefs_are_rewritten() -> None:
    html = (
        '<a href="https://a.example/1">one</a>'
        "<a href='https://b.example/2'>two</a>"
        "<a class=x href=https://c.example/3>three</a>"
    )
    out = rewrite_links(SECRET, html, PUBLIC, DELIVERY)
    assert targets(out) == ["https://a.example/1", "https://b.example/2", "https://c.example/3"]
    assert out.count('href="https://notify.example.com/t/c/') == 3
    assert ">one</a>" in out and ">two</a>" in out and 'class=x href="' in out


def test_uppercase_tags_and_attributes_are_rewritten() -> None:
    out = rewrite_links(SECRET, '<A  HREF = "HTTP://Up.example/X">x</A>', PUBLIC, DELIVERY)
    assert targets(out) == ["http://Up.example/X"]
    assert out.startswith('<A  HREF = "https://notify.example.com/t/c/')


def test_entities_in_a_href_are_decoded_before_signing() -> None:
    out = rewrite_links(SECRET, '<a href="https://a.example/?x=1&amp;y=2">x</a>', PUBLIC, DELIVERY)
    assert targets(out) == ["https://a.example/?x=1&y=2"]


@pytest.mark.parametrize(
    "html",
    [
        '<a href="mailto:someone@example.com">mail</a>',
        '<a href="tel:+15550100">call</a>',
        '<a href="#section">jump</a>',
        '<a href="/relative/path">rel</a>',
        '<a href="javascript:void(0)">js</a>',
        '<a name="anchor">no href</a>',
        '<a href="https://notify.example.com/unsubscribe?token=abc">ours</a>',
        '<a href="https://lists.example/unsubscribe/9">theirs</a>',
        '<a data-notrack href="https://a.example/">opted out</a>',
        '<!-- <a href="https://a.example/">commented</a> -->',
        "<script>var s = '<a href=\"https://a.example/\">';</script>",
        '<img src="https://a.example/i.png"><link href="https://a.example/s.css">',
    ],
)
def test_links_that_are_not_tracked_are_left_exactly_as_they_are(html: str) -> None:
    assert rewrite_links(SECRET, html, PUBLIC, DELIVERY) == html


def test_an_href_lookalike_in_another_attribute_is_not_touched() -> None:
    html = '<a title="href=https://fake.example/" href="https://real.example/">x</a>'
    out = rewrite_links(SECRET, html, PUBLIC, DELIVERY)
    assert targets(out) == ["https://real.example/"]
    assert 'title="href=https://fake.example/"' in out


def test_positions_hold_over_many_lines_and_mixed_links() -> None:
    html = (
        "<html>\n<body>\n  <p>Hello</p>\n"
        '  <a href="mailto:x@example.com">m</a> <a href="https://a.example/1">1</a>\n'
        "\r\n<div>\n<a\nhref='https://b.example/2'\n>2</a></div>\n</body>\n</html>\n"
    )
    out = rewrite_links(SECRET, html, PUBLIC, DELIVERY)
    assert targets(out) == ["https://a.example/1", "https://b.example/2"]
    assert CLICK_RE.sub("X", out) == html.replace("https://a.example/1", "X").replace(
        "'https://b.example/2'", '"X"'
    )


def test_the_pixel_goes_before_the_last_body_end() -> None:
    out = append_pixel(SECRET, "<html><body><p>x</p></BODY ></html>", PUBLIC, DELIVERY)
    assert re.fullmatch(
        r'<html><body><p>x</p><img src="https://notify\.example\.com/t/o/[A-Za-z0-9_-]+\.gif"'
        r"[^>]*/></BODY ></html>",
        out,
    )
    assert append_pixel(SECRET, "<p>no body</p>", PUBLIC, DELIVERY).startswith("<p>no body</p><img")


def test_track_html_rewrites_and_adds_the_pixel() -> None:
    out = track_html(SECRET, '<body><a href="https://a.example/">a</a></body>', PUBLIC, DELIVERY)
    assert targets(out) == ["https://a.example/"]
    [pixel] = re.findall(r"/t/o/([A-Za-z0-9_-]+)\.gif", out)
    assert read_open_token(SECRET, pixel) == DELIVERY
