"""The TemplateService servicer. Its RPCs arrive with the work that implements them; until
then it is served for health checks and reflection."""

from __future__ import annotations

from notify.v1 import template_pb2_grpc

from notify_core.grpc_server import ServiceSpec

FULL_NAME = "notify.v1.TemplateService"


class TemplateServicer(template_pb2_grpc.TemplateServiceServicer):  # type: ignore[misc]
    pass


def spec() -> ServiceSpec:
    return ServiceSpec(
        FULL_NAME, TemplateServicer(), template_pb2_grpc.add_TemplateServiceServicer_to_server
    )
