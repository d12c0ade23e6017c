"""gRPC: send, inbox RPCs, errors, health and reflection (DESIGN §6)."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from notify.v1 import common_pb2, ingest_pb2, ingest_pb2_grpc, realtime_pb2, realtime_pb2_grpc

from tests.support.ids import uid
from tests.support.nodes import Env

SERVICES = [
    "notify.v1.IngestService",
    "notify.v1.RouterService",
    "notify.v1.PreferenceService",
    "notify.v1.TemplateService",
    "notify.v1.DeliveryService",
    "notify.v1.RealtimeService",
    "notify.v1.DigestService",
]


def request(user: str, **kw: object) -> ingest_pb2.SendRequest:
    fields: dict[str, object] = {"user_id": user, "type": "comment", "title": "t", "message": "m"}
    fields.update(kw)
    return ingest_pb2.SendRequest(**fields)  # type: ignore[arg-type]


async def test_grpc_send_and_list_inbox(env: Env) -> None:
    ingest = ingest_pb2_grpc.IngestServiceStub(env.grpc_channel)
    realtime = realtime_pb2_grpc.RealtimeServiceStub(env.grpc_channel)
    user = uid()
    req = request(user, priority=common_pb2.PRIORITY_HIGH)
    req.data.update({"n": 3, "s": "x"})
    reply = await ingest.Send(req, metadata=env.metadata)
    page = await env.wait_inbox(user, 1)
    assert page["notifications"][0]["id"] == reply.id
    assert page["notifications"][0]["data"] == {"n": 3, "s": "x"}
    listed = await realtime.ListInbox(
        realtime_pb2.ListInboxRequest(user_id=user), metadata=env.metadata
    )
    assert [n.id for n in listed.notifications] == [reply.id]
    assert listed.notifications[0].priority == common_pb2.PRIORITY_HIGH
    assert listed.unread_count == 1 and listed.limit == 20 and not listed.has_more
    count = await realtime.MarkRead(
        realtime_pb2.MarkReadRequest(user_id=user, id=reply.id), metadata=env.metadata
    )
    assert count.unread_count == 0


async def test_grpc_send_batch_is_atomic(env: Env) -> None:
    ingest = ingest_pb2_grpc.IngestServiceStub(env.grpc_channel)
    users = [uid(), uid()]
    batch = await ingest.SendBatch(
        ingest_pb2.SendBatchRequest(notifications=[request(u) for u in users]),
        metadata=env.metadata,
    )
    assert len(batch.ids) == 2
    bad = ingest_pb2.SendBatchRequest(notifications=[request(uid()), request(uid(), title="")])
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await ingest.SendBatch(bad, metadata=env.metadata)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith("notifications[1].title")


async def test_grpc_idempotency(env: Env) -> None:
    ingest = ingest_pb2_grpc.IngestServiceStub(env.grpc_channel)
    user = uid()
    a = await ingest.Send(request(user, idempotency_key="k1"), metadata=env.metadata)
    b = await ingest.Send(request(user, idempotency_key="k1"), metadata=env.metadata)
    assert a.id == b.id


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"user_id": ""}, "user_id"),
        ({"title": "x" * 300}, "title"),
        ({"priority": 9}, "priority"),
        ({"channels": [42]}, "channels[0]"),
    ],
)
async def test_grpc_bad_input_is_invalid_argument_naming_the_field(
    env: Env, fields: dict[str, object], field: str
) -> None:
    ingest = ingest_pb2_grpc.IngestServiceStub(env.grpc_channel)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await ingest.Send(request(uid(), **fields), metadata=env.metadata)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith(field)


async def test_grpc_without_or_with_wrong_key_is_unauthenticated(env: Env) -> None:
    ingest = ingest_pb2_grpc.IngestServiceStub(env.grpc_channel)
    for metadata in ((), (("authorization", "Bearer nope-nope-nope"),)):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await ingest.Send(request(uid()), metadata=metadata)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_grpc_mark_read_of_another_users_notification_is_not_found(env: Env) -> None:
    ingest = ingest_pb2_grpc.IngestServiceStub(env.grpc_channel)
    realtime = realtime_pb2_grpc.RealtimeServiceStub(env.grpc_channel)
    owner = uid()
    reply = await ingest.Send(request(owner), metadata=env.metadata)
    await env.wait_inbox(owner, 1)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await realtime.MarkRead(
            realtime_pb2.MarkReadRequest(user_id=uid(), id=reply.id), metadata=env.metadata
        )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def test_health_reports_serving_for_all_seven_services(env: Env) -> None:
    stub = health_pb2_grpc.HealthStub(env.grpc_channel)
    for name in ["", *SERVICES]:
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=name))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, name


async def test_reflection_lists_every_service_and_describes_them(env: Env) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(env.grpc_channel)

    async def ask(
        req: reflection_pb2.ServerReflectionRequest,
    ) -> reflection_pb2.ServerReflectionResponse:
        call = stub.ServerReflectionInfo(iter([req]))
        async for reply in call:
            return reply
        raise AssertionError("no reflection answer")

    listed = await ask(reflection_pb2.ServerReflectionRequest(list_services=""))
    names = {s.name for s in listed.list_services_response.service}
    assert set(SERVICES) <= names
    assert "grpc.health.v1.Health" in names
    described = await ask(
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="notify.v1.IngestService")
    )
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in described.file_descriptor_response.file_descriptor_proto
    ]
    methods = {
        m.name for f in files for s in f.service if s.name == "IngestService" for m in s.method
    }
    assert methods == {"Send", "SendBatch", "SendToTopic", "GetTopicSend"}


async def test_presence_flips_with_a_websocket(env: Env) -> None:
    import websockets

    realtime = realtime_pb2_grpc.RealtimeServiceStub(env.grpc_channel)
    user = uid()

    async def online() -> bool:
        reply = await realtime.GetPresence(
            realtime_pb2.GetPresenceRequest(user_ids=[user]), metadata=env.metadata
        )
        return reply.users[0].online

    assert not await online()
    async with websockets.connect(f"{env.ws_url}?token={env.token(user)}") as ws:
        await ws.recv()
        assert await online()
    from tests.support.waiting import eventually

    await eventually(online, lambda v: v is False)
