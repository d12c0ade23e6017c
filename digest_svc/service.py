"""The DigestService servicer. Its RPCs arrive with the work that implements them; until
then it is served for health checks and reflection."""

from __future__ import annotations

from notify.v1 import digest_pb2_grpc

from notify_core.grpc_server import ServiceSpec

FULL_NAME = "notify.v1.DigestService"


class DigestServicer(digest_pb2_grpc.DigestServiceServicer):  # type: ignore[misc]
    pass


def spec() -> ServiceSpec:
    return ServiceSpec(
        FULL_NAME, DigestServicer(), digest_pb2_grpc.add_DigestServiceServicer_to_server
    )
