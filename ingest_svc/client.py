"""How other services (the edge) send: in this process, or over gRPC to IngestService."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from notify.v1 import ingest_pb2, ingest_pb2_grpc

from ingest_svc.core import Ingest
from ingest_svc.topics import TopicSends
from notify_core.errors import (
    InvalidArgument,
    NotFound,
    NotifyError,
    Unauthenticated,
    Unavailable,
)


class IngestApi(Protocol):
    async def send(self, requests: Sequence[ingest_pb2.SendRequest]) -> list[str]: ...

    async def send_topic(self, topic: str, request: ingest_pb2.SendRequest) -> str: ...

    async def topic_send(self, send_id: str) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class LocalIngest:
    """IngestService in this process."""

    ingest: Ingest
    topics: TopicSends

    async def send(self, requests: Sequence[ingest_pb2.SendRequest]) -> list[str]:
        return await self.ingest.send(requests)

    async def send_topic(self, topic: str, request: ingest_pb2.SendRequest) -> str:
        return await self.topics.send(topic, request)

    async def topic_send(self, send_id: str) -> dict[str, Any]:
        return await self.topics.get(send_id)


class RemoteIngest:
    """IngestService over gRPC; status codes come back as Notify's errors."""

    def __init__(self, target: str, api_key: str) -> None:
        self._channel = grpc.aio.insecure_channel(target)
        self._stub = ingest_pb2_grpc.IngestServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {api_key}"),)

    async def send(self, requests: Sequence[ingest_pb2.SendRequest]) -> list[str]:
        try:
            if len(requests) == 1:
                reply = await self._stub.Send(requests[0], metadata=self._metadata, timeout=30)
                return [reply.id]
            batch = await self._stub.SendBatch(
                ingest_pb2.SendBatchRequest(notifications=list(requests)),
                metadata=self._metadata,
                timeout=30,
            )
            return list(batch.ids)
        except grpc.aio.AioRpcError as exc:
            raise _from_status(exc) from exc

    async def send_topic(self, topic: str, request: ingest_pb2.SendRequest) -> str:
        try:
            reply = await self._stub.SendToTopic(
                ingest_pb2.SendToTopicRequest(topic=topic, notification=request),
                metadata=self._metadata,
                timeout=30,
            )
        except grpc.aio.AioRpcError as exc:
            raise _from_status(exc) from exc
        return str(reply.id)

    async def topic_send(self, send_id: str) -> dict[str, Any]:
        try:
            reply = await self._stub.GetTopicSend(
                ingest_pb2.GetTopicSendRequest(id=send_id), metadata=self._metadata, timeout=30
            )
        except grpc.aio.AioRpcError as exc:
            raise _from_status(exc) from exc
        return {
            "id": reply.id,
            "topic": reply.topic,
            "state": reply.state,
            "fanned_out": reply.fanned_out,
        }

    async def close(self) -> None:
        await self._channel.close()


def _from_status(exc: grpc.aio.AioRpcError) -> NotifyError:
    code, details = exc.code(), exc.details() or ""
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        field, _, problem = details.partition(": ")
        return InvalidArgument(field, problem) if problem else InvalidArgument("", details)
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return Unauthenticated(details)
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(details)
    return Unavailable(f"ingest service: {code.name}: {details}")
