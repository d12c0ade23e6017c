"""Validation of send requests: pure functions, no I/O.

``parse_send_json`` turns the REST body into ``SendRequest`` messages (checking JSON types);
``validate_send`` checks one ``SendRequest`` (REST or gRPC alike) and gives the row to store.
Every error is an :class:`InvalidArgument` naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from google.protobuf import timestamp_pb2
from notify.v1 import common_pb2, ingest_pb2

from notify_core import constants as c
from notify_core.checks import check_field, check_type, check_user_id, json_type
from notify_core.convert import (
    CHANNEL_FROM_PROTO,
    CHANNEL_TO_PROTO,
    PRIORITY_FROM_PROTO,
    PRIORITY_TO_PROTO,
    dict_to_struct,
    struct_to_dict,
)
from notify_core.domain import CHANNELS, PRIORITIES, Priority
from notify_core.errors import InvalidArgument
from notify_core.storable import check_json, timestamp_to_datetime, to_utc

_SEND_FIELDS = {
    "user_id",
    "user_ids",
    "type",
    "title",
    "message",
    "data",
    "priority",
    "channels",
    "template",
    "locale",
    "idempotency_key",
    "group_key",
    "send_at",
    "topic",
}


@dataclass(frozen=True, slots=True)
class NewNotification:
    """A validated notification, ready to store."""

    id: str
    user_id: str
    type: str
    title: str
    message: str
    data: dict[str, Any] | None
    priority: str
    channels: list[str] | None
    idempotency_key: str | None
    template: str | None
    locale: str | None
    created_at: datetime
    group_key: str | None = None
    send_at: datetime | None = None
    """Set only when ahead of ``created_at``: the notification is scheduled."""


def _string(body: Mapping[str, Any], name: str, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidArgument(name, "is required")
        return None
    if not isinstance(value, str):
        raise InvalidArgument(name, f"must be a string, got {json_type(value)}")
    return value


@dataclass(frozen=True, slots=True)
class ParsedSend:
    """``POST /notifications/send`` as SendRequests; ``shape`` decides the answer: one id,
    ``ids`` for ``user_ids``, or a topic send (the request's user_id empty)."""

    requests: list[ingest_pb2.SendRequest]
    shape: str  # "one", "many" or "topic"
    topic: str | None = None


def _timestamp(body: Mapping[str, Any], name: str) -> timestamp_pb2.Timestamp | None:
    raw = _string(body, name, required=False)
    if raw is None:
        return None
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidArgument(name, f"must be an ISO 8601 date and time, got {raw!r}") from None
    if when.tzinfo is None:
        raise InvalidArgument(name, "must include a time zone offset (or Z)")
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(to_utc(when, name))
    return ts


def parse_send_json(body: Any) -> ParsedSend:
    """The REST body of ``POST /notifications/send`` as SendRequests."""
    if not isinstance(body, dict):
        raise InvalidArgument("body", f"must be a JSON object, got {json_type(body)}")
    unknown = sorted(set(body) - _SEND_FIELDS)
    if unknown:
        raise InvalidArgument(unknown[0], "is not a known field")
    topic, user_ids, shape = _recipients(body)
    data = body.get("data")
    if data is not None and not isinstance(data, dict):
        raise InvalidArgument("data", f"must be a JSON object, got {json_type(data)}")
    if data is not None:
        _check_data_size(data)
    priority = _string(body, "priority", required=False)
    if priority is not None and priority not in PRIORITIES:
        raise InvalidArgument(
            "priority", f"must be one of {', '.join(PRIORITIES)}; got {priority!r}"
        )
    proto_channels = _channels(body.get("channels"))
    kind = _string(body, "type", required=True) or ""
    title = _string(body, "title", required=True) or ""
    message = _string(body, "message", required=True) or ""
    template = _string(body, "template", required=False) or ""
    locale = _string(body, "locale", required=False) or ""
    idempotency_key = _string(body, "idempotency_key", required=False) or ""
    group_key = _string(body, "group_key", required=False) or ""
    send_at = _timestamp(body, "send_at")
    requests = []
    for uid in user_ids:
        req = ingest_pb2.SendRequest(
            user_id=uid,
            type=kind,
            title=title,
            message=message,
            template=template,
            locale=locale,
            idempotency_key=idempotency_key,
            priority=PRIORITY_TO_PROTO[priority] if priority else common_pb2.PRIORITY_UNSPECIFIED,
            channels=proto_channels,
            group_key=group_key,
            send_at=send_at,
        )
        if data:
            try:
                req.data.CopyFrom(dict_to_struct(data))
            except (ValueError, TypeError) as exc:
                raise InvalidArgument("data", f"cannot be represented: {exc}") from None
        requests.append(req)
    return ParsedSend(requests, shape, topic)


def _recipients(body: Mapping[str, Any]) -> tuple[str | None, list[Any], str]:
    """The topic (or None), the user ids (one blank id for a topic) and the body's shape:
    ``one``, ``many`` or ``topic``."""
    has_one, has_many, has_topic = "user_id" in body, "user_ids" in body, "topic" in body
    if has_one + has_many + has_topic > 1:
        raise InvalidArgument(
            "user_ids" if has_many else "topic", "give one of user_id, user_ids or topic"
        )
    if not has_one and not has_many and not has_topic:
        raise InvalidArgument("user_id", "is required (or user_ids, or topic)")
    if has_topic:
        return _string(body, "topic", required=True), [""], "topic"
    if not has_many:
        return None, [_string(body, "user_id", required=True)], "one"
    user_ids = body["user_ids"]
    if not isinstance(user_ids, list):
        raise InvalidArgument("user_ids", f"must be an array, got {json_type(user_ids)}")
    if not user_ids:
        raise InvalidArgument("user_ids", "must not be empty")
    if len(user_ids) > c.MAX_BATCH:
        raise InvalidArgument("user_ids", f"at most {c.MAX_BATCH} users per request")
    for i, uid in enumerate(user_ids):
        if not isinstance(uid, str):
            raise InvalidArgument(f"user_ids[{i}]", f"must be a string, got {json_type(uid)}")
    if len(set(user_ids)) != len(user_ids):
        raise InvalidArgument("user_ids", "must not repeat a user")
    return None, user_ids, "many"


def _channels(channels: Any) -> list[common_pb2.Channel]:
    """``channels`` of the body (absent: none) as proto channels."""
    if channels is None:
        return []
    if not isinstance(channels, list):
        raise InvalidArgument("channels", f"must be an array, got {json_type(channels)}")
    out: list[common_pb2.Channel] = []
    for i, ch in enumerate(channels):
        if not isinstance(ch, str) or ch not in CHANNEL_TO_PROTO:
            raise InvalidArgument(
                f"channels[{i}]", f"must be one of {', '.join(CHANNELS)}; got {ch!r}"
            )
        out.append(CHANNEL_TO_PROTO[ch])
    return out


def _check_data_size(data: Mapping[str, Any]) -> None:
    size = len(json.dumps(data, separators=(",", ":")).encode())
    if size > c.MAX_DATA_BYTES:
        raise InvalidArgument(
            "data", f"must be at most {c.MAX_DATA_BYTES} bytes as JSON, got {size}"
        )


def _data(req: ingest_pb2.SendRequest, name: str) -> dict[str, Any] | None:
    """The request's ``data`` as a dict, every key and value storable, within its size."""
    if not req.HasField("data") or not req.data.fields:
        return None
    try:
        data = struct_to_dict(req.data)
    except ValueError:  # a NaN or infinite number_value has no JSON form
        raise InvalidArgument(name, "numbers must be finite (not NaN or ±∞)") from None
    check_json(data, name)
    try:
        _check_data_size(data)
    except InvalidArgument as exc:
        raise InvalidArgument(name, exc.message.removeprefix("data: ")) from None
    return data


def validate_send(
    req: ingest_pb2.SendRequest,
    *,
    new_id: str,
    now: datetime,
    prefix: str = "",
    for_topic: bool = False,
) -> NewNotification:
    """Check one request; ``prefix`` qualifies field names inside a batch. A topic send's
    notification has no user yet (its user_id must be empty)."""
    p = prefix
    if for_topic:
        if req.user_id:
            raise InvalidArgument(p + "user_id", "must be empty in a topic send")
    else:
        check_user_id(req.user_id, p + "user_id")
    check_type(req.type, p + "type")
    check_field(req.title, p + "title", c.MAX_TITLE)
    if "\r" in req.title or "\n" in req.title:
        # A title is an email subject too: a line break there cannot be sent.
        raise InvalidArgument(p + "title", "must be one line (no CR or LF)")
    check_field(req.message, p + "message", c.MAX_MESSAGE)
    check_field(req.idempotency_key, p + "idempotency_key", c.MAX_IDEMPOTENCY_KEY, required=False)
    check_field(req.template, p + "template", c.MAX_TEMPLATE, required=False)
    check_field(req.locale, p + "locale", c.MAX_LOCALE, required=False)
    check_field(req.group_key, p + "group_key", c.MAX_GROUP_KEY, required=False)
    send_at: datetime | None = None
    if req.HasField("send_at"):
        send_at = timestamp_to_datetime(req.send_at, p + "send_at")
        if send_at - now > timedelta(days=c.MAX_SCHEDULE_DAYS):
            raise InvalidArgument(
                p + "send_at", f"must be at most {c.MAX_SCHEDULE_DAYS} days ahead"
            )
        if send_at <= now:
            send_at = None  # due already: send now
    if req.priority == common_pb2.PRIORITY_UNSPECIFIED:
        priority: str = Priority.NORMAL
    elif req.priority in PRIORITY_FROM_PROTO:
        priority = PRIORITY_FROM_PROTO[req.priority]
    else:
        raise InvalidArgument(p + "priority", f"unknown priority {req.priority}")
    channels: list[str] | None = None
    if req.channels:
        channels = []
        for i, ch in enumerate(req.channels):
            if ch not in CHANNEL_FROM_PROTO:
                raise InvalidArgument(f"{p}channels[{i}]", f"unknown channel {ch}")
            name = CHANNEL_FROM_PROTO[ch]
            if name not in channels:
                channels.append(name)
    data = _data(req, p + "data")
    return NewNotification(
        id=new_id,
        user_id=req.user_id,
        type=req.type,
        title=req.title,
        message=req.message,
        data=data,
        priority=priority,
        channels=channels,
        idempotency_key=req.idempotency_key or None,
        template=req.template or None,
        locale=req.locale or None,
        created_at=now,
        group_key=req.group_key or None,
        send_at=send_at,
    )
