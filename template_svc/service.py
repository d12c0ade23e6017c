"""The TemplateService servicer: publish, read, list, delete and preview templates."""

from __future__ import annotations

import grpc
from notify.v1 import template_pb2 as pb
from notify.v1 import template_pb2_grpc

from notify_core.errors import InvalidArgument
from notify_core.grpc_server import ServiceSpec, grpc_errors
from template_svc.convert import (
    data_from_proto,
    inline_from_proto,
    key_from_proto,
    notification_from_proto,
    publish_from_proto,
    rendered_to_proto,
    template_to_proto,
)
from template_svc.templates import Templates

FULL_NAME = "notify.v1.TemplateService"


def _version(value: int) -> int | None:
    if value < 0:
        raise InvalidArgument("version", f"must be 1 or more (0 for the latest), got {value}")
    return value or None


class TemplateServicer(template_pb2_grpc.TemplateServiceServicer):  # type: ignore[misc]
    def __init__(self, templates: Templates) -> None:
        self._templates = templates

    @grpc_errors
    async def PublishTemplate(
        self, request: pb.PublishTemplateRequest, context: grpc.aio.ServicerContext
    ) -> pb.PublishTemplateResponse:
        stored = await self._templates.publish(publish_from_proto(request))
        return pb.PublishTemplateResponse(template=template_to_proto(stored))

    @grpc_errors
    async def GetTemplate(
        self, request: pb.GetTemplateRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetTemplateResponse:
        name, channel, locale = key_from_proto(request.name, request.channel, request.locale)
        stored = await self._templates.get(
            name, channel, locale, _version(request.version), request.fallback
        )
        return pb.GetTemplateResponse(template=template_to_proto(stored))

    @grpc_errors
    async def ListTemplateVersions(
        self, request: pb.ListTemplateVersionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListTemplateVersionsResponse:
        key = key_from_proto(request.name, request.channel, request.locale)
        versions = await self._templates.store.versions(*key)
        return pb.ListTemplateVersionsResponse(templates=[template_to_proto(t) for t in versions])

    @grpc_errors
    async def DeleteTemplate(
        self, request: pb.DeleteTemplateRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteTemplateResponse:
        key = key_from_proto(request.name, request.channel, request.locale)
        return pb.DeleteTemplateResponse(deactivated=await self._templates.store.delete(*key))

    @grpc_errors
    async def RenderTemplate(
        self, request: pb.RenderTemplateRequest, context: grpc.aio.ServicerContext
    ) -> pb.RenderTemplateResponse:
        data = data_from_proto(request)
        notification = notification_from_proto(request)
        if request.HasField("template"):
            inline = inline_from_proto(request)
            rendered = await self._templates.preview_inline(inline, data, notification)
            return rendered_to_proto(rendered, None)
        name, channel, locale = key_from_proto(request.name, request.channel, request.locale)
        rendered, stored = await self._templates.preview(
            name, channel, locale, _version(request.version), data, notification
        )
        return rendered_to_proto(rendered, stored)


def spec(templates: Templates) -> ServiceSpec:
    return ServiceSpec(
        FULL_NAME,
        TemplateServicer(templates),
        template_pb2_grpc.add_TemplateServiceServicer_to_server,
    )
