"""The RouterService servicer: what was decided for each channel of a notification."""

from __future__ import annotations

from datetime import datetime

import grpc
from google.protobuf import timestamp_pb2
from notify.v1 import router_pb2, router_pb2_grpc

from notify_core.db.engine import Database
from notify_core.errors import InvalidArgument
from notify_core.grpc_server import ServiceSpec, grpc_errors
from router_svc.inputs import list_decisions

FULL_NAME = "notify.v1.RouterService"


def _timestamp(value: str | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(datetime.fromisoformat(value))
    return ts


class RouterServicer(router_pb2_grpc.RouterServiceServicer):  # type: ignore[misc]
    def __init__(self, database: Database) -> None:
        self._db = database

    @grpc_errors
    async def ListDeliveries(
        self, request: router_pb2.ListDeliveriesRequest, context: grpc.aio.ServicerContext
    ) -> router_pb2.ListDeliveriesResponse:
        if not request.notification_id:
            raise InvalidArgument("notification_id", "is required")
        found = await list_decisions(self._db, request.notification_id)
        return router_pb2.ListDeliveriesResponse(
            notification_id=request.notification_id,
            deliveries=[
                router_pb2.Delivery(
                    channel=d["channel"],
                    status=d["status"],
                    reason=d["reason"] or "",
                    until=_timestamp(d["until"]),
                    merge_into=d["merge_into"] or "",
                    created_at=_timestamp(d["created_at"]),
                    id=d["id"] or "",
                    attempts=d["attempts"],
                    last_error=d["last_error"] or "",
                    provider=d["provider"] or "",
                    sent_at=_timestamp(d["sent_at"]),
                )
                for d in found
            ],
        )


def spec(database: Database) -> ServiceSpec:
    return ServiceSpec(
        FULL_NAME, RouterServicer(database), router_pb2_grpc.add_RouterServiceServicer_to_server
    )
