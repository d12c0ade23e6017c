"""How other services (the edge) send: in this process, or over gRPC to IngestService."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import grpc
from notify.v1 import ingest_pb2, ingest_pb2_grpc

from notify_core.errors import InvalidArgument, NotifyError, Unauthenticated, Unavailable


class IngestApi(Protocol):
    async def send(self, requests: Sequence[ingest_pb2.SendRequest]) -> list[str]: ...


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

    async def close(self) -> None:
        await self._channel.close()


def _from_status(exc: grpc.aio.AioRpcError) -> NotifyError:
    code, details = exc.code(), exc.details() or ""
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        field, _, problem = details.partition(": ")
        return InvalidArgument(field, problem) if problem else InvalidArgument("", details)
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return Unauthenticated(details)
    return Unavailable(f"ingest service: {code.name}: {details}")
