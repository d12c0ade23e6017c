"""Template input checks, locale fallback chains, and the HTML-to-text converter."""

from __future__ import annotations

from typing import Any

import pytest

from notify_core.errors import InvalidArgument
from template_svc.text import html_to_text
from template_svc.validate import (
    check_locale,
    check_notification,
    locale_chain,
    parse_inline,
    parse_template,
)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (None, ""),
        ("", ""),
        ("fr", "fr"),
        ("FR", "fr"),
        ("fr_ca", "fr-CA"),
        ("fr-ca", "fr-CA"),
        ("zh-hant-tw", "zh-Hant-TW"),
        ("es-419", "es-419"),
    ],
)
def test_locales_are_stored_in_one_form(given: str | None, stored: str) -> None:
    assert check_locale(given) == stored


@pytest.mark.parametrize("bad", ["f", "french!", "fr--CA", "x" * 40, 42])
def test_bad_locales_are_refused(bad: Any) -> None:
    with pytest.raises(InvalidArgument) as info:
        check_locale(bad)
    assert info.value.field == "locale"


@pytest.mark.parametrize(
    ("locale", "chain"),
    [
        ("fr-CA", ["fr-CA", "fr", ""]),
        ("fr_ca", ["fr-CA", "fr", ""]),
        ("zh-Hant-TW", ["zh-Hant-TW", "zh-Hant", "zh", ""]),
        ("en", ["en", ""]),
        ("", [""]),
        (None, [""]),
        ("not a locale", [""]),
    ],
)
def test_locale_fallback_chain(locale: str | None, chain: list[str]) -> None:
    assert locale_chain(locale) == chain


@pytest.mark.parametrize(
    ("body", "channel", "field"),
    [
        ({"subject": "s"}, "email", "body"),
        ({"body": "   "}, "sms", "body"),
        ({"body": "<p>x</p>"}, "email", "subject"),
        ({"body": "x", "layout": "base"}, "sms", "layout"),
        ({"body": "{% block content %}{% endblock %}", "subject": "s"}, "layout", "subject"),
        ({"body": "x", "variables": "name"}, "sms", "variables"),
        ({"body": "x", "variables": ["ok", "not-ok"]}, "sms", "variables[1]"),
        ({"body": "x", "variables": ["a", "a"]}, "sms", "variables[1]"),
        ({"body": "x", "variables": ["notification"]}, "sms", "variables[0]"),
        ({"body": "x", "extra": 1}, "sms", "extra"),
        ({"body": "x"}, "fax", "channel"),
        ({"body": "x" * 300_000}, "sms", "body"),
    ],
)
def test_bad_template_bodies_name_the_field(body: dict[str, Any], channel: str, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_template(body, "welcome", channel)
    assert info.value.field == field


def test_bad_names_are_refused() -> None:
    for name in ["", "-lead", "with space", "x" * 101]:
        with pytest.raises(InvalidArgument) as info:
            parse_template({"body": "x"}, name, "sms")
        assert info.value.field == "name"


def test_a_good_template_is_parsed() -> None:
    t = parse_template(
        {"locale": "fr_ca", "subject": "S", "body": "<p/>", "layout": "base", "variables": ["a"]},
        "order.shipped",
        "email",
    )
    assert (t.name, t.channel, t.locale, t.layout, t.variables) == (
        "order.shipped",
        "email",
        "fr-CA",
        "base",
        ("a",),
    )


def test_inline_template_errors_are_named_under_template() -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_inline({"body": "<p>x</p>"}, "email", None)
    assert info.value.field == "template.subject"
    with pytest.raises(InvalidArgument) as info:
        check_notification({"title": 3})
    assert info.value.field == "notification.title"


def test_html_to_text() -> None:
    html = (
        "<html><head><title>T</title><style>p{color:red}</style></head><body>"
        "<h1>Hello\n   <b>Ann</b></h1>"
        '<p>Your order is <a href="https://x.test/o/1">here</a>.<br>Thanks &amp; bye</p>'
        '<p><a href="https://x.test">https://x.test</a> <a href="mailto:a@b.c">mail us</a></p>'
        "<ul><li>one</li><li>two<ol><li>a</li><li>b</li></ol></li></ul>"
        "<table><tr><td>A</td><td>B</td></tr><tr><td>C</td><td>D</td></tr></table>"
        "<pre>  x = 1\n  y</pre><hr><img src='logo.png' alt='Acme'>"
        "<script>alert(1)</script></body></html>"
    )
    assert html_to_text(html) == (
        "Hello Ann\n\n"
        "Your order is here (https://x.test/o/1).\nThanks & bye\n\n"
        "https://x.test mail us\n\n"
        "- one\n- two\n  1. a\n  2. b\n\n"
        "A B\nC D\n\n"
        "  x = 1\n  y\n\n"
        "----------------------------------------\nAcme\n"
    )


@pytest.mark.parametrize(
    ("channel", "part", "limit"),
    [("push", "subject", 100), ("push", "body", 1_000), ("sms", "body", 1_600)],
)
def test_push_and_sms_parts_are_bounded_and_the_error_names_the_part(
    channel: str, part: str, limit: int
) -> None:
    at_limit = {"body": "b", part: "x" * limit}
    assert getattr(parse_template(at_limit, "welcome", channel), part) == "x" * limit
    with pytest.raises(InvalidArgument) as info:
        parse_template({"body": "b", part: "x" * (limit + 1)}, "welcome", channel)
    assert info.value.field == part
    assert f"at most {limit} characters" in info.value.message
    assert f"got {limit + 1}" in info.value.message
    with pytest.raises(InvalidArgument) as info:
        parse_inline({"body": "b", part: "x" * (limit + 1)}, channel, None)
    assert info.value.field == f"template.{part}"


def test_an_sms_template_has_no_subject() -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_template({"subject": "Hi", "body": "b"}, "welcome", "sms")
    assert info.value.field == "subject"


@pytest.mark.parametrize(
    ("channel", "body"),
    [
        ("email", {"subject": "s" * 900, "body": "b" * 5_000}),
        ("inapp", {"subject": "s" * 900, "body": "b" * 5_000}),
        ("webpush", {"subject": "s" * 900, "body": "b" * 5_000}),
        ("webhook", {"body": "b" * 5_000}),
    ],
)
def test_other_channels_keep_their_general_bounds(channel: str, body: dict[str, Any]) -> None:
    assert parse_template(body, "welcome", channel).body == body["body"]
