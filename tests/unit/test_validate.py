"""Send validation, as tables of cases (pure: no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from notify.v1 import common_pb2, ingest_pb2

from ingest_svc.validate import parse_send_json, validate_send
from notify_core.errors import InvalidArgument

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
