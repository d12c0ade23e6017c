"""Device tokens and topic subscriptions over REST and gRPC, on both backends."""

from __future__ import annotations

import asyncio
import base64
import os
import uuid
from typing import Any

import grpc
import pytest
from notify.v1 import preference_pb2 as pb
from notify.v1 import preference_pb2_grpc

from preference_svc.store import PreferenceStore
from tests.support.ids import uid
from tests.support.nodes import Env


def fcm_token() -> str:
    return f"fcm-{uuid.uuid4().hex}:{uuid.uuid4().hex}"


def apns_token() -> str:
    return os.urandom(32).hex().upper()


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def webpush_subscription() -> dict[str, Any]:
    return {
        "endpoint": f"https://push.example.com/send/{uuid.uuid4().hex}",
        "keys": {"p256dh": b64(b"\x04" + os.urandom(64)), "auth": b64(os.urandom(16))},
    }


def stub(env: Env) -> Any:
    return preference_pb2_grpc.PreferenceServiceStub(env.grpc_channel)


def store(env: Env) -> PreferenceStore:
    assert env.node.preferences is not None
    return env.node.preferences


async def devices_of(env: Env, user: str) -> list[dict[str, Any]]:
    r = await env.http.get(f"/users/{user}/devices", headers=env.producer)
    assert r.status_code == 200, r.text
    devices: list[dict[str, Any]] = r.json()["devices"]
    return devices


# --- devices over REST --------------------------------------------------------------------


async def test_register_list_and_unregister_devices(env: Env) -> None:
    user = uid()
    token = apns_token()
    r = await env.http.post(
        f"/users/{user}/devices",
        json={"platform": "apns", "token": token, "device_name": "iPhone"},
        headers=env.producer,
    )
    assert r.status_code == 201, r.text
    apns = r.json()
    assert apns["token"] == token.lower() and apns["user_id"] == user and apns["active"] is True
    sub = webpush_subscription()
    r = await env.http.post(
        "/devices", json={"platform": "webpush", "token": sub}, headers=env.user(user)
    )
    assert r.status_code == 201, r.text
    assert r.json()["token"] == sub
    mine = (await env.http.get("/devices", headers=env.user(user))).json()["devices"]
    assert [d["platform"] for d in mine] == ["apns", "webpush"]
    assert mine == await devices_of(env, user)

    r = await env.http.delete(f"/users/{user}/devices/{apns['id']}", headers=env.producer)
    assert r.status_code == 200 and r.json()["active"] is False
    r = await env.http.delete(f"/devices/{mine[1]['id']}", headers=env.user(user))
    assert r.status_code == 200, r.text
    assert await devices_of(env, user) == []
    r = await env.http.delete(f"/devices/{apns['id']}", headers=env.user(user))
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_a_device_of_another_user_cannot_be_unregistered(env: Env) -> None:
    owner, other = uid(), uid()
    r = await env.http.post(
        "/devices", json={"platform": "fcm", "token": fcm_token()}, headers=env.user(owner)
    )
    device_id = r.json()["id"]
    r = await env.http.delete(f"/devices/{device_id}", headers=env.user(other))
    assert r.status_code == 404
    r = await env.http.delete(f"/users/{other}/devices/{device_id}", headers=env.producer)
    assert r.status_code == 404
    assert [d["id"] for d in await devices_of(env, owner)] == [device_id]


async def test_registering_again_is_idempotent_and_refreshes(env: Env) -> None:
    user, token = uid(), fcm_token()
    first = await env.http.post(
        "/devices",
        json={"platform": "fcm", "token": token, "device_name": "old"},
        headers=env.user(user),
    )
    assert first.status_code == 201
    again = await env.http.post(
        "/devices",
        json={"platform": "fcm", "token": token, "device_name": "new"},
        headers=env.user(user),
    )
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["device_name"] == "new"
    assert again.json()["last_used_at"] > first.json()["last_used_at"]
    devices = await devices_of(env, user)
    assert len(devices) == 1 and devices[0]["device_name"] == "new"


