"""The DeliveryService servicer: dead letters, provider breakers and delivery statistics."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import grpc
from google.protobuf import timestamp_pb2
from notify.v1 import delivery_pb2, delivery_pb2_grpc

from delivery_svc.breaker import Breaker
from delivery_svc.dead_letters import delivery_stats, list_dead_letters, requeue_dead_letters
from delivery_svc.worker import DeliveryWorker
from notify_core.db.engine import Database
from notify_core.grpc_server import ServiceSpec, grpc_errors
from notify_core.queue.base import WorkQueue

FULL_NAME = "notify.v1.DeliveryService"


def _timestamp(value: str | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(datetime.fromisoformat(value.replace("Z", "+00:00")))
    return ts


class DeliveryServicer(delivery_pb2_grpc.DeliveryServiceServicer):  # type: ignore[misc]
    def __init__(
        self,
        database: Database,
        queue: WorkQueue,
        workers: Sequence[DeliveryWorker],
        breakers: Sequence[Breaker] | None = None,
    ) -> None:
        self._db = database
        self._queue = queue
        self._workers = workers
        self._breakers = breakers

    def breakers(self) -> list[Breaker]:
        if self._breakers is not None:
            return list(self._breakers)
        found: list[Breaker] = []
        for worker in self._workers:
            found.extend(worker.breakers())
        return found

    @grpc_errors
    async def ListDeadLetters(
        self, request: delivery_pb2.ListDeadLettersRequest, context: grpc.aio.ServicerContext
    ) -> delivery_pb2.ListDeadLettersResponse:
        found = await list_dead_letters(
            self._db, channel=request.channel or None, limit=request.limit or 100
        )
        return delivery_pb2.ListDeadLettersResponse(
            dead_letters=[
                delivery_pb2.DeadLetter(
                    id=d["id"],
                    notification_id=d["notification_id"],
                    user_id=d["user_id"],
                    type=d["type"],
                    channel=d["channel"],
                    provider=d["provider"] or "",
                    error=d["error"] or "",
                    attempts=d["attempts"],
                    dead_at=_timestamp(d["dead_at"]),
                )
                for d in found
            ]
        )

    @grpc_errors
    async def RequeueDeadLetters(
        self, request: delivery_pb2.RequeueDeadLettersRequest, context: grpc.aio.ServicerContext
    ) -> delivery_pb2.RequeueDeadLettersResponse:
        count = await requeue_dead_letters(
            self._db,
            self._queue,
            ids=list(request.ids),
            channel=request.channel or None,
            everything=request.all,
        )
        return delivery_pb2.RequeueDeadLettersResponse(requeued=count)

    @grpc_errors
    async def GetProviderStatus(
        self, request: delivery_pb2.GetProviderStatusRequest, context: grpc.aio.ServicerContext
    ) -> delivery_pb2.GetProviderStatusResponse:
        return delivery_pb2.GetProviderStatusResponse(
            providers=[
                delivery_pb2.ProviderStatus(
                    provider=b.name,
                    state=b.state.value,
                    consecutive_failures=b.consecutive_failures,
                    opened=b.opened,
                )
                for b in self.breakers()
            ]
        )

    @grpc_errors
    async def GetDeliveryStats(
        self, request: delivery_pb2.GetDeliveryStatsRequest, context: grpc.aio.ServicerContext
    ) -> delivery_pb2.GetDeliveryStatsResponse:
        stats = await delivery_stats(self._db)
        errors: dict[str, int] = {}
        for w in self._workers:
            for kind, n in w.counters.by_error.items():
                errors[kind] = errors.get(kind, 0) + n
        return delivery_pb2.GetDeliveryStatsResponse(
            channels=[
                delivery_pb2.ChannelStats(channel=c, by_status=s)
                for c, s in sorted(stats["by_channel"].items())
            ],
            sent=sum(w.counters.sent for w in self._workers),
            retried=sum(w.counters.retried for w in self._workers),
            failed=sum(w.counters.failed for w in self._workers),
            errors=errors,
            opens=stats["opens"],
            clicks=stats["clicks"],
            opened=stats["opened"],
            clicked=stats["clicked"],
        )


def spec(database: Database, queue: WorkQueue, workers: Sequence[DeliveryWorker]) -> ServiceSpec:
    return ServiceSpec(
        FULL_NAME,
        DeliveryServicer(database, queue, workers),
        delivery_pb2_grpc.add_DeliveryServiceServicer_to_server,
    )
