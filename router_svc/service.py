"""The RouterService servicer. Its RPCs arrive with the work that implements them; until
then it is served for health checks and reflection."""

from __future__ import annotations

from notify.v1 import router_pb2_grpc

from notify_core.grpc_server import ServiceSpec

FULL_NAME = "notify.v1.RouterService"


class RouterServicer(router_pb2_grpc.RouterServiceServicer):  # type: ignore[misc]
    pass


def spec() -> ServiceSpec:
    return ServiceSpec(
        FULL_NAME, RouterServicer(), router_pb2_grpc.add_RouterServiceServicer_to_server
    )
