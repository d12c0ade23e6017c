"""Device registrations and topic names: accepted shapes, and errors naming the field (pure)."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import pytest
from notify.v1 import preference_pb2 as pb

from notify_core.constants import DEVICE_PLATFORMS, MAX_TOPIC, MAX_TOPIC_SUBSCRIBE
from notify_core.errors import InvalidArgument
from preference_svc.convert import PLATFORM_TO_PROTO, device_from_proto, update_to_json
from preference_svc.devices import parse_device
from preference_svc.store import StoredPreferences
from preference_svc.topics import check_page, check_topic, check_user_ids, parse_subscribers
from preference_svc.validate import parse_preferences


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def subscription(endpoint: str = "https://push.example.com/send/abc") -> dict[str, Any]:
    return {
        "endpoint": endpoint,
        "keys": {"p256dh": b64(b"\x04" + os.urandom(64)), "auth": b64(os.urandom(16))},
    }


def field_of(body: Any) -> str:
    with pytest.raises(InvalidArgument) as caught:
        parse_device(body)
    return caught.value.field


def test_an_fcm_token_is_kept_as_given_with_name_and_device_id() -> None:
    device = parse_device(
        {"platform": "fcm", "token": "fcm:AbC-123_x", "device_name": "Pixel", "device_id": "d1"}
    )
    assert (device.platform, device.token) == ("fcm", "fcm:AbC-123_x")
    assert (device.device_name, device.device_id) == ("Pixel", "d1")


def test_an_apns_token_is_stored_in_lower_case() -> None:
    device = parse_device({"platform": "apns", "token": "AB" * 32})
    assert device.token == "ab" * 32
    assert device.device_name is None and device.device_id is None


def test_a_webpush_subscription_is_canonical_whether_object_or_string() -> None:
    sub = subscription()
    as_object = parse_device({"platform": "webpush", "token": {**sub, "expirationTime": None}})
    reordered = json.dumps(
        {"keys": dict(reversed(sub["keys"].items())), "endpoint": sub["endpoint"]}
    )
    as_string = parse_device({"platform": "webpush", "token": f"  {reordered} "})
    assert as_object.token == as_string.token
    assert json.loads(as_object.token) == sub  # expirationTime is not part of the identity
    assert " " not in as_object.token


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"token": "x"}, "platform"),
        ({"platform": "sms", "token": "x"}, "platform"),
        ({"platform": "fcm"}, "token"),
        ({"platform": "fcm", "token": ""}, "token"),
        ({"platform": "fcm", "token": "has space"}, "token"),
        ({"platform": "fcm", "token": "a\tb"}, "token"),
        ({"platform": "fcm", "token": "x" * 4097}, "token"),
        ({"platform": "fcm", "token": 12}, "token"),
        ({"platform": "apns", "token": "ab" * 31}, "token"),
        ({"platform": "apns", "token": "zz" * 32}, "token"),
        ({"platform": "webpush", "token": "not json"}, "token"),
        ({"platform": "webpush", "token": "[1]"}, "token"),
        ({"platform": "webpush", "token": {**subscription(), "extra": 1}}, "token.extra"),
        (
            {"platform": "webpush", "token": subscription("http://push.example.com/x")},
            "token.endpoint",
        ),
        ({"platform": "webpush", "token": subscription("https:///nohost")}, "token.endpoint"),
        ({"platform": "webpush", "token": {"endpoint": "https://p.example.com"}}, "token.keys"),
        (
            {"platform": "webpush", "token": {**subscription(), "keys": {"auth": b64(bytes(16))}}},
            "token.keys.p256dh",
        ),
        (
            {
                "platform": "webpush",
                "token": {**subscription(), "keys": {"p256dh": b64(bytes(65)), "auth": "a!b"}},
            },
            "token.keys.auth",
        ),
        (
            {
                "platform": "webpush",
                "token": {
                    **subscription(),
                    "keys": {"p256dh": b64(bytes(64)), "auth": b64(bytes(16))},
                },
            },
            "token.keys.p256dh",
        ),
        ({"platform": "fcm", "token": "t", "device_name": "n" * 256}, "device_name"),
        ({"platform": "fcm", "token": "t", "device_id": 5}, "device_id"),
        ({"platform": "fcm", "token": "t", "colour": "red"}, "colour"),
        ([1, 2], "body"),
    ],
)
def test_bad_registrations_name_the_field(body: Any, field: str) -> None:
    assert field_of(body) == field


def test_every_platform_has_a_proto_value_and_grpc_checks_like_rest() -> None:
    assert set(PLATFORM_TO_PROTO) == set(DEVICE_PLATFORMS)
    with pytest.raises(InvalidArgument) as unspecified:
        device_from_proto(pb.RegisterDeviceRequest(user_id="u", token="t"))
    assert unspecified.value.field == "platform"
    with pytest.raises(InvalidArgument) as bad:
        device_from_proto(
            pb.RegisterDeviceRequest(platform=pb.DEVICE_PLATFORM_APNS, token="12", user_id="u")
        )
    with pytest.raises(InvalidArgument) as rest:
        parse_device({"platform": "apns", "token": "12"})
    assert str(bad.value) == str(rest.value)


@pytest.mark.parametrize("name", ["news", "a", "team.eng:alerts_v2-EU", "x" * MAX_TOPIC])
def test_good_topic_names(name: str) -> None:
    assert check_topic(name) == name


@pytest.mark.parametrize("name", ["", "x" * (MAX_TOPIC + 1), "has space", "a/b", "é", None, 5])
def test_bad_topic_names_name_the_field(name: Any) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_topic(name)
    assert caught.value.field == "topic"


def test_user_ids_are_checked_deduplicated_and_bounded() -> None:
    assert check_user_ids(["b", "a", "b"]) == ["b", "a"]
    assert len(check_user_ids([f"u{i}" for i in range(MAX_TOPIC_SUBSCRIBE)])) == MAX_TOPIC_SUBSCRIBE
    for values, field in [
        ([], "user_ids"),
        ("abc", "user_ids"),
        (["ok", ""], "user_ids[1]"),
        (["ok", 7], "user_ids[1]"),
        (["x" * 256], "user_ids[0]"),
        ([f"u{i}" for i in range(MAX_TOPIC_SUBSCRIBE + 1)], "user_ids"),
    ]:
        with pytest.raises(InvalidArgument) as caught:
            check_user_ids(values)
        assert caught.value.field == field, values
    with pytest.raises(InvalidArgument) as unknown:
        parse_subscribers({"user_ids": ["a"], "users": ["b"]})
    assert unknown.value.field == "users"


def test_pages_default_and_limit() -> None:
    assert check_page("", 0) == (None, 100)
    assert check_page("u5", 1000) == ("u5", 1000)
    for after, limit, field in [
        (None, 1001, "limit"),
        (None, -1, "limit"),
        ("x" * 256, 10, "after"),
    ]:
        with pytest.raises(InvalidArgument) as caught:
            check_page(after, limit)
        assert caught.value.field == field


def test_a_grpc_update_becomes_the_same_json_as_a_rest_body() -> None:
    req = pb.UpdatePreferencesRequest(
        user_id="u",
        channels=pb.ChannelSwitches(sms=True, email=False),
        per_type=pb.PerTypeSwitches(types={"comment": pb.ChannelSwitches(push=False)}),
        quiet_hours=pb.QuietHours(start="22:00", end="07:00", timezone="Europe/Paris"),
        digest=pb.Digest(enabled=True, frequency=pb.DIGEST_FREQUENCY_WEEKLY, hour=8),
        email="",
        phone="+14155550100",
    )
    assert update_to_json(req) == {
        "channels": {"sms": True, "email": False},
        "per_type": {"comment": {"push": False}},
        "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Paris"},
        "digest": {"enabled": True, "frequency": "weekly", "hour": 8},
        "email": None,
        "phone": "+14155550100",
    }
    assert update_to_json(pb.UpdatePreferencesRequest(user_id="u")) == {}
    cleared = update_to_json(pb.UpdatePreferencesRequest(clear_quiet_hours=True))
    assert cleared == {"quiet_hours": None}
    missing_start = pb.UpdatePreferencesRequest(
        quiet_hours=pb.QuietHours(end="07:00", timezone="UTC")
    )
    with pytest.raises(InvalidArgument) as caught:
        parse_preferences(update_to_json(missing_start))
    assert str(caught.value) == "quiet_hours.start: is required"


def test_preferences_cached_before_devices_existed_still_load() -> None:
    fresh = StoredPreferences("u", has_push_device=True).to_json()
    assert fresh["has_push_device"] is True and fresh["has_webpush_subscription"] is False
    old = {k: v for k, v in fresh.items() if not k.startswith("has_")}
    loaded = StoredPreferences.from_json(old)
    assert loaded.has_push_device is False and loaded.has_webpush_subscription is False
    assert StoredPreferences.from_json(fresh).has_push_device is True
