"""Grouping (opt-in by group key), scheduled sends, held work released (also across a
restart), configured rate limits, on both backends."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import websockets
from notify.v1 import router_pb2, router_pb2_grpc

from notify_app.settings import NodeSettings
from notify_core.ratelimit import DEFAULT_LIMITS, Limit, RateRules
from tests.support.ids import uid
from tests.support.live import recv
from tests.support.nodes import Env, running
from tests.support.waiting import eventually

# Chosen for sending: from pending the delivery workers take it on (the test domains do not
# resolve, so webhooks and email end up retrying or failed; that is not what these test).
SENDING = {"pending", "sending", "sent", "retrying", "failed"}


async def deliveries(env: Env, nid: str) -> dict[str, dict[str, Any]]:
    async def probe() -> Any:
        return await env.http.get(f"/notifications/{nid}/deliveries", headers=env.producer)

    r = await eventually(probe, lambda r: r.status_code == 200 and len(r.json()["deliveries"]) == 6)
    return {d["channel"]: d for d in r.json()["deliveries"]}


async def test_sends_with_a_group_key_merge_into_one_inbox_entry(settings: NodeSettings) -> None:
    async with running(settings, dedup_window=3600.0) as env:
        user = uid()
        async with websockets.connect(f"{env.ws_url}?token={env.token(user)}") as ws:
            assert (await recv(ws))["type"] == "pending"
            first = await env.send(
                user,
                title="New comment",
                message="Alice commented on your post",
                data={"actor": "Alice"},
                group_key="post-1",
            )
            assert (await recv(ws))["type"] == "notification"
            await ws.send(json.dumps({"type": "mark_read", "id": first}))
            assert (await recv(ws)) == {"type": "unread_count", "unread_count": 0}
            later = []
            for name, priority in (("Bob", "high"), ("Carol", "low"), ("Dan", "normal")):
                later.append(
                    await env.send(
                        user,
                        title=f"{name} commented",
                        message=f"{name} commented on your post",
                        data={"actor": name},
                        priority=priority,
                        group_key="post-1",
                    )
                )
                event = await recv(ws)
                # an update of the first entry, not a new item
                assert event["type"] == "notification_updated"
                assert event["notification"]["id"] == first
                assert event["notification"]["read"] is False  # unread again
            shown = event["notification"]
            assert shown["count"] == 4
            assert shown["title"] == "Dan commented"  # the newest
            assert shown["message"] == "Dan and 3 others commented on your post"
            assert shown["priority"] == "high"  # the highest of its members
        page = await env.inbox(user)
        assert [n["id"] for n in page["notifications"]] == [first]
        assert page["notifications"][0]["priority"] == "high"
        assert page["unread_count"] == 1
        merged = await deliveries(env, later[0])
        assert merged["inapp"]["status"] == "merged"
        assert merged["inapp"]["merge_into"] == first
        # high and online: SMS was never considered, derived for the listing
        assert (merged["sms"]["id"], merged["sms"]["reason"]) == (
            None,
            "not chosen for this priority",
        )
        # another group key is another entry
        other = await env.send(user, group_key="post-2")
        assert (await deliveries(env, other))["inapp"]["status"] == "delivered"
        assert len((await env.wait_inbox(user, 2))["notifications"]) == 2


async def test_sends_without_a_group_key_are_each_their_own_entry(settings: NodeSettings) -> None:
    async with running(settings, dedup_window=3600.0) as env:
        user = uid()
        ids = [await env.send(user, title=f"m{i}", data={"i": i}) for i in range(60)]
        page = await env.wait_inbox(user, 60)
        assert {n["id"] for n in page["notifications"]} == set(ids)
        assert {n["title"] for n in page["notifications"]} == {f"m{i}" for i in range(60)}
        assert all(n["count"] == 1 for n in page["notifications"])
        assert page["unread_count"] == 60
        for nid in (ids[1], ids[-1]):
            assert (await deliveries(env, nid))["inapp"]["status"] == "delivered"


async def test_grouping_window_is_per_type(settings: NodeSettings) -> None:
    async with running(settings, dedup_window=3600.0, dedup_window_by_type={"chat": 0.0}) as env:
        user = uid()
        a = await env.send(user, type="chat", group_key="room-1")
        b = await env.send(user, type="chat", group_key="room-1")
        assert (await deliveries(env, a))["inapp"]["status"] == "delivered"
        assert (await deliveries(env, b))["inapp"]["status"] == "delivered"
        c = await env.send(user, type="like", group_key="post-1")
        d = await env.send(user, type="like", group_key="post-1")
        assert (await deliveries(env, c))["inapp"]["status"] == "delivered"
        assert (await deliveries(env, d))["inapp"]["status"] == "merged"


async def test_send_at_waits_then_delivers_even_across_a_restart(settings: NodeSettings) -> None:
    user = uid()
    send_at = datetime.now(UTC) + timedelta(seconds=3)
    async with running(settings, scheduler_interval=0.2) as env:
        nid = await env.send(user, send_at=send_at.isoformat())
        r = await env.http.get(f"/notifications/{nid}/deliveries", headers=env.producer)
        assert r.status_code == 200 and r.json()["deliveries"] == []  # not routed yet
        assert (await env.inbox(user))["notifications"] == []
    # the node is down when the time comes; the next one sends it
    await asyncio.sleep(max(0.0, (send_at - datetime.now(UTC)).total_seconds()) + 0.5)
    async with running(settings, scheduler_interval=0.2) as env:
        page = await env.wait_inbox(user, 1)
        (shown,) = page["notifications"]
        assert shown["id"] == nid
        created = datetime.fromisoformat(shown["created_at"].replace("Z", "+00:00"))
        assert abs((created - send_at).total_seconds()) < 0.01  # shown as of its send time


async def test_rate_limited_work_is_held_and_released_after_a_restart(
    settings: NodeSettings,
) -> None:
    user = uid()
    limits = RateRules({**DEFAULT_LIMITS, "webhook": Limit(1, 3.0), "inapp": Limit(2, 3.0)})
    async with running(settings, rate_limits=limits, scheduler_interval=0.2) as env:
        r = await env.http.put(
            "/preferences",
            json={"webhook_url": "https://hooks.example.com/x"},
            headers=env.user(user),
        )
        assert r.status_code == 200, r.text
        ids = [await env.send(user, title=f"n{i}") for i in range(3)]
        got = [await deliveries(env, nid) for nid in ids]
        assert [g["webhook"]["status"] in SENDING for g in got] == [True, False, False]
        assert [g["webhook"]["status"] for g in got][1:] == ["held", "held"]
        assert got[1]["webhook"]["reason"] == "rate limited"
        assert [g["inapp"]["status"] for g in got] == ["delivered", "delivered", "held"]
        assert len((await env.inbox(user))["notifications"]) == 2
    await asyncio.sleep(3.2)
    async with running(settings, rate_limits=limits, scheduler_interval=0.2) as env:
        async with websockets.connect(f"{env.ws_url}?token={env.token(user)}") as ws:
            await recv(ws)  # pending
            page = await env.wait_inbox(user, 3)
            assert {n["id"] for n in page["notifications"]} == set(ids)
        released = await eventually(
            lambda: deliveries(env, ids[1]), lambda d: d["webhook"]["status"] in SENDING
        )
        assert released["webhook"]["reason"] == "released after rate limited"
        # the third waits for the second's slot: held again, or released by now
        third = await deliveries(env, ids[2])
        assert third["webhook"]["status"] in {"held"} | SENDING
        assert third["inapp"]["status"] == "delivered"


async def test_quiet_hours_release_at_the_window_end(settings: NodeSettings) -> None:
    """The scheduler's clock is given: the held email is released exactly at the end."""
    async with running(settings, scheduler_interval=3600.0) as env:
        user = uid()
        now = datetime.now(UTC)
        tokyo = now.astimezone(ZoneInfo("Asia/Tokyo"))
        start = (tokyo - timedelta(hours=1)).strftime("%H:%M")
        end = (tokyo + timedelta(hours=2)).strftime("%H:%M")
        r = await env.http.put(
            "/preferences",
            json={
                "email": "u@example.com",
                "quiet_hours": {"start": start, "end": end, "timezone": "Asia/Tokyo"},
            },
            headers=env.user(user),
        )
        assert r.status_code == 200, r.text
        nid = await env.send(user)
        held = (await deliveries(env, nid))["email"]
        assert held["status"] == "held" and held["reason"] == "quiet hours"
        until = datetime.fromisoformat(held["until"].replace("Z", "+00:00"))
        assert timedelta(hours=1, minutes=58) < until - now <= timedelta(hours=2)
        scheduler = env.node.scheduler
        assert scheduler is not None
        # (the real database is shared by the tests: other rows may be due too)
        await scheduler.tick(until - timedelta(seconds=1))
        assert (await deliveries(env, nid))["email"]["status"] == "held"
        assert (await scheduler.tick(until))[1] >= 1
        released = (await deliveries(env, nid))["email"]
        assert released["status"] in SENDING
        assert released["reason"] == "released after quiet hours"


