"""Conversions between stored rows, protobuf messages and the public JSON shape.

The JSON shape of a notification (DESIGN §5): ``id, user_id, type, title, message, data,
priority, read, created_at`` with ``created_at`` in ISO 8601 UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

from google.protobuf import json_format, struct_pb2, timestamp_pb2
from notify.v1 import common_pb2

from notify_core import fastjson
from notify_core.domain import CHANNELS, Priority

PRIORITY_TO_PROTO: dict[str, common_pb2.Priority] = {
    p: cast(common_pb2.Priority, common_pb2.Priority.Value(f"PRIORITY_{p.name}")) for p in Priority
}
PRIORITY_FROM_PROTO = {v: k for k, v in PRIORITY_TO_PROTO.items()}
CHANNEL_TO_PROTO: dict[str, common_pb2.Channel] = {
    name: cast(common_pb2.Channel, common_pb2.Channel.Value(f"CHANNEL_{name.upper()}"))
    for name in CHANNELS
}
CHANNEL_FROM_PROTO = {v: k for k, v in CHANNEL_TO_PROTO.items()}


def iso(ts: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, microseconds kept."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _unfloat(value: Any) -> Any:
    """Struct keeps numbers as doubles; give whole numbers back as ints."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _unfloat(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unfloat(v) for v in value]
    return value


def struct_to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    return {k: _unfloat(v) for k, v in json_format.MessageToDict(struct).items()}


def dict_to_struct(data: Mapping[str, Any] | None) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    if data:
        struct.update(data)
    return struct


def row_to_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """A notifications row as the public JSON object."""
    return {
        "id": row["id"],
        "user_id": row["user_id"],
        "type": row["type"],
        "title": row["title"],
        "message": row["message"],
        "data": row["data"] or {},
        "priority": row["priority"],
        "read": bool(row["read"]),
        "created_at": iso(row["created_at"]),
        "count": row.get("count") or 1,
    }


def row_to_proto(row: Mapping[str, Any]) -> common_pb2.Notification:
    created = timestamp_pb2.Timestamp()
    created.FromDatetime(row["created_at"])
    return common_pb2.Notification(
        id=row["id"],
        user_id=row["user_id"],
        type=row["type"],
        title=row["title"],
        message=row["message"],
        data=dict_to_struct(row["data"]),
        priority=PRIORITY_TO_PROTO.get(row["priority"], common_pb2.PRIORITY_NORMAL),
        read=bool(row["read"]),
        created_at=created,
        count=row.get("count") or 1,
    )


def proto_to_json(n: common_pb2.Notification) -> dict[str, Any]:
    return {
        "id": n.id,
        "user_id": n.user_id,
        "type": n.type,
        "title": n.title,
        "message": n.message,
        "data": struct_to_dict(n.data),
        "priority": PRIORITY_FROM_PROTO.get(n.priority, Priority.NORMAL),
        "read": n.read,
        "created_at": iso(n.created_at.ToDatetime(tzinfo=UTC)),
        "count": n.count or 1,
    }


def live_event(notification: Mapping[str, Any], kind: str = "notification") -> bytes:
    """The WebSocket frame for one new (or, with ``kind="notification_updated"``, changed)
    notification, encoded once for every receiver."""
    return fastjson.dumps({"type": kind, "notification": notification})


_LIVE_PREFIX = b'{"type":"notification","notification":{"id":"'


def live_event_id(payload: bytes) -> str | None:
    """The notification id of a ``notification`` frame made by :func:`live_event` (whose
    first key is the id, see :func:`row_to_json`); ``None`` for any other frame."""
    if not payload.startswith(_LIVE_PREFIX):
        return None
    end = payload.find(b'"', len(_LIVE_PREFIX))
    return payload[len(_LIVE_PREFIX) : end].decode() if end > 0 else None
