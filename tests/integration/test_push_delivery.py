"""Push deliveries end to end, on both backends, against the local APNs server and push
service: one send
per device under the notification's push delivery, devices deactivated when APNs says the
token is gone, retries honouring Retry-After, templates, quiet hours, the stale sweep."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from delivery_svc.config_push import push_settings
from notify_app.settings import NodeSettings
from notify_core.db.schema import device_tokens
from preference_svc.device_lifecycle import deactivate_stale
from tests.support.apns import GONE, UNAVAILABLE, ApnsServer
from tests.support.deliveries import status
from tests.support.fcm import FcmServer
from tests.support.h2server import bundle, trusting
from tests.support.ids import uid
from tests.support.nodes import Env, running
from tests.support.push import apns_token, device_row, register, sends_of
from tests.support.waiting import eventually
from tests.support.webpush import PushService, vapid_env


def with_apns(settings: NodeSettings, apns: ApnsServer, **changes: Any) -> dict[str, Any]:
    return {"push": push_settings(apns.env()), **changes}


async def sent(env: Env, nid: str) -> dict[str, Any]:
    return await eventually(
        lambda: status(env, nid, "push"), lambda d: d.get("status") in ("sent", "failed")
    )


async def test_one_push_reaches_every_device_each_with_its_own_send(
    settings: NodeSettings, apns: ApnsServer
) -> None:
    async with running(settings, **with_apns(settings, apns)) as env:
        user = uid()
        tokens = [apns_token() for _ in range(3)]
        devices = [await register(env, user, "apns", t) for t in tokens]
        before = {d: (await device_row(env, d))["last_used_at"] for d in devices}
        nid = await env.send(user, priority="high", title="Order shipped", message="On its way")
        delivery = await sent(env, nid)
        assert delivery["status"] == "sent" and delivery["provider"] == "apns"
        sends = await sends_of(env, nid)
        assert sorted(s["device_id"] for s in sends) == sorted(devices)
        assert {s["status"] for s in sends} == {"sent"}
        assert len({s["provider_message_id"] for s in sends}) == 3
        got = {p.token: p for p in apns.fake.accepted if p.token in tokens}
        assert sorted(got) == sorted(tokens)
        one = got[tokens[0]]
        assert one.payload["aps"]["alert"] == {"title": "Order shipped", "body": "On its way"}
        assert one.payload["aps"]["badge"] == 1  # the user's unread count
        assert one.payload["notification_id"] == nid
        assert one.headers["apns-priority"] == "10"
        assert {p.headers["apns-id"] for p in got.values()} == {
            s["provider_message_id"] for s in sends
        }
        for d in devices:
            assert (await device_row(env, d))["last_used_at"] > before[d]


async def test_a_gone_token_deactivates_its_device_and_the_others_still_get_it(
    settings: NodeSettings, apns: ApnsServer
) -> None:
    async with running(settings, **with_apns(settings, apns)) as env:
        user = uid()
        good = await register(env, user, "apns", apns_token())
        gone = await register(env, user, "apns", GONE)
        nid = await env.send(user, priority="high")
        assert (await sent(env, nid))["status"] == "sent"
        by_device = {s["device_id"]: s for s in await sends_of(env, nid)}
        assert by_device[good]["status"] == "sent"
        assert by_device[gone]["status"] == "failed"
        assert "Unregistered" in by_device[gone]["error_message"]
        row = await device_row(env, gone)
        assert not row["active"] and "Unregistered" in row["deactivated_reason"]
        listed = await env.http.get(
            "/devices", params={"include_inactive": "true"}, headers=env.user(user)
        )
        reasons = {d["id"]: d["deactivated_reason"] for d in listed.json()["devices"]}
        assert reasons[good] is None and "Unregistered" in reasons[gone]
        active = await env.http.get("/devices", headers=env.user(user))
        assert [d["id"] for d in active.json()["devices"]] == [good]


async def test_when_the_last_device_is_gone_the_router_stops_choosing_push(
    settings: NodeSettings, apns: ApnsServer
) -> None:
    async with running(settings, **with_apns(settings, apns)) as env:
        user = uid()
        await register(env, user, "apns", GONE)
        nid = await env.send(user, priority="high")
        failed = await sent(env, nid)
        assert failed["status"] == "failed" and "Unregistered" in failed["last_error"]
        later = await env.send(user, priority="high")
        decided = await eventually(
            lambda: status(env, later, "push"), lambda d: d.get("status") is not None
        )
        assert decided["status"] == "skipped" and decided["reason"] == "no registered device"


async def test_a_refusal_for_now_is_retried_after_the_providers_retry_after(
    settings: NodeSettings, apns: ApnsServer
) -> None:
    async with running(settings, **with_apns(settings, apns, retry_schedule=(0.1,))) as env:
        user = uid()
        await register(env, user, "apns", UNAVAILABLE)
        nid = await env.send(user, priority="high")
        asked = datetime.now(UTC)
        retrying = await eventually(
            lambda: status(env, nid, "push"), lambda d: d.get("status") == "retrying"
        )
        assert "ServiceUnavailable" in retrying["last_error"]
        next_try = datetime.fromisoformat(retrying["until"])
        assert next_try - asked >= timedelta(seconds=6)  # APNs said Retry-After: 7


async def test_a_push_template_gives_the_title_and_body(
    settings: NodeSettings, apns: ApnsServer
) -> None:
    async with running(settings, **with_apns(settings, apns)) as env:
        name = uid("tpl")
        r = await env.http.put(
            f"/templates/{name}/push",
            json={"subject": "Hi {{ who }}", "body": "{{ n }} new"},
            headers=env.producer,
        )
        assert r.status_code == 201, r.text
        user, token = uid(), apns_token()
        await register(env, user, "apns", token)
        nid = await env.send(user, priority="high", template=name, data={"who": "Ann", "n": 3})
        done = await sent(env, nid)
        assert done["status"] == "sent", done["last_error"]
        (push,) = [p for p in apns.fake.accepted if p.token == token]
        assert push.payload["aps"]["alert"] == {"title": "Hi Ann", "body": "3 new"}


async def test_quiet_hours_hold_a_push(settings: NodeSettings, apns: ApnsServer) -> None:
    async with running(settings, **with_apns(settings, apns)) as env:
        user, token = uid(), apns_token()
        await register(env, user, "apns", token)
        now = datetime.now(UTC)
        start = (now - timedelta(minutes=1)).strftime("%H:%M")
        end = (now - timedelta(minutes=2)).strftime("%H:%M")
        r = await env.http.put(
            "/preferences",
            json={"quiet_hours": {"start": start, "end": end, "timezone": "UTC"}},
            headers=env.user(user),
        )
        assert r.status_code == 200, r.text
        nid = await env.send(user, priority="normal")
        held = await eventually(
            lambda: status(env, nid, "push"), lambda d: d.get("status") is not None
        )
        assert held["status"] == "held" and held["reason"] == "quiet hours"
        assert all(p.token != token for p in apns.fake.accepted)


async def test_devices_unused_for_the_stale_days_are_deactivated(settings: NodeSettings) -> None:
    async with running(settings) as env:
        user = uid()
        old = await register(env, user, "apns", apns_token())
        fresh = await register(env, user, "apns", apns_token())
        db = env.node.database
        assert db is not None and env.node.preferences is not None
        now = datetime.now(UTC)
        async with db.write() as conn:
            await conn.execute(
                sa.update(device_tokens)
                .where(device_tokens.c.id == old)
                .values(last_used_at=now - timedelta(days=271))
            )
        assert await deactivate_stale(db, env.node.preferences, now, 270) == 1
        row = await device_row(env, old)
        assert not row["active"] and row["deactivated_reason"] == "not used for 270 days"
        assert (await device_row(env, fresh))["active"]


def test_push_settings_default_to_no_provider() -> None:
    assert dataclasses.replace(push_settings({})).providers == {}


async def test_a_web_push_arrives_encrypted_for_the_subscription(
    settings: NodeSettings, push_service: PushService, tmp_path: Path
) -> None:
    push = push_settings(vapid_env(tmp_path, NOTIFY_WEBHOOK_ALLOWED_HOSTS="localhost"))
    with trusting(push_service.ca_file):
        await _web_push_to(settings, push, push_service)


async def _web_push_to(settings: NodeSettings, push: Any, push_service: PushService) -> None:
    async with running(settings, push=push) as env:
        user = uid()
        sub, gone = push_service.subscribe(), push_service.subscribe("gone")
        await register(env, user, "webpush", json.loads(sub.token))
        gone_id = await register(env, user, "webpush", json.loads(gone.token))
        nid = await env.send(user, priority="high", title="Hello", message="From Notify")
        done = await eventually(
            lambda: status(env, nid, "webpush"), lambda d: d.get("status") in ("sent", "failed")
        )
        assert done["status"] == "sent", done["last_error"]
        (pushed,) = [p for p in push_service.pushed if p.subscription == sub.id]
        assert pushed.message["title"] == "Hello" and pushed.message["body"] == "From Notify"
        assert pushed.message["data"]["notification_id"] == nid
        assert pushed.urgency == "high"
        assert not (await device_row(env, gone_id))["active"]


async def test_fcm_and_apns_devices_of_one_user_each_get_the_push(
    settings: NodeSettings, apns: ApnsServer, fcm: FcmServer, tmp_path: Path
) -> None:
    env_vars = {**apns.env(), "NOTIFY_FCM_CREDENTIALS": str(fcm.credentials)}
    push = push_settings({**env_vars, "NOTIFY_FCM_ENDPOINT": fcm.url})
    with trusting(bundle(tmp_path / "cas.pem", apns.ca_file, fcm.ca_file)):
        await _push_to_both(settings, push, apns, fcm)


async def _push_to_both(
    settings: NodeSettings, push: Any, apns: ApnsServer, fcm: FcmServer
) -> None:
    async with running(settings, push=push) as env:
        user, ios, android = uid(), apns_token(), f"android-{uid()}"
        await register(env, user, "apns", ios)
        gone = await register(env, user, "fcm", f"unregistered-{uid()}")
        await register(env, user, "fcm", android)
        nid = await env.send(user, priority="high", title="T", message="M", group_key="g1")
        assert (await sent(env, nid))["status"] == "sent"
        assert sorted(s["status"] for s in await sends_of(env, nid)) == ["failed", "sent", "sent"]
        (message,) = [a.message for a in fcm.fake.accepted if a.message["token"] == android]
        assert message["notification"] == {"title": "T", "body": "M"}
        assert message["android"]["priority"] == "high"
        assert message["android"]["collapse_key"] == "g1"
        assert message["data"]["notification_id"] == nid
        assert any(p.token == ios for p in apns.fake.accepted)
        assert not (await device_row(env, gone))["active"]
