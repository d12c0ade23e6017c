"""The RealtimeService servicer: inbox, live publish and presence over gRPC."""

from __future__ import annotations

import grpc
from google.protobuf import timestamp_pb2
from notify.v1 import realtime_pb2, realtime_pb2_grpc

from notify_core.cache.base import CacheBackends
from notify_core.checks import check_user_id
from notify_core.constants import MAX_BATCH
from notify_core.convert import proto_to_json, row_to_proto
from notify_core.errors import InvalidArgument
from notify_core.grpc_server import ServiceSpec, grpc_errors
from notify_core.live import publish_live
from realtime_svc.inbox import Inbox

FULL_NAME = "notify.v1.RealtimeService"


class RealtimeServicer(realtime_pb2_grpc.RealtimeServiceServicer):  # type: ignore[misc]
    def __init__(self, inbox: Inbox, backends: CacheBackends, namespace: str) -> None:
        self._inbox = inbox
        self._backends = backends
        self._ns = namespace

    @grpc_errors
    async def ListInbox(
        self, request: realtime_pb2.ListInboxRequest, context: grpc.aio.ServicerContext
    ) -> realtime_pb2.ListInboxResponse:
        page = await self._inbox.list_page(
            check_user_id(request.user_id), request.page, request.limit
        )
        return realtime_pb2.ListInboxResponse(
            notifications=[row_to_proto(r) for r in page.rows],
            page=page.page,
            limit=page.limit,
            has_more=page.has_more,
            unread_count=page.unread_count,
        )

    @grpc_errors
    async def GetUnreadCount(
        self, request: realtime_pb2.GetUnreadCountRequest, context: grpc.aio.ServicerContext
    ) -> realtime_pb2.GetUnreadCountResponse:
        count = await self._inbox.unread_count(check_user_id(request.user_id))
        return realtime_pb2.GetUnreadCountResponse(unread_count=count)

    @grpc_errors
    async def MarkRead(
        self, request: realtime_pb2.MarkReadRequest, context: grpc.aio.ServicerContext
    ) -> realtime_pb2.MarkReadResponse:
        if not request.id:
            raise InvalidArgument("id", "is required")
        count = await self._inbox.mark_read(check_user_id(request.user_id), request.id)
        return realtime_pb2.MarkReadResponse(unread_count=count)

    @grpc_errors
    async def MarkAllRead(
        self, request: realtime_pb2.MarkAllReadRequest, context: grpc.aio.ServicerContext
    ) -> realtime_pb2.MarkAllReadResponse:
        updated = await self._inbox.mark_all_read(check_user_id(request.user_id))
        return realtime_pb2.MarkAllReadResponse(updated=updated)

    @grpc_errors
    async def Publish(
        self, request: realtime_pb2.PublishRequest, context: grpc.aio.ServicerContext
    ) -> realtime_pb2.PublishResponse:
        user_id = check_user_id(request.user_id)
        if not request.HasField("notification") or not request.notification.id:
            raise InvalidArgument("notification.id", "is required")
        if request.notification.user_id and request.notification.user_id != user_id:
            raise InvalidArgument("notification.user_id", "must match user_id")
        payload = proto_to_json(request.notification)
        payload["user_id"] = user_id
        receivers = await publish_live(self._backends.pubsub, self._ns, user_id, payload)
        return realtime_pb2.PublishResponse(receivers=receivers)

    @grpc_errors
    async def GetPresence(
        self, request: realtime_pb2.GetPresenceRequest, context: grpc.aio.ServicerContext
    ) -> realtime_pb2.GetPresenceResponse:
        if len(request.user_ids) > MAX_BATCH:
            raise InvalidArgument("user_ids", f"at most {MAX_BATCH} users per call")
        users = [check_user_id(u, f"user_ids[{i}]") for i, u in enumerate(request.user_ids)]
        infos = await self._backends.presence.get(users)
        answer = realtime_pb2.GetPresenceResponse()
        for info in infos:
            item = answer.users.add(
                user_id=info.user_id, online=info.online, connections=info.connections
            )
            if info.last_seen is not None:
                ts = timestamp_pb2.Timestamp()
                ts.FromNanoseconds(int(info.last_seen * 1e9))
                item.last_seen.CopyFrom(ts)
        return answer


def spec(inbox: Inbox, backends: CacheBackends, namespace: str) -> ServiceSpec:
    return ServiceSpec(
        FULL_NAME,
        RealtimeServicer(inbox, backends, namespace),
        realtime_pb2_grpc.add_RealtimeServiceServicer_to_server,
    )