async def test_a_token_changes_hands(env: Env) -> None:
    seller, buyer, token = uid(), uid(), apns_token()
    for user in (seller, buyer):
        r = await env.http.post(
            f"/users/{user}/devices",
            json={"platform": "apns", "token": token},
            headers=env.producer,
        )
        assert r.status_code == 201, r.text
    assert await devices_of(env, seller) == []
    [held] = await devices_of(env, buyer)
    assert held["token"] == token.lower()
    prefs = await store(env).get_many([seller, buyer])
    assert prefs[seller].has_push_device is False
    assert prefs[buyer].has_push_device is True


async def test_device_flags_are_seen_through_the_cached_store(env: Env) -> None:
    user = uid()
    prefs = store(env)
    before = await prefs.get(user)  # now cached
    assert (before.has_push_device, before.has_webpush_subscription) == (False, False)
    r = await env.http.post(
        "/devices", json={"platform": "fcm", "token": fcm_token()}, headers=env.user(user)
    )
    push_id = r.json()["id"]
    assert (await prefs.get(user)).has_push_device is True
    assert (await prefs.get_many([user]))[user].has_webpush_subscription is False
    await env.http.post(
        "/devices",
        json={"platform": "webpush", "token": webpush_subscription()},
        headers=env.user(user),
    )
    assert (await prefs.get_many([user, uid()]))[user].has_webpush_subscription is True
    body = (await env.http.get("/preferences", headers=env.user(user))).json()
    assert body["has_push_device"] is True and body["has_webpush_subscription"] is True
    await env.http.delete(f"/devices/{push_id}", headers=env.user(user))
    after = await prefs.get(user)
    assert (after.has_push_device, after.has_webpush_subscription) == (False, True)
    # writing preferences keeps the flags in what it answers
    r = await env.http.put("/preferences", json={"channels": {"sms": True}}, headers=env.user(user))
    assert r.json()["has_webpush_subscription"] is True


async def test_concurrent_registrations_of_one_token_leave_one_active_device(env: Env) -> None:
    user, token = uid(), fcm_token()
    body = {"platform": "fcm", "token": token}
    answers = await asyncio.gather(
        *[env.http.post("/devices", json=body, headers=env.user(user)) for _ in range(5)]
    )
    assert sorted(r.status_code for r in answers) == [200, 200, 200, 200, 201]
    assert len({r.json()["id"] for r in answers}) == 1
    users = [uid() for _ in range(3)]
    answers = await asyncio.gather(
        *[env.http.post("/devices", json=body, headers=env.user(u)) for u in users]
    )
    assert [r.status_code for r in answers] == [201, 201, 201], [r.text for r in answers]
    holders = [u for u in [user, *users] if await devices_of(env, u)]
    assert len(holders) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"platform": "apns", "token": "abc"}, "token"),
        ({"platform": "carrier-pigeon", "token": "x"}, "platform"),
        ({"platform": "fcm", "token": "two words"}, "token"),
        ({"platform": "fcm", "token": "ok", "device_name": "n" * 300}, "device_name"),
        (
            {
                "platform": "webpush",
                "token": {**webpush_subscription(), "endpoint": "http://a.example"},
            },
            "token.endpoint",
        ),
    ],
)
async def test_bad_registrations_are_400_and_write_nothing(
    env: Env, body: dict[str, Any], field: str
) -> None:
    user, token = uid(), fcm_token()
    r = await env.http.post(
        "/devices", json={"platform": "fcm", "token": token}, headers=env.user(user)
    )
    assert r.status_code == 201
    r = await env.http.post("/devices", json=body, headers=env.user(user))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["message"].startswith(f"{field}: ")
    assert [d["token"] for d in await devices_of(env, user)] == [token]


async def test_device_routes_check_who_is_calling(env: Env) -> None:
    user = uid()
    r = await env.http.get(f"/users/{user}/devices", headers=env.user(user))
    assert r.status_code == 401
    r = await env.http.get("/devices", headers=env.producer)
    assert r.status_code == 401
    r = await env.http.post(
        "/devices", json={"platform": "fcm", "token": "t"}, headers={"authorization": "Bearer nope"}
    )
    assert r.status_code == 401


# --- devices and preferences over gRPC ----------------------------------------------------


