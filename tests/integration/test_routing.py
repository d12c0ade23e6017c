"""The router acts on the plan with real inputs, on both backends, records a decision for
every channel the plan considered, and lists all six with their reasons
(GET /notifications/{id}/deliveries)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import websockets

from notify_app.settings import NodeSettings
from tests.support.deliveries import recorded_channels, set_email
from tests.support.ids import uid
from tests.support.nodes import Env, running
from tests.support.smtp import Inbox, with_smtp
from tests.support.waiting import eventually

# Chosen for sending; the delivery workers then take it on from pending.
SENDING = {"pending", "sending", "sent", "retrying", "failed"}


async def decisions(env: Env, nid: str) -> dict[str, dict[str, Any]]:
    async def probe() -> Any:
        return await env.http.get(f"/notifications/{nid}/deliveries", headers=env.producer)

    r = await eventually(probe, lambda r: r.status_code == 200 and len(r.json()["deliveries"]) == 6)
    return {d["channel"]: d for d in r.json()["deliveries"]}


async def test_every_channel_gets_a_recorded_decision_with_a_reason(env: Env) -> None:
    user = uid()
    await env.http.put("/preferences", json={"email": "u@example.com"}, headers=env.user(user))
    nid = await env.send(user, priority="normal")
    got = await decisions(env, nid)
    assert got["inapp"]["status"] == "delivered"
    # offline, normal priority: email is chosen and waits for the delivery channel
    assert got["email"]["status"] in SENDING
    assert got["sms"] == {
        **got["sms"],
        "status": "skipped",
        "reason": "not chosen for this priority",
    }
    assert got["push"]["status"] == "skipped" and got["push"]["reason"] == "no registered device"
    assert all(d["reason"] for d in got.values())


async def test_only_channels_considered_are_recorded_and_all_six_are_listed(env: Env) -> None:
    user = uid()
    await set_email(env, user)
    offline = await env.send(user, priority="normal")
    named = await env.send(user, channels=["email"])
    for nid, rows, reason in (
        (offline, ["email", "inapp", "push", "webpush"], "not chosen for this priority"),
        (named, ["email"], "not requested by the producer"),
    ):
        got = await decisions(env, nid)
        assert await recorded_channels(env, nid) == rows
        assert list(got) == sorted(got)
        for channel, d in got.items():
            if channel in rows:
                assert d["id"] and d["reason"] and d["reason"] != reason
            else:
                assert (d["id"], d["status"], d["reason"]) == (None, "skipped", reason)
                assert d["created_at"] and d["attempts"] == 0


async def test_nothing_is_listed_before_routing(env: Env) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    nid = await env.send(uid(), send_at=later)
    r = await env.http.get(f"/notifications/{nid}/deliveries", headers=env.producer)
    assert r.status_code == 200, r.text
    assert r.json()["deliveries"] == []


async def test_online_user_gets_in_app_only(env: Env) -> None:
    user = uid()
    await env.http.put("/preferences", json={"email": "u@example.com"}, headers=env.user(user))
    async with websockets.connect(f"{env.ws_url}?token={env.token(user)}") as ws:
        assert json.loads(await ws.recv())["type"] == "pending"
        nid = await env.send(user, priority="normal")
        got = await decisions(env, nid)
    assert got["inapp"]["status"] == "delivered"
    assert got["email"]["status"] == "skipped"
    assert got["email"]["reason"] == "not chosen for this priority"
    assert await recorded_channels(env, nid) == ["inapp"]


async def test_named_email_reaches_an_online_user_at_normal_priority(
    settings: NodeSettings,
    smtp: tuple[Inbox, int],
) -> None:
    inbox, port = smtp
    async with running(settings, **with_smtp(settings, port)) as env:
        user = uid()
        address = await set_email(env, user)
        async with websockets.connect(f"{env.ws_url}?token={env.token(user)}") as ws:
            assert json.loads(await ws.recv())["type"] == "pending"
            nid = await env.send(user, priority="normal", title="Invoice", channels=["email"])
            got = await decisions(env, nid)
        assert got["email"]["status"] in SENDING
        assert got["email"]["reason"] == "requested by the producer"
        await eventually(lambda: asyncio.sleep(0, inbox.to(address)), lambda m: len(m) == 1)
        assert inbox.to(address)[0]["Subject"] == "Invoice"
        # named without inapp: nothing in the inbox
        assert got["inapp"]["status"] == "skipped"
        assert got["inapp"]["reason"] == "not requested by the producer"
        assert (await env.inbox(user))["notifications"] == []


async def test_named_channels_without_inapp_leave_the_inbox_alone(env: Env) -> None:
    user = uid()
    r = await env.http.put(
        "/preferences",
        json={"webhook_url": "https://hooks.example.com/x"},
        headers=env.user(user),
    )
    assert r.status_code == 200, r.text
    hook = await env.send(user, channels=["webhook"], group_key="g")
    both = await env.send(user, channels=["webhook", "inapp"], group_key="g")
    got = await decisions(env, hook)
    assert got["webhook"]["status"] in SENDING
    assert got["inapp"]["status"] == "skipped"
    # the second is the group's first inbox entry: nothing to merge into before it
    assert (await decisions(env, both))["inapp"]["status"] == "delivered"
    page = await env.wait_inbox(user, 1)
    assert [n["id"] for n in page["notifications"]] == [both]


async def test_switching_in_app_off_keeps_it_out_of_the_inbox(env: Env) -> None:
    user = uid()
    r = await env.http.put(
        "/preferences", json={"channels": {"inapp": False}}, headers=env.user(user)
    )
    assert r.status_code == 200
    nid = await env.send(user)
    got = await decisions(env, nid)
    assert got["inapp"] == {
        **got["inapp"],
        "status": "skipped",
        "reason": "switched off by the user",
    }
    assert (await env.inbox(user))["notifications"] == []


async def test_low_priority_email_goes_to_the_digest(env: Env) -> None:
    user = uid()
    await env.http.put("/preferences", json={"email": "u@example.com"}, headers=env.user(user))
    got = await decisions(env, await env.send(user, priority="low"))
    assert got["email"]["status"] == "digested"


async def test_quiet_hours_hold_email_until_the_window_ends(env: Env) -> None:
    user = uid()
    # a window covering every hour but one minute: now is inside it
    from datetime import UTC, datetime, timedelta

    start = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%H:%M")
    end = (datetime.now(UTC) - timedelta(minutes=2)).strftime("%H:%M")
    r = await env.http.put(
        "/preferences",
        json={
            "email": "u@example.com",
            "quiet_hours": {"start": start, "end": end, "timezone": "UTC"},
        },
        headers=env.user(user),
    )
    assert r.status_code == 200, r.text
    got = await decisions(env, await env.send(user, priority="normal"))
    assert got["email"]["status"] == "held" and got["email"]["reason"] == "quiet hours"
    assert got["email"]["until"] is not None
    assert got["inapp"]["status"] == "delivered"


async def test_email_over_the_rate_limit_goes_to_the_digest(env: Env) -> None:
    user = uid()
    await env.http.put("/preferences", json={"email": "u@example.com"}, headers=env.user(user))
    ids = [await env.send(user, priority="normal") for _ in range(11)]
    statuses = [(await decisions(env, nid))["email"]["status"] for nid in ids]
    # the original design's 10 emails per hour
    assert sum(s in SENDING for s in statuses) == 10
    assert statuses.count("digested") == 1


async def test_deliveries_need_a_producer_key_and_a_known_id(env: Env) -> None:
    r = await env.http.get(f"/notifications/{uuid.uuid4()}/deliveries", headers=env.producer)
    assert r.status_code == 404
    r = await env.http.get(f"/notifications/{uuid.uuid4()}/deliveries", headers=env.user("u"))
    assert r.status_code == 401
