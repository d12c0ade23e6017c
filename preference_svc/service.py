"""The PreferenceService servicer. Its RPCs arrive with the work that implements them; until
then it is served for health checks and reflection."""

from __future__ import annotations

from notify.v1 import preference_pb2_grpc

from notify_core.grpc_server import ServiceSpec

FULL_NAME = "notify.v1.PreferenceService"


class PreferenceServicer(preference_pb2_grpc.PreferenceServiceServicer):  # type: ignore[misc]
    pass


def spec() -> ServiceSpec:
    return ServiceSpec(
        FULL_NAME, PreferenceServicer(), preference_pb2_grpc.add_PreferenceServiceServicer_to_server
    )
