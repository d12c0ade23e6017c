"""Conversions between TemplateService messages and what the store and renderer use.

Requests are checked by the same functions as REST bodies, so that their errors name the
same fields with the same messages.
"""

from __future__ import annotations

from typing import Any, cast

from google.protobuf import timestamp_pb2
from notify.v1 import template_pb2 as pb

from notify_core.constants import TEMPLATE_CHANNELS
from notify_core.convert import struct_to_dict
from notify_core.errors import InvalidArgument
from template_svc.render import Rendered
from template_svc.store import StoredTemplate
from template_svc.validate import (
    TemplateInput,
    check_channel,
    check_data,
    check_locale,
    check_name,
    make_template,
)

CHANNEL_TO_PROTO: dict[str, pb.TemplateChannel] = {
    name: cast(pb.TemplateChannel, pb.TemplateChannel.Value(f"TEMPLATE_CHANNEL_{name.upper()}"))
    for name in TEMPLATE_CHANNELS
}
CHANNEL_FROM_PROTO = {v: k for k, v in CHANNEL_TO_PROTO.items()}


def channel_from_proto(value: int) -> str:
    if value == pb.TEMPLATE_CHANNEL_UNSPECIFIED:
        raise InvalidArgument("channel", "is required")
    return check_channel(CHANNEL_FROM_PROTO.get(cast(pb.TemplateChannel, value), value))


def key_from_proto(name: str, channel: int, locale: str) -> tuple[str, str, str]:
    """Name, channel and locale of a request, checked."""
    return check_name(name), channel_from_proto(channel), check_locale(locale)


def _variables(msg: Any) -> list[str] | None:
    return list(msg.variables.names) if msg.HasField("variables") else None


def _optional(msg: Any, field: str) -> str | None:
    return cast(str, getattr(msg, field)) if msg.HasField(field) else None


def publish_from_proto(req: pb.PublishTemplateRequest) -> TemplateInput:
    name, channel, locale = key_from_proto(req.name, req.channel, req.locale)
    return make_template(
        name,
        channel,
        locale,
        req.body,
        _optional(req, "subject"),
        _optional(req, "layout"),
        _variables(req),
    )


def inline_from_proto(req: pb.RenderTemplateRequest) -> TemplateInput:
    msg = req.template
    if req.name or req.version:
        raise InvalidArgument("template", "give either a stored template's name or template")
    return make_template(
        "",
        channel_from_proto(req.channel),
        check_locale(req.locale),
        msg.body,
        _optional(msg, "subject"),
        _optional(msg, "layout"),
        _variables(msg),
        prefix="template.",
    )


def data_from_proto(req: pb.RenderTemplateRequest) -> dict[str, Any]:
    return check_data(struct_to_dict(req.data))


def notification_from_proto(req: pb.RenderTemplateRequest) -> dict[str, str] | None:
    if not req.HasField("notification"):
        return None
    n = req.notification
    return {
        "id": n.id,
        "type": n.type,
        "title": n.title,
        "message": n.message,
        "user_id": n.user_id,
    }


def template_to_proto(t: StoredTemplate) -> pb.Template:
    created = timestamp_pb2.Timestamp()
    created.FromDatetime(t.created_at)
    msg = pb.Template(
        name=t.name,
        channel=CHANNEL_TO_PROTO[t.channel],
        locale=t.locale,
        version=t.version,
        body=t.body,
        created_at=created,
    )
    if t.subject is not None:
        msg.subject = t.subject
    if t.layout is not None:
        msg.layout = t.layout
    if t.variables is not None:
        msg.variables.names.extend(t.variables)
        msg.variables.SetInParent()
    return msg


def rendered_to_proto(r: Rendered, t: StoredTemplate | None) -> pb.RenderTemplateResponse:
    msg = pb.RenderTemplateResponse(text=r.text, body=r.body)
    if r.subject is not None:
        msg.subject = r.subject
    if r.html is not None:
        msg.html = r.html
    if t is not None:
        msg.template.CopyFrom(template_to_proto(t))
    return msg
