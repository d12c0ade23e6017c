"""The IngestService servicer: thin, typed, method names exactly the proto's."""

from __future__ import annotations

import grpc
from notify.v1 import ingest_pb2, ingest_pb2_grpc

from ingest_svc.core import Ingest
from ingest_svc.topics import TopicSends
from notify_core.errors import InvalidArgument
from notify_core.grpc_server import ServiceSpec, grpc_errors

FULL_NAME = "notify.v1.IngestService"


class IngestServicer(ingest_pb2_grpc.IngestServiceServicer):  # type: ignore[misc]
    def __init__(self, ingest: Ingest, topics: TopicSends) -> None:
        self._ingest = ingest
        self._topics = topics

    @grpc_errors
    async def Send(
        self, request: ingest_pb2.SendRequest, context: grpc.aio.ServicerContext
    ) -> ingest_pb2.SendResponse:
        (nid,) = await self._ingest.send([request])
        return ingest_pb2.SendResponse(id=nid)

    @grpc_errors
    async def SendBatch(
        self, request: ingest_pb2.SendBatchRequest, context: grpc.aio.ServicerContext
    ) -> ingest_pb2.SendBatchResponse:
        if not request.notifications:
            raise InvalidArgument("notifications", "must not be empty")
        ids = await self._ingest.send(list(request.notifications))
        return ingest_pb2.SendBatchResponse(ids=ids)

    @grpc_errors
    async def SendToTopic(
        self, request: ingest_pb2.SendToTopicRequest, context: grpc.aio.ServicerContext
    ) -> ingest_pb2.SendToTopicResponse:
        send_id = await self._topics.send(request.topic, request.notification)
        return ingest_pb2.SendToTopicResponse(id=send_id)

    @grpc_errors
    async def GetTopicSend(
        self, request: ingest_pb2.GetTopicSendRequest, context: grpc.aio.ServicerContext
    ) -> ingest_pb2.GetTopicSendResponse:
        if not request.id:
            raise InvalidArgument("id", "is required")
        found = await self._topics.get(request.id)
        return ingest_pb2.GetTopicSendResponse(**found)


def spec(ingest: Ingest, topics: TopicSends) -> ServiceSpec:
    return ServiceSpec(
        FULL_NAME,
        IngestServicer(ingest, topics),
        ingest_pb2_grpc.add_IngestServiceServicer_to_server,
    )
