"""Send validation and what any input may hold, as tables of cases (pure: no I/O)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.protobuf import struct_pb2, timestamp_pb2
from notify.v1 import common_pb2, ingest_pb2

from ingest_svc.validate import parse_send_json, validate_send
from notify_core.errors import InvalidArgument
from notify_core.storable import loads
from preference_svc.devices import make_device
from preference_svc.topics import check_user_ids
from preference_svc.validate import parse_preferences
from template_svc.validate import make_template

NOW = datetime(2026, 1, 1, tzinfo=UTC)
BASE = {"user_id": "u1", "type": "comment", "title": "t", "message": "m"}


def check(req: ingest_pb2.SendRequest) -> Any:
    return validate_send(req, new_id="id-1", now=NOW)


def test_minimal_body_gives_normal_priority_and_any_channel() -> None:
    parsed = parse_send_json(BASE)
    (req,) = parsed.requests
    n = check(req)
    assert parsed.shape == "one"
    assert (n.user_id, n.type, n.title, n.message) == ("u1", "comment", "t", "m")
    assert n.priority == "normal" and n.channels is None and n.data is None
    assert n.idempotency_key is None


def test_full_body_round_trips() -> None:
    body = {
        **BASE,
        "data": {"a": 1, "b": [1, 2], "c": {"d": True}},
        "priority": "high",
        "channels": ["inapp", "email", "inapp"],
        "idempotency_key": "k",
        "template": "tpl",
        "locale": "fr-CA",
    }
    (req,) = parse_send_json(body).requests
    n = check(req)
    assert n.data == {"a": 1, "b": [1, 2], "c": {"d": True}}
    assert n.priority == "high"
    assert n.channels == ["inapp", "email"]
    assert (n.idempotency_key, n.template, n.locale) == ("k", "tpl", "fr-CA")


def test_user_ids_fan_out_to_one_request_each() -> None:
    body = {k: v for k, v in BASE.items() if k != "user_id"}
    parsed = parse_send_json({**body, "user_ids": ["a", "b"]})
    assert parsed.shape == "many" and [r.user_id for r in parsed.requests] == ["a", "b"]


def test_topic_send_has_no_user_and_names_the_topic() -> None:
    body = {k: v for k, v in BASE.items() if k != "user_id"}
    parsed = parse_send_json({**body, "topic": "news"})
    assert parsed.shape == "topic" and parsed.topic == "news"
    (req,) = parsed.requests
    assert req.user_id == ""
    assert validate_send(req, new_id="x", now=NOW, for_topic=True).user_id == ""
    with pytest.raises(InvalidArgument) as info:
        validate_send(req, new_id="x", now=NOW)
    assert info.value.field == "user_id"


def test_group_key_and_send_at() -> None:
    later = (NOW + timedelta(hours=2)).isoformat()
    (req,) = parse_send_json({**BASE, "group_key": "post-7", "send_at": later}).requests
    n = check(req)
    assert n.group_key == "post-7"
    assert n.send_at == NOW + timedelta(hours=2)
    past = (NOW - timedelta(minutes=5)).isoformat()
    (req,) = parse_send_json({**BASE, "send_at": past}).requests
    assert check(req).send_at is None  # due already: sent now
    too_far = (NOW + timedelta(days=400)).isoformat()
    (req,) = parse_send_json({**BASE, "send_at": too_far}).requests
    with pytest.raises(InvalidArgument) as info:
        check(req)
    assert info.value.field == "send_at" and "365 days" in info.value.message


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "c", "title": "t", "message": "m"}, "user_id"),
        ({**BASE, "user_ids": ["x"]}, "user_ids"),
        ({**{k: v for k, v in BASE.items() if k != "user_id"}, "user_ids": []}, "user_ids"),
        ({**{k: v for k, v in BASE.items() if k != "user_id"}, "user_ids": ["a", "a"]}, "user_ids"),
        ({**{k: v for k, v in BASE.items() if k != "user_id"}, "user_ids": [1]}, "user_ids[0]"),
        ({**BASE, "priority": "urgent"}, "priority"),
        ({**BASE, "channels": ["inapp", "fax"]}, "channels[1]"),
        ({**BASE, "data": [1]}, "data"),
        ({**BASE, "data": {"x": "y" * 17_000}}, "data"),
        ({**BASE, "title": None}, "title"),
        ({**BASE, "message": ["m"]}, "message"),
        ({**BASE, "extra": 1}, "extra"),
        ({**BASE, "topic": "news"}, "topic"),
        ({**BASE, "send_at": "tomorrow"}, "send_at"),
        ({**BASE, "send_at": "2026-12-01T10:00:00"}, "send_at"),
        ({**BASE, "send_at": 17}, "send_at"),
        ({**BASE, "group_key": 3}, "group_key"),
    ],
)
def test_parse_errors_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_send_json(body)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"user_id": ""}, "user_id"),
        ({"user_id": "u" * 256}, "user_id"),
        ({"type": " "}, "type"),
        ({"title": "x" * 256}, "title"),
        ({"message": "x" * 10_001}, "message"),
        ({"message": "a\x00b"}, "message"),
        ({"idempotency_key": "k" * 256}, "idempotency_key"),
        ({"priority": 7}, "priority"),
        ({"channels": [common_pb2.CHANNEL_EMAIL, 99]}, "channels[1]"),
    ],
)
def test_proto_errors_name_the_field(fields: dict[str, Any], field: str) -> None:
    req = ingest_pb2.SendRequest(**{**BASE, **fields})
    with pytest.raises(InvalidArgument) as info:
        check(req)
    assert info.value.field == field


def test_batch_prefix_names_the_item() -> None:
    req = ingest_pb2.SendRequest(**{**BASE, "title": ""})
    with pytest.raises(InvalidArgument) as info:
        validate_send(req, new_id="x", now=NOW, prefix="notifications[3].")
    assert info.value.field == "notifications[3].title"


def test_limits_are_inclusive() -> None:
    req = ingest_pb2.SendRequest(**{**BASE, "title": "x" * 255, "message": "y" * 10_000})
    assert check(req).title == "x" * 255


# --- what PostgreSQL cannot store is refused, naming the field ----------------------------

SEND = b'{"user_id":"u1","type":"c","title":"t","message":"m",'


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (SEND + b'"data":{"a":"x\\u0000"}}', "data.a"),
        (SEND + b'"data":{"a":{"b\\u0000":1}}}', "data.a"),
        (SEND + b'"data":{"a":["ok","\\ud800"]}}', "data.a[1]"),
        (SEND + b'"data":{"\\udfff":1}}', "data"),
        (b'{"user_id":"u1","type":"c","title":"\\ud83d","message":"m"}', "title"),
        (b'{"user_id":"u\\u0000","type":"c","title":"t","message":"m"}', "user_id"),
        (SEND + b'"data":{"a":NaN}}', "data.a"),
        (SEND + b'"data":{"a":Infinity}}', "data.a"),
        (SEND + b'"data":{"a":[-Infinity]}}', "data.a[0]"),
        (SEND + b'"data":{"a":1e999}}', "data.a"),
        (SEND + b'"data":{"a":9007199254740992}}', "data.a"),
        (SEND + b'"data":{"a":-' + b"9" * 400 + b"}}", "data.a"),
        (SEND + b'"data":{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}}", "body"),
        (SEND + b'"data":{"a":' + b"[" * 32 + b"]" * 32 + b"}}", "data.a" + "[0]" * 30),
        (b"[" * 33 + b"]" * 33, "body" + "[0]" * 32),
        (b'{"a":"\xff"}', "body"),
        (b"NaN", "body"),
    ],
)
def test_json_bodies_holding_what_cannot_be_stored_name_the_field(raw: bytes, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        loads(raw)
    assert info.value.field == field, info.value.message


def test_json_limits_are_inclusive() -> None:
    deepest = b"[" * 32 + b"]" * 32
    assert loads(SEND + b'"data":{"a":9007199254740991,"b":-9007199254740991,"c":1e308}}')
    assert loads(deepest)
    assert loads('{"é":"✓ 😀"}'.encode()) == {"é": "✓ 😀"}


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    data = struct_pb2.Struct()
    data.update(value)
    return data


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"data": _struct({"a": float("nan")})}, "data"),
        ({"data": _struct({"a": [float("inf")]})}, "data"),
        ({"data": _struct({"a": {"b": "x\x00"}})}, "data.a.b"),
        ({"data": _struct({"k\x00": 1})}, "data"),
        ({"title": "one\r\ntwo"}, "title"),
        ({"title": "one\ntwo"}, "title"),
        ({"send_at": timestamp_pb2.Timestamp(seconds=10**12)}, "send_at"),
        ({"send_at": timestamp_pb2.Timestamp(seconds=-(10**12))}, "send_at"),
    ],
)
def test_proto_values_that_cannot_be_stored_name_the_field(
    fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        check(ingest_pb2.SendRequest(**{**BASE, **fields}))
    assert info.value.field == field, info.value.message


@pytest.mark.parametrize("send_at", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_send_at_whose_offset_leaves_the_calendar_names_the_field(send_at: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_send_json({**BASE, "send_at": send_at})
    assert info.value.field == "send_at"


def test_a_title_with_a_line_break_is_refused_from_rest_too() -> None:
    (req,) = parse_send_json(
        {**BASE, "title": "one\ntwo", "message": "line\nbreaks\nare fine"}
    ).requests
    with pytest.raises(InvalidArgument) as info:
        check(req)
    assert info.value.field == "title"
    (req,) = parse_send_json({**BASE, "message": "line\nbreaks\nare fine"}).requests
    assert check(req).message == "line\nbreaks\nare fine"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: parse_preferences({"webhook_url": "https://x.example/\x00"}), "webhook_url"),
        (lambda: parse_preferences({"per_type": {"a\x00": {"email": False}}}), "per_type"),
        (lambda: check_user_ids(["ok", "a\x00"]), "user_ids[1]"),
        (lambda: make_device("fcm", "tok\x00en"), "token"),
        (lambda: make_device("fcm", "token", device_name="phone\x00"), "device_name"),
        (lambda: make_device("webpush", "[" * 100_000), "token"),
        (lambda: make_template("t", "inapp", "", "body\x00"), "body"),
        (lambda: make_template("t", "email", "", "body", subject="s\x00"), "subject"),
    ],
)
def test_every_validator_refuses_what_cannot_be_stored(
    call: Callable[[], object], field: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        call()
    assert info.value.field == field, info.value.message
