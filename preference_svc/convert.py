"""Conversions between PreferenceService messages and what the store and validation use.

An ``UpdatePreferencesRequest`` becomes the same JSON object a ``PUT /preferences`` body
is, so that :func:`preference_svc.validate.parse_preferences` checks both alike and their
error messages are the same.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import timestamp_pb2
from notify.v1 import preference_pb2 as pb

from notify_core.domain import CHANNELS
from notify_core.errors import InvalidArgument
from preference_svc.devices import Device, DeviceInput, make_device
from preference_svc.store import StoredPreferences
from preference_svc.topics import Topic

FREQUENCY_TO_PROTO = {"daily": pb.DIGEST_FREQUENCY_DAILY, "weekly": pb.DIGEST_FREQUENCY_WEEKLY}
FREQUENCY_FROM_PROTO = {v: k for k, v in FREQUENCY_TO_PROTO.items()}
PLATFORM_TO_PROTO = {
    "fcm": pb.DEVICE_PLATFORM_FCM,
    "apns": pb.DEVICE_PLATFORM_APNS,
    "webpush": pb.DEVICE_PLATFORM_WEBPUSH,
}
PLATFORM_FROM_PROTO = {v: k for k, v in PLATFORM_TO_PROTO.items()}


def _switches(msg: pb.ChannelSwitches) -> dict[str, bool]:
    return {name: getattr(msg, name) for name in CHANNELS if msg.HasField(name)}


def _quiet_hours(msg: pb.QuietHours) -> dict[str, Any]:
    body: dict[str, Any] = {
        name: getattr(msg, name) for name in ("start", "end", "timezone") if getattr(msg, name)
    }
    if msg.HasField("high_breaks_through"):
        body["high_breaks_through"] = msg.high_breaks_through
    return body


def _digest(msg: pb.Digest) -> dict[str, Any]:
    body: dict[str, Any] = {
        name: getattr(msg, name) for name in ("enabled", "hour", "weekday") if msg.HasField(name)
    }
    if msg.frequency != pb.DIGEST_FREQUENCY_UNSPECIFIED:
        body["frequency"] = FREQUENCY_FROM_PROTO.get(msg.frequency, msg.frequency)
    return body


def update_to_json(req: pb.UpdatePreferencesRequest) -> dict[str, Any]:
    """The REST body equivalent to an update: only the fields it sets."""
    body: dict[str, Any] = {}
    if req.HasField("channels"):
        body["channels"] = _switches(req.channels)
    if req.HasField("per_type"):
        body["per_type"] = {name: _switches(s) for name, s in req.per_type.types.items()}
    change = req.WhichOneof("quiet_hours_change")
    if change == "quiet_hours":
        body["quiet_hours"] = _quiet_hours(req.quiet_hours)
    elif change == "clear_quiet_hours" and req.clear_quiet_hours:
        body["quiet_hours"] = None
    if req.HasField("digest"):
        body["digest"] = _digest(req.digest)
    for name in ("email", "phone", "webhook_url"):
        if req.HasField(name):
            body[name] = getattr(req, name) or None
    return body


def preferences_to_proto(p: StoredPreferences) -> pb.Preferences:
    msg = pb.Preferences(
        user_id=p.user_id,
        channels=pb.ChannelSwitches(**p.switches),
        digest=pb.Digest(
            enabled=p.digest.enabled,
            frequency=FREQUENCY_TO_PROTO[p.digest.frequency],
            hour=p.digest.hour,
            weekday=p.digest.weekday,
        ),
        email=p.email or "",
        phone=p.phone or "",
        webhook_url=p.webhook_url or "",
        has_push_device=p.has_push_device,
        has_webpush_subscription=p.has_webpush_subscription,
    )
    for name, switches in p.per_type.items():
        msg.per_type[name].CopyFrom(pb.ChannelSwitches(**switches))
    if p.quiet_hours is not None:
        q = p.quiet_hours
        msg.quiet_hours.CopyFrom(
            pb.QuietHours(
                start=q.start.strftime("%H:%M"),
                end=q.end.strftime("%H:%M"),
                timezone=q.timezone,
                high_breaks_through=q.high_breaks_through,
            )
        )
    return msg


def device_from_proto(req: pb.RegisterDeviceRequest) -> DeviceInput:
    """The registration a request asks for, checked like a REST body."""
    if req.platform == pb.DEVICE_PLATFORM_UNSPECIFIED:
        raise InvalidArgument("platform", "is required")
    platform: Any = PLATFORM_FROM_PROTO.get(req.platform, req.platform)
    return make_device(platform, req.token, req.device_id, req.device_name)


def device_to_proto(d: Device) -> pb.Device:
    created = timestamp_pb2.Timestamp()
    created.FromDatetime(d.created_at)
    msg = pb.Device(
        id=d.id,
        user_id=d.user_id,
        platform=PLATFORM_TO_PROTO[d.platform],
        token=d.token,
        device_id=d.device_id or "",
        device_name=d.device_name or "",
        active=d.active,
        created_at=created,
    )
    if d.last_used_at is not None:
        msg.last_used_at.FromDatetime(d.last_used_at)
    return msg


def topic_to_proto(t: Topic) -> pb.Topic:
    return pb.Topic(name=t.name, public=t.public)