async def test_per_type_limit_and_drop_over_limit(settings: NodeSettings) -> None:
    limits = RateRules(DEFAULT_LIMITS, {("digest-me", "webhook"): Limit(1, 3600.0)})
    async with running(settings, rate_limits=limits, over_limit={"webhook": "drop"}) as env:
        user = uid()
        await env.http.put(
            "/preferences",
            json={"webhook_url": "https://hooks.example.com/x"},
            headers=env.user(user),
        )
        a = await env.send(user, type="digest-me")
        b = await env.send(user, type="digest-me")
        c = await env.send(user, type="other")
        assert (await deliveries(env, a))["webhook"]["status"] in SENDING
        dropped = (await deliveries(env, b))["webhook"]
        assert (dropped["status"], dropped["reason"]) == ("skipped", "rate limited: dropped")
        assert (await deliveries(env, c))["webhook"]["status"] in SENDING


async def test_deliveries_over_grpc(env: Env) -> None:
    user = uid()
    nid = await env.send(user)
    await deliveries(env, nid)
    stub = router_pb2_grpc.RouterServiceStub(env.grpc_channel)
    reply = await stub.ListDeliveries(
        router_pb2.ListDeliveriesRequest(notification_id=nid), metadata=env.metadata
    )
    by_channel = {d.channel: d for d in reply.deliveries}
    assert by_channel["inapp"].status == "delivered"
    assert by_channel["sms"].status == "skipped" and by_channel["sms"].reason
    # never considered: no record, so no id (the listing derives it)
    assert by_channel["sms"].id == "" and by_channel["inapp"].id
    try:
        await stub.ListDeliveries(
            router_pb2.ListDeliveriesRequest(notification_id=str(uuid.uuid4())),
            metadata=env.metadata,
        )
        raise AssertionError("an unknown id must fail")
    except grpc.aio.AioRpcError as exc:
        assert exc.code() == grpc.StatusCode.NOT_FOUND
