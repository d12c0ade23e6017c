"""The DigestService servicer: request a run, follow it, list the latest."""

from __future__ import annotations

from datetime import datetime

import grpc
from google.protobuf import timestamp_pb2
from notify.v1 import digest_pb2, digest_pb2_grpc

from digest_svc import runs
from digest_svc.runs import Run
from digest_svc.scheduler import DigestService
from notify_core.constants import DIGEST_RUNS_DEFAULT_LIMIT
from notify_core.db.engine import Database
from notify_core.domain import DigestRunStatus
from notify_core.grpc_server import ServiceSpec, grpc_errors
from notify_core.storable import timestamp_to_datetime

FULL_NAME = "notify.v1.DigestService"
STATUS_TO_PROTO: dict[str, digest_pb2.DigestRunStatus] = {
    DigestRunStatus.QUEUED: digest_pb2.DIGEST_RUN_STATUS_QUEUED,
    DigestRunStatus.RUNNING: digest_pb2.DIGEST_RUN_STATUS_RUNNING,
    DigestRunStatus.SUCCEEDED: digest_pb2.DIGEST_RUN_STATUS_SUCCEEDED,
    DigestRunStatus.FAILED: digest_pb2.DIGEST_RUN_STATUS_FAILED,
}


def _timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def run_to_proto(run: Run) -> digest_pb2.DigestRun:
    c = run.counts
    return digest_pb2.DigestRun(
        id=run.id,
        status=STATUS_TO_PROTO.get(run.status, digest_pb2.DIGEST_RUN_STATUS_UNSPECIFIED),
        trigger=run.trigger,
        as_of=_timestamp(run.as_of),
        created_at=_timestamp(run.created_at),
        started_at=_timestamp(run.started_at),
        finished_at=_timestamp(run.finished_at),
        due=c.due,
        processed=c.processed,
        sent=c.sent,
        failed=c.failed,
        skipped=c.skipped,
        skipped_by_reason=c.skipped_by_reason,
        failed_by_reason=c.failed_by_reason,
        items=c.items,
        duration_seconds=run.duration or 0.0,
        timings=digest_pb2.DigestRunTimings(
            query_seconds=c.timings.get("query", 0.0),
            render_seconds=c.timings.get("render", 0.0),
            send_seconds=c.timings.get("send", 0.0),
            record_seconds=c.timings.get("record", 0.0),
        ),
        holder=run.holder or "",
        attempts=run.attempts,
        error=run.error or "",
    )


class DigestServicer(digest_pb2_grpc.DigestServiceServicer):  # type: ignore[misc]
    def __init__(self, database: Database, service: DigestService) -> None:
        self._db = database
        self._service = service

    @grpc_errors
    async def RunDigest(
        self, request: digest_pb2.RunDigestRequest, context: grpc.aio.ServicerContext
    ) -> digest_pb2.RunDigestResponse:
        as_of = timestamp_to_datetime(request.as_of, "as_of") if request.HasField("as_of") else None
        run = await self._service.request(as_of)
        return digest_pb2.RunDigestResponse(run=run_to_proto(run))

    @grpc_errors
    async def GetDigestRun(
        self, request: digest_pb2.GetDigestRunRequest, context: grpc.aio.ServicerContext
    ) -> digest_pb2.GetDigestRunResponse:
        run = await runs.get_run(self._db, request.id)
        return digest_pb2.GetDigestRunResponse(run=run_to_proto(run))

    @grpc_errors
    async def ListDigestRuns(
        self, request: digest_pb2.ListDigestRunsRequest, context: grpc.aio.ServicerContext
    ) -> digest_pb2.ListDigestRunsResponse:
        found = await runs.list_runs(self._db, request.limit or DIGEST_RUNS_DEFAULT_LIMIT)
        return digest_pb2.ListDigestRunsResponse(runs=[run_to_proto(r) for r in found])


def spec(database: Database, service: DigestService) -> ServiceSpec:
    return ServiceSpec(
        FULL_NAME,
        DigestServicer(database, service),
        digest_pb2_grpc.add_DigestServiceServicer_to_server,
    )
