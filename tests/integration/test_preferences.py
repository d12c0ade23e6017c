"""Preferences over REST, on both backends: read defaults, write, cache, bad input."""

from __future__ import annotations

import dataclasses

import grpc
import pytest
from notify.v1 import preference_pb2, preference_pb2_grpc

from notify_app.settings import NodeSettings
from tests.support.ids import uid
from tests.support.nodes import Env, running


async def test_a_new_user_reads_the_defaults(env: Env) -> None:
    user = uid()
    r = await env.http.get("/preferences", headers=env.user(user))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["user_id"] == user
    assert body["channels"] == {
        "inapp": True,
        "email": True,
        "sms": False,
        "push": True,
        "webpush": True,
        "webhook": True,
    }
    assert body["quiet_hours"] is None
    assert body["digest"] == {"enabled": False, "frequency": "daily", "hour": 9, "weekday": 1}


async def test_a_user_writes_and_reads_back_their_preferences(env: Env) -> None:
    user = uid()
    put = {
        "channels": {"sms": True, "email": False},
        "per_type": {"comment": {"push": False}},
        "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Paris"},
        "digest": {"enabled": True, "frequency": "weekly", "hour": 8, "weekday": 5},
        "email": "alice@example.com",
        "phone": "+14155550100",
    }
    r = await env.http.put("/preferences", json=put, headers=env.user(user))
    assert r.status_code == 200, r.text
    body = (await env.http.get("/preferences", headers=env.user(user))).json()
    assert body["channels"]["sms"] is True and body["channels"]["email"] is False
    assert body["channels"]["push"] is True  # untouched switches keep their value
    assert body["per_type"] == {"comment": {"push": False}}
    assert body["quiet_hours"] == {
        "start": "22:00",
        "end": "07:00",
        "timezone": "Europe/Paris",
        "high_breaks_through": True,
    }
    assert body["digest"]["frequency"] == "weekly"
    assert (body["email"], body["phone"]) == ("alice@example.com", "+14155550100")
    # A partial write keeps the rest; null clears.
    r = await env.http.put("/preferences", json={"quiet_hours": None}, headers=env.user(user))
    assert r.json()["quiet_hours"] is None and r.json()["email"] == "alice@example.com"


async def test_a_producer_manages_any_users_preferences(env: Env) -> None:
    user = uid()
    r = await env.http.put(
        f"/users/{user}/preferences", json={"channels": {"push": False}}, headers=env.producer
    )
    assert r.status_code == 200, r.text
    mine = (await env.http.get("/preferences", headers=env.user(user))).json()
    assert mine["channels"]["push"] is False
    r = await env.http.get(f"/users/{user}/preferences", headers=env.user(user))
    assert r.status_code == 401  # a user token is not a producer key
    r = await env.http.get("/preferences", headers=env.producer)
    assert r.status_code == 401


async def test_reads_are_cached_and_writes_invalidate(env: Env) -> None:
    store = env.node.preferences
    assert store is not None
    user = uid()
    await env.http.get("/preferences", headers=env.user(user))
    misses, hits = store.misses, store.hits
    for _ in range(5):
        await env.http.get("/preferences", headers=env.user(user))
    assert store.hits == hits + 5 and store.misses == misses
    await env.http.put("/preferences", json={"channels": {"email": False}}, headers=env.user(user))
    body = (await env.http.get("/preferences", headers=env.user(user))).json()
    assert body["channels"]["email"] is False
    assert store.misses == misses + 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Nowhere/City"}},
            "quiet_hours.timezone",
        ),
        (
            {"quiet_hours": {"start": "25:00", "end": "07:00", "timezone": "UTC"}},
            "quiet_hours.start",
        ),
        ({"phone": "555-0100"}, "phone"),
        ({"email": "alice@"}, "email"),
        ({"channels": {"carrier-pigeon": True}}, "channels.carrier-pigeon"),
    ],
)
async def test_bad_preferences_are_400_naming_the_field_and_change_nothing(
    env: Env, body: dict[str, object], field: str
) -> None:
    user = uid()
    ok = await env.http.put(
        "/preferences",
        json={"email": "keep@example.com", **{"phone": "+14155550100"}},
        headers=env.user(user),
    )
    assert ok.status_code == 200
    # a valid field next to the bad one must not be applied either
    r = await env.http.put(
        "/preferences", json={"digest": {"enabled": True}, **body}, headers=env.user(user)
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["message"].startswith(field)
    after = (await env.http.get("/preferences", headers=env.user(user))).json()
    assert after["email"] == "keep@example.com" and after["phone"] == "+14155550100"
    assert after["digest"]["enabled"] is False


async def test_non_json_preferences_body_is_400(env: Env) -> None:
    r = await env.http.put(
        "/preferences",
        content=b"nope",
        headers={**env.user(uid()), "content-type": "application/json"},
    )
    assert r.status_code == 400


@pytest.mark.parametrize("allow_http", [False, True])
async def test_an_http_webhook_url_is_saved_only_with_notify_webhook_allow_http(
    settings: NodeSettings, allow_http: bool
) -> None:
    """NOTIFY_WEBHOOK_ALLOW_HTTP lets a user save an http:// webhook URL, over REST and
    gRPC alike; without it the URL is refused naming the field."""
    hooks = dataclasses.replace(settings.webhook, allow_http=allow_http)
    url = "http://hooks.example.com/notify"
    async with running(settings, webhook=hooks) as env:
        user = uid()
        r = await env.http.put("/preferences", json={"webhook_url": url}, headers=env.user(user))
        stub = preference_pb2_grpc.PreferenceServiceStub(env.grpc_channel)
        request = preference_pb2.UpdatePreferencesRequest(user_id=uid(), webhook_url=url)
        if allow_http:
            assert r.status_code == 200, r.text
            assert r.json()["webhook_url"] == url
            saved = (await env.http.get("/preferences", headers=env.user(user))).json()
            assert saved["webhook_url"] == url
            reply = await stub.UpdatePreferences(request, metadata=env.metadata)
            assert reply.preferences.webhook_url == url
        else:
            assert r.status_code == 400
            assert r.json()["error"]["message"].startswith("webhook_url")
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.UpdatePreferences(request, metadata=env.metadata)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
