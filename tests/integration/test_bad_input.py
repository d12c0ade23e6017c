"""Bad input: a clear 4xx naming the field, and nothing stored."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
import websockets
from google.protobuf import timestamp_pb2
from notify.v1 import (
    ingest_pb2,
    ingest_pb2_grpc,
    preference_pb2,
    preference_pb2_grpc,
    realtime_pb2,
    realtime_pb2_grpc,
)

from notify_core.auth import issue_user_token
from notify_core.db.schema import notifications
from tests.support.ids import uid
from tests.support.nodes import JWT_SECRET, Env

BASE = {"type": "comment", "title": "t", "message": "m"}


async def _stored(env: Env, user: str) -> int:
    assert env.node.database is not None
    async with env.node.database.read() as conn:
        result = await conn.execute(
            sa.select(sa.func.count())
            .select_from(notifications)
            .where(notifications.c.user_id == user)
        )
        return int(result.scalar_one())


CASES: list[tuple[str, dict[str, Any], str]] = [
    ("missing-user", {**BASE}, "user_id"),
    ("missing-type", {"title": "t", "message": "m"}, "type"),
    ("missing-title", {"type": "c", "message": "m"}, "title"),
    ("missing-message", {"type": "c", "title": "t"}, "message"),
    ("blank-title", {**BASE, "title": "   "}, "title"),
    ("title-number", {**BASE, "title": 5}, "title"),
    ("data-string", {**BASE, "data": "x"}, "data"),
    ("unknown-priority", {**BASE, "priority": "urgent"}, "priority"),
    ("priority-number", {**BASE, "priority": 1}, "priority"),
    ("unknown-channel", {**BASE, "channels": ["pigeon"]}, "channels[0]"),
    ("channels-string", {**BASE, "channels": "email"}, "channels"),
    ("title-too-long", {**BASE, "title": "x" * 256}, "title"),
    ("message-too-long", {**BASE, "message": "x" * 10_001}, "message"),
    ("data-too-big", {**BASE, "data": {"blob": "x" * 20_000}}, "data"),
    ("type-too-long", {**BASE, "type": "x" * 51}, "type"),
    ("unknown-field", {**BASE, "colour": "red"}, "colour"),
    ("idempotency-number", {**BASE, "idempotency_key": 7}, "idempotency_key"),
]


@pytest.mark.parametrize(
    ("body", "field"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES]
)
async def test_bad_send_is_400_naming_the_field_and_stores_nothing(
    env: Env, body: dict[str, Any], field: str
) -> None:
    user = uid()
    if field != "user_id":
        body = {"user_id": user, **body}
    r = await env.http.post("/notifications/send", json=body, headers=env.producer)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_argument"
    assert error["message"].startswith(field), error["message"]
    await asyncio.sleep(0.05)
    assert await _stored(env, user) == 0


async def test_non_json_body_is_400(env: Env) -> None:
    r = await env.http.post(
        "/notifications/send",
        content=b"{not json",
        headers={**env.producer, "content-type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["error"]["message"].startswith("body")


async def test_json_array_body_is_400(env: Env) -> None:
    r = await env.http.post("/notifications/send", json=[1, 2], headers=env.producer)
    assert r.status_code == 400
    assert "JSON object" in r.json()["error"]["message"]


async def test_one_bad_user_in_user_ids_stores_none(env: Env) -> None:
    good = uid()
    r = await env.http.post(
        "/notifications/send",
        json={**BASE, "user_ids": [good, "x" * 300]},
        headers=env.producer,
    )
    assert r.status_code == 400
    assert "user_id" in r.json()["error"]["message"]
    await asyncio.sleep(0.05)
    assert await _stored(env, good) == 0


@pytest.mark.parametrize("query", ["page=0", "page=abc", "limit=0", "limit=101", "limit=-1"])
async def test_bad_paging_is_400(env: Env, query: str) -> None:
    r = await env.http.get(f"/notifications?{query}", headers=env.user("u1"))
    assert r.status_code == 400
    assert r.json()["error"]["message"].split(":")[0] in ("page", "limit")


# --- what cannot be stored, on every JSON endpoint and in URLs and tokens -------------------

SEND = '{"user_id":"{u}","type":"c","title":"t","message":"m",'


@dataclass(frozen=True)
class Malformed:
    """One malformed request: ``{u}`` in ``path`` and ``body`` is a fresh user, ``{t}`` a
    fresh topic or template name; ``who`` is ``producer`` or ``user`` (a token for ``{u}``)."""

    id: str
    method: str
    path: str
    body: str | bytes | None
    field: str
    who: str = "producer"


MALFORMED = [
    Malformed("send-nul-data-value", "POST", "/notifications/send",
              SEND + '"data":{"a":{"b":"x\\u0000"}}}', "data.a.b"),
    Malformed("send-nul-data-key", "POST", "/notifications/send",
              SEND + '"data":{"a":{"k\\u0000":1}}}', "data.a"),
    Malformed("send-nul-title", "POST", "/notifications/send",
              '{"user_id":"{u}","type":"c","title":"a\\u0000","message":"m"}', "title"),
    Malformed("send-surrogate-title", "POST", "/notifications/send",
              '{"user_id":"{u}","type":"c","title":"\\ud800","message":"m"}', "title"),
    Malformed("send-surrogate-data", "POST", "/notifications/send",
              SEND + '"data":{"a":["\\udc00"]}}', "data.a[0]"),
    Malformed("send-nan", "POST", "/notifications/send", SEND + '"data":{"a":NaN}}', "data.a"),
    Malformed("send-infinity", "POST", "/notifications/send",
              SEND + '"data":{"a":-Infinity}}', "data.a"),
    Malformed("send-1e999", "POST", "/notifications/send", SEND + '"data":{"a":1e999}}', "data.a"),
    Malformed("send-int-2^53", "POST", "/notifications/send",
              SEND + '"data":{"a":9007199254740992}}', "data.a"),
    Malformed("send-int-400-digits", "POST", "/notifications/send",
              SEND + '"data":{"a":' + "9" * 400 + "}}", "data.a"),
    Malformed("send-deep-100k", "POST", "/notifications/send",
              SEND + '"data":{"a":' + "[" * 100_000 + "]" * 100_000 + "}}", "body"),
    Malformed("send-deep-33", "POST", "/notifications/send",
              SEND + '"data":{"a":' + "[" * 31 + "]" * 31 + "}}", "data.a" + "[0]" * 30),
    Malformed("send-at-past-9999", "POST", "/notifications/send",
              SEND + '"send_at":"9999-12-31T23:59:59-14:00"}', "send_at"),
    Malformed("send-at-before-1", "POST", "/notifications/send",
              SEND + '"send_at":"0001-01-01T00:00:00+14:00"}', "send_at"),
    Malformed("send-title-crlf", "POST", "/notifications/send",
              '{"user_id":"{u}","type":"c","title":"a\\r\\nBcc: x@example.com","message":"m"}',
              "title"),
    Malformed("send-title-lf", "POST", "/notifications/send",
              '{"user_id":"{u}","type":"c","title":"a\\nb","message":"m"}', "title"),
    Malformed("send-not-utf8", "POST", "/notifications/send", b'{"user_id":"\xff"}', "body"),
    Malformed("prefs-webhook-nul", "PUT", "/users/{u}/preferences",
              '{"webhook_url":"https://hooks.example.com/\\u0000"}', "webhook_url"),
    Malformed("prefs-type-nul", "PUT", "/users/{u}/preferences",
              '{"per_type":{"a\\u0000":{"email":false}}}', "per_type"),
    Malformed("prefs-hour-1e999", "PUT", "/users/{u}/preferences",
              '{"digest":{"enabled":true,"hour":1e999}}', "digest.hour"),
    Malformed("prefs-mine-surrogate", "PUT", "/preferences",
              '{"quiet_hours":{"start":"22:00","end":"07:00","timezone":"\\ud800"}}',
              "quiet_hours.timezone", who="user"),
    Malformed("device-token-nul", "POST", "/users/{u}/devices",
              '{"platform":"fcm","token":"tok\\u0000en"}', "token"),
    Malformed("device-name-surrogate", "POST", "/devices",
              '{"platform":"fcm","token":"token","device_name":"\\udfff"}', "device_name",
              who="user"),
    Malformed("device-webpush-deep", "POST", "/users/{u}/devices",
              '{"platform":"webpush","token":"' + "[" * 4_000 + '"}', "token"),
    Malformed("topic-user-nul", "PUT", "/topics/{t}/subscribers",
              '{"user_ids":["{u}","x\\u0000"]}', "user_ids[1]"),
    Malformed("template-body-nul", "PUT", "/templates/{t}/inapp",
              '{"body":"hello\\u0000"}', "body"),
    Malformed("template-subject-surrogate", "PUT", "/templates/{t}/email",
              '{"subject":"\\ud800","body":"b"}', "subject"),
    Malformed("template-version-int32", "POST", "/templates/render",
              '{"name":"{t}","channel":"inapp","version":2147483648}', "version"),
    Malformed("unsubscribe-link-nul", "POST", "/users/{u}/unsubscribe-links",
              '{"type":"c\\u0000"}', "type"),
    Malformed("url-user-nul", "PUT", "/users/{u}%00/preferences",
              '{"channels":{"email":false}}', "user_id"),
    Malformed("url-id-nul", "PATCH", "/notifications/x%00/read", None, "id", who="user"),
    Malformed("query-nul", "GET", "/topics/{t}/subscribers?after=a%00", None, "after"),
    Malformed("token-sub-long", "GET", "/notifications", None, "token.sub", who="long-sub"),
    Malformed("token-sub-nul", "PUT", "/preferences", '{"channels":{"email":false}}',
              "token.sub", who="nul-sub"),
]  # fmt: skip


async def _state(env: Env, user: str, name: str) -> list[Any]:
    """Everything a malformed request could have written for ``user`` or ``name``."""
    found: list[Any] = [await _stored(env, user)]
    for path in (
        f"/users/{user}/preferences",
        f"/users/{user}/devices",
        f"/topics/{name}/subscribers",
        f"/templates/{name}/inapp",
        f"/templates/{name}/email",
    ):
        r = await env.http.get(path, headers=env.producer)
        found.append((r.status_code, r.json()))
    return found


def _headers(env: Env, who: str, user: str) -> dict[str, str]:
    subjects = {"user": user, "long-sub": "u" * 300, "nul-sub": user + "\x00"}
    base = {"content-type": "application/json"}
    if who == "producer":
        return {**base, **env.producer}
    return {**base, "authorization": f"Bearer {issue_user_token(JWT_SECRET, subjects[who])}"}


@pytest.mark.parametrize("case", MALFORMED, ids=[c.id for c in MALFORMED])
async def test_malformed_input_is_400_naming_the_field_and_stores_nothing(
    env: Env, case: Malformed
) -> None:
    user, name = uid(), uid("n")
    before = await _state(env, user, name)
    body = case.body
    if isinstance(body, str):
        body = body.replace("{u}", user).replace("{t}", name).encode()
    path = case.path.replace("{u}", user).replace("{t}", name)
    r = await env.http.request(
        case.method, path, content=body, headers=_headers(env, case.who, user)
    )
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_argument"
    assert error["message"].startswith(case.field + ":"), error["message"]
    assert await _state(env, user, name) == before


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"data": {"a": float("nan")}}, "data"),
        ({"data": {"a": [float("inf")]}}, "data"),
        ({"data": {"a": {"b": "x\x00"}}}, "data.a.b"),
        ({"data": {"k\x00": 1}}, "data"),
        ({"title": "a\x00"}, "title"),
        ({"title": "a\r\nb"}, "title"),
        ({"user_id": "u" * 256}, "user_id"),
        ({"send_at": timestamp_pb2.Timestamp(seconds=10**12)}, "send_at"),
        ({"send_at": timestamp_pb2.Timestamp(seconds=-(10**12))}, "send_at"),
    ],
    ids=["nan", "infinity", "nul-value", "nul-key", "nul-title", "crlf-title", "long-user",
         "send-at-past-9999", "send-at-before-1"],
)  # fmt: skip
async def test_malformed_grpc_send_is_invalid_argument_naming_the_field_and_stores_nothing(
    env: Env, fields: dict[str, Any], field: str
) -> None:
    user = uid()
    request = ingest_pb2.SendRequest(user_id=user, type="c", title="t", message="m")
    for name, value in fields.items():
        if name == "data":
            request.data.update(value)
        elif name == "send_at":
            request.send_at.CopyFrom(value)
        else:
            setattr(request, name, value)
    stub = ingest_pb2_grpc.IngestServiceStub(env.grpc_channel)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Send(request, metadata=env.metadata)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (info.value.details() or "").startswith(field + ":"), info.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as batch:
        await stub.SendBatch(
            ingest_pb2.SendBatchRequest(
                notifications=[ingest_pb2.SendRequest(user_id=user, type="c", title="t",
                                                      message="m"), request]
            ),
            metadata=env.metadata,
        )  # fmt: skip
    assert batch.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (batch.value.details() or "").startswith(f"notifications[1].{field}:")
    assert await _stored(env, user) == 0


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda ch, md: realtime_pb2_grpc.RealtimeServiceStub(ch).MarkRead(
            realtime_pb2.MarkReadRequest(user_id="u1", id="x\x00"), metadata=md), "id"),
        (lambda ch, md: realtime_pb2_grpc.RealtimeServiceStub(ch).ListInbox(
            realtime_pb2.ListInboxRequest(user_id="u\x00"), metadata=md), "user_id"),
        (lambda ch, md: preference_pb2_grpc.PreferenceServiceStub(ch).SubscribeTopic(
            preference_pb2.SubscribeTopicRequest(topic="news", user_ids=["a", "b\x00"]),
            metadata=md), "user_ids[1]"),
        (lambda ch, md: preference_pb2_grpc.PreferenceServiceStub(ch).UpdatePreferences(
            preference_pb2.UpdatePreferencesRequest(
                user_id="u1", webhook_url="https://hooks.example.com/\x00"), metadata=md),
         "webhook_url"),
    ],
    ids=["mark-read-id", "inbox-user", "subscribe-user", "webhook-url"],
)  # fmt: skip
async def test_nul_in_any_grpc_request_is_invalid_argument_naming_the_field(
    env: Env, call: Callable[[grpc.aio.Channel, Any], Awaitable[Any]], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call(env.grpc_channel, env.metadata)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    assert (info.value.details() or "").startswith(field + ":"), info.value.details()


async def test_malformed_websocket_frames_are_errors_naming_the_field_and_the_socket_stays(
    env: Env,
) -> None:
    user = uid()
    frames = [
        ('{"type":"mark_read","id":"x\\u0000"}', "id"),
        ('{"type":"mark_read","id":"\\ud800"}', "id"),
        ('{"type":"mark_read","id":"x","n":NaN}', "n"),
        ('{"type":"mark_read","id":' + "[" * 5_000 + "]" * 5_000 + "}", "body"),
    ]
    async with websockets.connect(f"{env.ws_url}?token={env.token(user)}") as ws:
        assert json.loads(await ws.recv())["type"] == "pending"
        for frame, field in frames:
            await ws.send(frame)
            answer = json.loads(await ws.recv())
            assert answer["type"] == "error", answer
            assert answer["error"]["code"] == "invalid_argument"
            assert answer["error"]["message"].startswith(field + ":"), answer
        await ws.send(json.dumps({"type": "mark_all_read"}))
        assert json.loads(await ws.recv()) == {"type": "unread_count", "unread_count": 0}