async def test_grpc_register_list_unregister(env: Env) -> None:
    svc, user, token = stub(env), uid(), apns_token()
    reply = await svc.RegisterDevice(
        pb.RegisterDeviceRequest(user_id=user, platform=pb.DEVICE_PLATFORM_APNS, token=token),
        metadata=env.metadata,
    )
    assert reply.created and reply.device.token == token.lower()
    again = await svc.RegisterDevice(
        pb.RegisterDeviceRequest(
            user_id=user, platform=pb.DEVICE_PLATFORM_APNS, token=token, device_name="iPad"
        ),
        metadata=env.metadata,
    )
    assert not again.created and again.device.id == reply.device.id
    listed = await svc.ListDevices(pb.ListDevicesRequest(user_id=user), metadata=env.metadata)
    assert [(d.id, d.device_name) for d in listed.devices] == [(reply.device.id, "iPad")]
    got = await svc.GetPreferences(pb.GetPreferencesRequest(user_id=user), metadata=env.metadata)
    assert got.preferences.has_push_device is True
    gone = await svc.UnregisterDevice(
        pb.UnregisterDeviceRequest(user_id=user, id=reply.device.id), metadata=env.metadata
    )
    assert gone.device.active is False
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await svc.UnregisterDevice(
            pb.UnregisterDeviceRequest(user_id=user, id=reply.device.id), metadata=env.metadata
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    got = await svc.GetPreferences(pb.GetPreferencesRequest(user_id=user), metadata=env.metadata)
    assert got.preferences.has_push_device is False


async def test_grpc_bad_device_is_invalid_argument_and_writes_nothing(env: Env) -> None:
    svc, user = stub(env), uid()
    bad = pb.RegisterDeviceRequest(
        user_id=user, platform=pb.DEVICE_PLATFORM_WEBPUSH, token='{"endpoint": "https://x"}'
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await svc.RegisterDevice(bad, metadata=env.metadata)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").startswith("token.keys: ")
    listed = await svc.ListDevices(pb.ListDevicesRequest(user_id=user), metadata=env.metadata)
    assert list(listed.devices) == []
    with pytest.raises(grpc.aio.AioRpcError) as unauthenticated:
        await svc.ListDevices(pb.ListDevicesRequest(user_id=user))
    assert unauthenticated.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_grpc_preferences_partial_update_and_same_errors_as_rest(env: Env) -> None:
    svc, user = stub(env), uid()
    reply = await svc.UpdatePreferences(
        pb.UpdatePreferencesRequest(
            user_id=user,
            channels=pb.ChannelSwitches(sms=True),
            quiet_hours=pb.QuietHours(start="22:00", end="07:00", timezone="Europe/Paris"),
            email="alice@example.com",
        ),
        metadata=env.metadata,
    )
    p = reply.preferences
    assert p.channels.sms is True and p.channels.email is True  # untouched switch kept
    assert (p.quiet_hours.start, p.quiet_hours.high_breaks_through) == ("22:00", True)
    rest = (await env.http.get("/preferences", headers=env.user(user))).json()
    assert (
        rest["email"] == "alice@example.com" and rest["quiet_hours"]["timezone"] == "Europe/Paris"
    )
    reply = await svc.UpdatePreferences(
        pb.UpdatePreferencesRequest(user_id=user, clear_quiet_hours=True, email=""),
        metadata=env.metadata,
    )
    assert not reply.preferences.HasField("quiet_hours") and reply.preferences.email == ""
    assert reply.preferences.channels.sms is True

    bad_tz = {"start": "22:00", "end": "07:00", "timezone": "Nowhere/City"}
    r = await env.http.put(
        "/preferences",
        json={"quiet_hours": bad_tz, "phone": "+14155550100"},
        headers=env.user(user),
    )
    assert r.status_code == 400
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await svc.UpdatePreferences(
            pb.UpdatePreferencesRequest(
                user_id=user, quiet_hours=pb.QuietHours(**bad_tz), phone="+14155550100"
            ),
            metadata=env.metadata,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == r.json()["error"]["message"]
    got = await svc.GetPreferences(pb.GetPreferencesRequest(user_id=user), metadata=env.metadata)
    assert got.preferences.phone == ""  # nothing of the bad update was applied


# --- topics --------------------------------------------------------------------------------


async def test_subscribe_ten_thousand_users_and_page_through(env: Env) -> None:
    topic = f"news.{uuid.uuid4().hex[:8]}"
    users = [f"u{i:05d}-{uuid.uuid4().hex[:6]}" for i in range(10_000)]
    r = await env.http.put(
        f"/topics/{topic}/subscribers", json={"user_ids": users}, headers=env.producer
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"subscribed": 10_000}
    extra = uid()
    r = await env.http.put(
        f"/topics/{topic}/subscribers", json={"user_ids": [*users[:5], extra]}, headers=env.producer
    )
    assert r.json() == {"subscribed": 1}  # the 5 already there are not counted again

    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 1000, **({"after": after} if after else {})}
        r = await env.http.get(f"/topics/{topic}/subscribers", params=params, headers=env.producer)
        assert r.status_code == 200, r.text
        page = r.json()
        seen += page["user_ids"]
        pages += 1
        if page["next"] is None:
            break
        assert page["next"] == page["user_ids"][-1]
        after = page["next"]
    assert pages == 11
    assert sorted(seen) == sorted([*users, extra]) and len(set(seen)) == len(seen)

    svc = stub(env)
    first = await svc.ListTopicSubscribers(
        pb.ListTopicSubscribersRequest(topic=topic, limit=3), metadata=env.metadata
    )
    assert list(first.user_ids) == seen[:3] and first.next == seen[2]
    last = await svc.ListTopicSubscribers(
        pb.ListTopicSubscribersRequest(topic=topic, after=seen[-2]), metadata=env.metadata
    )
    assert list(last.user_ids) == seen[-1:] and last.next == ""


async def test_unsubscribe_over_rest_and_grpc(env: Env) -> None:
    topic, a, b, c = "deploys:eu-1", uid(), uid(), uid()
    svc = stub(env)
    added = await svc.SubscribeTopic(
        pb.SubscribeTopicRequest(topic=topic, user_ids=[a, b, c, a]), metadata=env.metadata
    )
    assert added.subscribed == 3
    r = await env.http.delete(f"/topics/{topic}/subscribers/{a}", headers=env.producer)
    assert r.status_code == 200 and r.json() == {"unsubscribed": 1}
    r = await env.http.delete(f"/topics/{topic}/subscribers/{a}", headers=env.producer)
    assert r.json() == {"unsubscribed": 0}
    removed = await svc.UnsubscribeTopic(
        pb.UnsubscribeTopicRequest(topic=topic, user_ids=[b, uid()]), metadata=env.metadata
    )
    assert removed.unsubscribed == 1
    page = (await env.http.get(f"/topics/{topic}/subscribers", headers=env.producer)).json()
    assert page == {"user_ids": [c], "next": None}


async def make_public(env: Env, topic: str, public: bool = True) -> None:
    r = await env.http.put(f"/topics/{topic}", json={"public": public}, headers=env.producer)
    assert r.status_code == 200 and r.json() == {"topic": topic, "public": public}, r.text


async def test_a_user_subscribes_themselves_to_public_topics(env: Env) -> None:
    user, topic, other = uid(), f"t.{uuid.uuid4().hex[:8]}", f"t.{uuid.uuid4().hex[:8]}"
    await make_public(env, topic)
    await make_public(env, other)
    for _ in range(2):  # idempotent
        r = await env.http.put(f"/topics/{topic}/subscription", headers=env.user(user))
        assert r.status_code == 200 and r.json() == {"topic": topic, "subscribed": True}
    await env.http.put(f"/topics/{other}/subscription", headers=env.user(user))
    assert (await env.http.get("/topics", headers=env.user(user))).json() == {
        "topics": sorted([other, topic])
    }
    page = (await env.http.get(f"/topics/{topic}/subscribers", headers=env.producer)).json()
    assert page["user_ids"] == [user]
    r = await env.http.delete(f"/topics/{topic}/subscription", headers=env.user(user))
    assert r.json() == {"topic": topic, "subscribed": False}
    assert (await env.http.get("/topics", headers=env.user(user))).json() == {"topics": [other]}
    r = await env.http.put(
        f"/topics/{topic}/subscribers", json={"user_ids": [user]}, headers=env.user(user)
    )
    assert r.status_code == 401  # subscribing others takes a producer key


async def test_a_user_cannot_subscribe_themselves_to_a_private_topic(env: Env) -> None:
    user, topic = uid(), f"t.{uuid.uuid4().hex[:8]}"
    r = await env.http.get(f"/topics/{topic}", headers=env.producer)
    assert r.status_code == 200 and r.json() == {"topic": topic, "public": False}
    r = await env.http.put(f"/topics/{topic}/subscription", headers=env.user(user))
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "permission_denied"
    assert f"topic {topic!r} is not public" in r.json()["error"]["message"]

    await make_public(env, topic)
    r = await env.http.put(f"/topics/{topic}/subscription", headers=env.user(user))
    assert r.status_code == 200, r.text
    await make_public(env, topic, False)  # private again: its subscribers stay
    assert (await env.http.get(f"/topics/{topic}", headers=env.producer)).json()["public"] is False
    newcomer = uid()
    r = await env.http.put(f"/topics/{topic}/subscription", headers=env.user(newcomer))
    assert r.status_code == 403
    page = (await env.http.get(f"/topics/{topic}/subscribers", headers=env.producer)).json()
    assert page["user_ids"] == [user]
    # a producer still subscribes anyone, and the user may always leave
    r = await env.http.put(
        f"/topics/{topic}/subscribers", json={"user_ids": [newcomer]}, headers=env.producer
    )
    assert r.json() == {"subscribed": 1}
    r = await env.http.delete(f"/topics/{topic}/subscription", headers=env.user(newcomer))
    assert r.status_code == 200 and r.json()["subscribed"] is False


async def test_topic_settings_take_a_producer_key_and_a_boolean(env: Env) -> None:
    topic = f"t.{uuid.uuid4().hex[:8]}"
    r = await env.http.put(f"/topics/{topic}", json={"public": True}, headers=env.user(uid()))
    assert r.status_code == 401
    r = await env.http.get(f"/topics/{topic}", headers=env.user(uid()))
    assert r.status_code == 401
    for body, field in (({}, "public"), ({"public": "yes"}, "public"), ({"x": 1}, "x")):
        r = await env.http.put(f"/topics/{topic}", json=body, headers=env.producer)
        assert r.status_code == 400 and r.json()["error"]["message"].startswith(f"{field}: ")
    r = await env.http.put("/topics/bad%20name", json={"public": True}, headers=env.producer)
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("topic: ")
    assert (await env.http.get(f"/topics/{topic}", headers=env.producer)).json()["public"] is False


async def test_grpc_sets_and_gets_topics(env: Env) -> None:
    svc, topic = stub(env), f"t.{uuid.uuid4().hex[:8]}"
    got = await svc.GetTopic(pb.GetTopicRequest(topic=topic), metadata=env.metadata)
    assert (got.topic.name, got.topic.public) == (topic, False)
    done = await svc.SetTopic(pb.SetTopicRequest(topic=topic, public=True), metadata=env.metadata)
    assert done.topic.public is True
    r = await env.http.get(f"/topics/{topic}", headers=env.producer)
    assert r.json() == {"topic": topic, "public": True}
    r = await env.http.put(f"/topics/{topic}/subscription", headers=env.user(uid()))
    assert r.status_code == 200, r.text
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await svc.SetTopic(pb.SetTopicRequest(topic="bad name", public=True), metadata=env.metadata)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as unauthenticated:
        await svc.GetTopic(pb.GetTopicRequest(topic=topic))
    assert unauthenticated.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_bad_topic_input_is_rejected_and_writes_nothing(env: Env) -> None:
    topic, good = f"t.{uuid.uuid4().hex[:8]}", uid()
    r = await env.http.put(
        f"/topics/{topic}/subscribers", json={"user_ids": [good, ""]}, headers=env.producer
    )
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("user_ids[1]: ")
    r = await env.http.put(
        "/topics/bad%20name/subscribers", json={"user_ids": [good]}, headers=env.producer
    )
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("topic: ")
    r = await env.http.get(f"/topics/{topic}/subscribers?limit=1001", headers=env.producer)
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("limit: ")
    r = await env.http.get(f"/topics/{topic}/subscribers?limit=ten", headers=env.producer)
    assert r.status_code == 400
    page = (await env.http.get(f"/topics/{topic}/subscribers", headers=env.producer)).json()
    assert page == {"user_ids": [], "next": None}
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub(env).SubscribeTopic(
            pb.SubscribeTopicRequest(topic="x" * 101, user_ids=[good]), metadata=env.metadata
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").startswith("topic: ")
