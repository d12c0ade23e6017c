"""Preference bodies: accepted shapes, and errors that name the field (pure)."""

from __future__ import annotations

from datetime import time
from typing import Any

import pytest

from notify_core.errors import InvalidArgument
from preference_svc.validate import UNSET, DigestInput, QuietHoursInput, parse_preferences


def test_a_full_body_is_parsed() -> None:
    update = parse_preferences(
        {
            "channels": {"email": False, "sms": True},
            "per_type": {"comment": {"push": False}},
            "quiet_hours": {"start": "22:00", "end": "07:30", "timezone": "Europe/Paris"},
            "digest": {"enabled": True, "frequency": "weekly", "hour": 8, "weekday": 5},
            "email": "Alice@Example.COM",
            "phone": "+14155550100",
            "webhook_url": "https://hooks.example.com/n",
        }
    )
    assert update.channels == {"email": False, "sms": True}
    assert update.per_type == {"comment": {"push": False}}
    assert isinstance(update.quiet_hours, QuietHoursInput)
    assert update.quiet_hours.start == time(22) and update.quiet_hours.end == time(7, 30)
    assert update.quiet_hours.high_breaks_through is True
    assert isinstance(update.digest, DigestInput)
    assert (update.digest.frequency, update.digest.hour, update.digest.weekday) == ("weekly", 8, 5)
    assert update.email == "Alice@example.com"  # the domain is normalised


def test_omitted_fields_stay_unset_and_null_clears() -> None:
    update = parse_preferences({"quiet_hours": None, "email": None})
    assert update.quiet_hours is None and update.email is None
    assert update.channels is UNSET and update.phone is UNSET


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ({"colour": 1}, "colour"),
        ({"channels": {"fax": True}}, "channels.fax"),
        ({"channels": {"email": "yes"}}, "channels.email"),
        ({"channels": []}, "channels"),
        ({"per_type": {"comment": {"pigeon": True}}}, "per_type.comment.pigeon"),
        ({"quiet_hours": {"start": "22:00", "end": "07:00"}}, "quiet_hours.timezone"),
        (
            {"quiet_hours": {"start": "24:00", "end": "07:00", "timezone": "UTC"}},
            "quiet_hours.start",
        ),
        ({"quiet_hours": {"start": "22:00", "end": "7", "timezone": "UTC"}}, "quiet_hours.end"),
        ({"quiet_hours": {"start": "22:00", "end": "22:00", "timezone": "UTC"}}, "quiet_hours.end"),
        (
            {"quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Mars/Base"}},
            "quiet_hours.timezone",
        ),
        ({"digest": {"frequency": "hourly"}}, "digest.frequency"),
        ({"digest": {"hour": 24}}, "digest.hour"),
        ({"digest": {"weekday": 0}}, "digest.weekday"),
        ({"digest": {"enabled": "true"}}, "digest.enabled"),
        ({"email": "not-an-address"}, "email"),
        ({"email": "a@@b.com"}, "email"),
        ({"phone": "4155550100"}, "phone"),
        ({"phone": "+0155550100"}, "phone"),
        ({"phone": "+1 415 555 0100"}, "phone"),
        ({"webhook_url": "http://hooks.example.com"}, "webhook_url"),
        ({"webhook_url": "https://"}, "webhook_url"),
    ],
)
def test_bad_bodies_name_the_field(body: Any, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_preferences(body)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("url", "allow_http", "saved"),
    [
        ("https://hooks.example.com/n", False, True),
        ("http://hooks.example.com/n", False, False),
        ("http://hooks.example.com/n", True, True),
        ("https://hooks.example.com/n", True, True),
        ("ftp://hooks.example.com/n", True, False),
        ("http:///no-host", True, False),
    ],
)
def test_webhook_url_scheme_follows_allow_http(url: str, allow_http: bool, saved: bool) -> None:
    body = {"webhook_url": url}
    if saved:
        assert parse_preferences(body, allow_http_webhooks=allow_http).webhook_url == url
    else:
        with pytest.raises(InvalidArgument, match=r"^webhook_url: "):
            parse_preferences(body, allow_http_webhooks=allow_http)
