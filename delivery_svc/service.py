"""The DeliveryService servicer. Its RPCs arrive with the work that implements them; until
then it is served for health checks and reflection."""

from __future__ import annotations

from notify.v1 import delivery_pb2_grpc

from notify_core.grpc_server import ServiceSpec

FULL_NAME = "notify.v1.DeliveryService"


class DeliveryServicer(delivery_pb2_grpc.DeliveryServiceServicer):  # type: ignore[misc]
    pass


def spec() -> ServiceSpec:
    return ServiceSpec(
        FULL_NAME, DeliveryServicer(), delivery_pb2_grpc.add_DeliveryServiceServicer_to_server
    )
