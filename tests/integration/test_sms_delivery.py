"""SMS deliveries end to end, on both backends, against the local Twilio server: the text
and its segment cut, the recipient recorded, Twilio's signed status callbacks moving the
delivery on, numbers that are gone suppressed (at send and by callback), and SMS off."""

from __future__ import annotations

import dataclasses
from typing import Any

from delivery_svc.config_push import push_settings
from notify_app.settings import NodeSettings
from tests.support.deliveries import set_phone, status
from tests.support.ids import uid
from tests.support.nodes import Env, running
from tests.support.twilio import (
    OPTED_OUT,
    VALID,
    FakeTwilio,
    post_status,
    status_fields,
    twilio_env,
)
from tests.support.waiting import eventually

PUBLIC = "https://notify.example.com"
"""NOTIFY_PUBLIC_URL: Twilio signs its callbacks over this address."""


def with_twilio(twilio: FakeTwilio, **env: str) -> dict[str, Any]:
    return {"push": push_settings({**twilio_env(twilio), **env}), "public_url": PUBLIC}


async def settled(env: Env, nid: str) -> dict[str, Any]:
    return await eventually(
        lambda: status(env, nid, "sms"), lambda d: d.get("status") in ("sent", "failed")
    )


async def test_a_text_is_sent_and_twilio_callbacks_mark_it_delivered(
    settings: NodeSettings, twilio: FakeTwilio
) -> None:
    async with running(settings, **with_twilio(twilio)) as env:
        user = uid()
        await set_phone(env, user, VALID)
        nid = await env.send(user, channels=["sms"], title="Code", message="123456")
        done = await settled(env, nid)
        assert done["status"] == "sent", done["last_error"]
        (message,) = [m for m in twilio.messages if m["body"] == "Code: 123456"]
        assert message["to"] == VALID
        form = next(f for f in twilio.forms if f["Body"] == "Code: 123456")
        assert form["StatusCallback"] == f"{PUBLIC}/webhooks/twilio"
        r = await post_status(
            f"{env.base_url}/webhooks/twilio",
            status_fields(message, "delivered"),
            signed_url=f"{PUBLIC}/webhooks/twilio",
        )
        assert r.status_code == 200, r.text
        delivered = await eventually(
            lambda: status(env, nid, "sms"), lambda d: d.get("status") == "delivered"
        )
        assert delivered["provider"] == "twilio"


async def test_a_long_text_is_cut_to_the_segment_limit(
    settings: NodeSettings, twilio: FakeTwilio
) -> None:
    async with running(settings, **with_twilio(twilio, NOTIFY_SMS_MAX_SEGMENTS="1")) as env:
        user = uid()
        await set_phone(env, user, VALID)
        nid = await env.send(user, channels=["sms"], title="News", message="word " * 100)
        assert (await settled(env, nid))["status"] == "sent"
        (body,) = [m["body"] for m in twilio.messages if m["body"].startswith("News: word")]
        assert len(body) <= 160 and body.endswith("...")


async def test_an_opted_out_number_is_suppressed_and_not_texted_again(
    settings: NodeSettings, twilio: FakeTwilio
) -> None:
    async with running(settings, **with_twilio(twilio)) as env:
        user = uid()
        await set_phone(env, user, OPTED_OUT)
        first = await settled(env, await env.send(user, channels=["sms"]))
        assert first["status"] == "failed" and "21610" in first["last_error"]
        tried = len(twilio.forms)
        second = await settled(env, await env.send(user, channels=["sms"]))
        assert second["status"] == "failed" and "suppressed" in second["last_error"]
        assert len(twilio.forms) == tried  # Twilio was not asked again
        listed = await env.http.get("/phone-suppressions", headers=env.producer)
        (entry,) = [e for e in listed.json()["suppressions"] if e["number"] == OPTED_OUT]
        assert entry["reason"] == "opted_out" and entry["provider"] == "twilio"
        path = f"/phone-suppressions/{OPTED_OUT}"
        assert (await env.http.delete(path, headers=env.producer)).status_code == 200
        assert (await env.http.delete(path, headers=env.producer)).status_code == 404


async def test_a_failed_callback_with_a_permanent_code_suppresses_the_number(
    settings: NodeSettings, twilio: FakeTwilio
) -> None:
    async with running(settings, **with_twilio(twilio)) as env:
        user = uid()
        await set_phone(env, user, VALID)
        nid = await env.send(user, channels=["sms"], title="A", message=uid())
        assert (await settled(env, nid))["status"] == "sent"
        message = twilio.messages[-1]
        r = await post_status(
            f"{env.base_url}/webhooks/twilio",
            status_fields(message, "undelivered", 30006),
            signed_url=f"{PUBLIC}/webhooks/twilio",
        )
        assert r.status_code == 200, r.text
        failed = await eventually(
            lambda: status(env, nid, "sms"), lambda d: d.get("status") == "failed"
        )
        assert "30006" in (failed["last_error"] or "")
        again = await settled(env, await env.send(user, channels=["sms"]))
        assert again["status"] == "failed" and "suppressed" in again["last_error"]


async def test_a_callback_that_is_not_signed_by_twilio_is_refused(
    settings: NodeSettings, twilio: FakeTwilio
) -> None:
    async with running(settings, **with_twilio(twilio)) as env:
        fields = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered"}
        r = await post_status(f"{env.base_url}/webhooks/twilio", fields, signature="forged")
        assert r.status_code == 401


async def test_without_an_sms_provider_a_text_fails_saying_so(settings: NodeSettings) -> None:
    async with running(dataclasses.replace(settings, public_url=PUBLIC)) as env:
        user = uid()
        await set_phone(env, user, VALID)
        done = await settled(env, await env.send(user, channels=["sms"]))
        assert done["status"] == "failed" and "NOTIFY_SMS_PROVIDER" in done["last_error"]
