"""Sending to a topic: accepted once, fanned out in batches to every subscriber, exactly
once each, on both backends; over REST and gRPC."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc
import sqlalchemy as sa
from notify.v1 import ingest_pb2, ingest_pb2_grpc

from notify_core.constants import FANOUT_BATCH, MAX_TOPIC_SUBSCRIBE
from notify_core.db.schema import notifications
from tests.support.nodes import Env
from tests.support.waiting import eventually


def topic_name() -> str:
    return f"t.{uuid.uuid4().hex[:10]}"


async def subscribe(env: Env, topic: str, users: list[str]) -> None:
    for start in range(0, len(users), MAX_TOPIC_SUBSCRIBE):
        r = await env.http.put(
            f"/topics/{topic}/subscribers",
            json={"user_ids": users[start : start + MAX_TOPIC_SUBSCRIBE]},
            headers=env.producer,
        )
        assert r.status_code == 200, r.text


async def topic_send(env: Env, send_id: str) -> dict[str, Any]:
    r = await env.http.get(f"/topic-sends/{send_id}", headers=env.producer)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


async def accepted_for(env: Env, send_id: str) -> int:
    assert env.node.database is not None
    async with env.node.database.read() as conn:
        count = await conn.scalar(
            sa.select(sa.func.count()).where(notifications.c.idempotency_key == f"topic:{send_id}")
        )
    return int(count or 0)


async def test_a_topic_send_reaches_100k_subscribers_once_each_in_batches(env: Env) -> None:
    topic = topic_name()
    prefix = uuid.uuid4().hex[:6]
    total = 100_000
    await subscribe(env, topic, [f"{prefix}-{i:06d}" for i in range(total)])
    r = await env.http.post(
        "/notifications/send",
        json={"topic": topic, "type": "news", "title": "Launch", "message": "We launched"},
        headers=env.producer,
    )
    assert r.status_code == 202, r.text
    send_id = r.json()["id"]
    assert r.json()["topic"] == topic
    seen: set[int] = set()

    async def progress() -> dict[str, Any]:
        state = await topic_send(env, send_id)
        seen.add(state["fanned_out"])
        return state

    try:
        done = await eventually(progress, lambda s: s["state"] == "done", timeout=150)
        assert done["fanned_out"] == total
        # it advanced a batch at a time, never all subscribers at once
        assert all(n % FANOUT_BATCH == 0 for n in seen)
        assert any(0 < n < total for n in seen)
        assert await accepted_for(env, send_id) == total
        # one subscriber's inbox gets it (routing runs on, asynchronously)
        page = await env.wait_inbox(f"{prefix}-000000", 1, timeout=120)
        assert page["notifications"][0]["title"] == "Launch"
    finally:
        # The real database outlives this node: 100,000 notifications left unrouted would
        # keep the next tests' relays and routers busy.
        assert env.node.database is not None
        async with env.node.database.write() as conn:
            await conn.execute(
                notifications.delete().where(notifications.c.idempotency_key == f"topic:{send_id}")
            )


async def test_topic_send_is_idempotent_and_a_rerun_adds_nothing(env: Env) -> None:
    topic = topic_name()
    users = [f"u-{uuid.uuid4().hex[:8]}" for _ in range(30)]
    await subscribe(env, topic, users)
    body = {"topic": topic, "type": "news", "title": "t", "message": "m", "idempotency_key": "k1"}
    first = await env.http.post("/notifications/send", json=body, headers=env.producer)
    again = await env.http.post("/notifications/send", json=body, headers=env.producer)
    assert first.status_code == again.status_code == 202
    send_id = first.json()["id"]
    assert again.json()["id"] == send_id
    await eventually(lambda: topic_send(env, send_id), lambda s: s["state"] == "done")
    # a duplicate fan-out job (a redelivery) changes nothing
    assert env.node.queue is not None
    from ingest_svc.topics import fanout_message

    await env.node.queue.publish("fanout", [fanout_message(send_id, "normal")])
    await asyncio.sleep(1.0)
    assert await accepted_for(env, send_id) == 30
    assert (await topic_send(env, send_id))["fanned_out"] == 30


async def test_topic_send_over_grpc_and_bad_input(env: Env) -> None:
    topic = topic_name()
    await subscribe(env, topic, ["g-1", "g-2"])
    stub = ingest_pb2_grpc.IngestServiceStub(env.grpc_channel)
    reply = await stub.SendToTopic(
        ingest_pb2.SendToTopicRequest(
            topic=topic,
            notification=ingest_pb2.SendRequest(type="news", title="t", message="m"),
        ),
        metadata=env.metadata,
    )
    state = await eventually(
        lambda: stub.GetTopicSend(
            ingest_pb2.GetTopicSendRequest(id=reply.id), metadata=env.metadata
        ),
        lambda s: s.state == "done",
    )
    assert state.fanned_out == 2 and state.topic == topic
    for request, field in [
        (
            ingest_pb2.SendToTopicRequest(
                topic="bad topic!",
                notification=ingest_pb2.SendRequest(type="n", title="t", message="m"),
            ),
            "topic",
        ),
        (
            ingest_pb2.SendToTopicRequest(
                topic=topic,
                notification=ingest_pb2.SendRequest(user_id="x", type="n", title="t", message="m"),
            ),
            "user_id",
        ),
        (
            ingest_pb2.SendToTopicRequest(
                topic=topic, notification=ingest_pb2.SendRequest(type="n", message="m")
            ),
            "title",
        ),
    ]:
        try:
            await stub.SendToTopic(request, metadata=env.metadata)
            raise AssertionError(f"{field} must be refused")
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert (exc.details() or "").startswith(field)
    r = await env.http.post(
        "/notifications/send",
        json={"topic": topic, "user_id": "u", "type": "n", "title": "t", "message": "m"},
        headers=env.producer,
    )
    assert r.status_code == 400 and "topic" in r.json()["error"]["message"]
    r = await env.http.get(f"/topic-sends/{uuid.uuid4()}", headers=env.producer)
    assert r.status_code == 404


async def test_a_topic_send_merges_only_by_group_key(env: Env) -> None:
    topic = topic_name()
    user = f"u-{uuid.uuid4().hex[:8]}"
    await subscribe(env, topic, [user])
    older = await env.send(user, type="news", title="Earlier news", priority="high")

    async def to_topic(**fields: Any) -> None:
        body = {"topic": topic, "type": "news", "message": "m", **fields}
        r = await env.http.post("/notifications/send", json=body, headers=env.producer)
        assert r.status_code == 202, r.text
        send_id = r.json()["id"]
        await eventually(lambda: topic_send(env, send_id), lambda s: s["state"] == "done")

    # no group key: its own entry, not merged into the older item of the same type
    await to_topic(title="Launch", priority="low")
    page = await env.wait_inbox(user, 2)
    launch = next(n for n in page["notifications"] if n["id"] != older)
    assert launch["title"] == "Launch" and launch["priority"] == "low"
    assert [n["count"] for n in page["notifications"]] == [1, 1]
    # with a group key, later sends of that key merge into the first
    await to_topic(title="Release 1", group_key="release")
    await env.wait_inbox(user, 3)
    await to_topic(title="Release 2", group_key="release", priority="high")
    page = await eventually(
        lambda: env.inbox(user),
        lambda p: any(n["count"] == 2 for n in p["notifications"]),
    )
    assert len(page["notifications"]) == 3
    (merged,) = [n for n in page["notifications"] if n["count"] == 2]
    assert (merged["title"], merged["priority"]) == ("Release 2", "high")
