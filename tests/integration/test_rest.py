"""REST send and inbox, on both backends (DESIGN §5)."""

from __future__ import annotations

import asyncio

from tests.support.ids import uid
from tests.support.nodes import Env
from tests.support.waiting import eventually


async def test_send_returns_202_with_id_and_lands_in_inbox(env: Env) -> None:
    user = uid()
    nid = await env.send(user, title="Hello", message="World", data={"post": 7}, priority="high")
    page = await env.wait_inbox(user, 1)
    (item,) = page["notifications"]
    assert item["id"] == nid
    assert item["user_id"] == user
    assert (item["type"], item["title"], item["message"]) == ("comment", "Hello", "World")
    assert item["data"] == {"post": 7}
    assert item["priority"] == "high"
    assert item["read"] is False
    assert item["created_at"].endswith("Z")
    assert page["unread_count"] == 1


async def test_send_to_user_ids_answers_ids_in_order(env: Env) -> None:
    users = [uid() for _ in range(3)]
    r = await env.http.post(
        "/notifications/send",
        json={"user_ids": users, "type": "news", "title": "t", "message": "m"},
        headers=env.producer,
    )
    assert r.status_code == 202, r.text
    ids = r.json()["ids"]
    assert len(ids) == 3 and len(set(ids)) == 3
    for user, nid in zip(users, ids, strict=True):
        page = await env.wait_inbox(user, 1)
        assert page["notifications"][0]["id"] == nid


async def test_inbox_pages_newest_first(env: Env) -> None:
    user = uid()
    sent = [await env.send(user, title=f"n{i}") for i in range(25)]
    await env.wait_inbox(user, 25)
    first = await env.inbox(user, page=1, limit=10)
    second = await env.inbox(user, page=2, limit=10)
    third = await env.inbox(user, page=3, limit=10)
    got = [n["id"] for p in (first, second, third) for n in p["notifications"]]
    assert got == list(reversed(sent))
    assert (first["has_more"], second["has_more"], third["has_more"]) == (True, True, False)
    assert (first["page"], first["limit"]) == (1, 10)
    assert len(third["notifications"]) == 5


async def test_channels_without_inapp_keep_it_out_of_the_inbox(env: Env) -> None:
    user = uid()
    await env.send(user, channels=["email"])
    marker = await env.send(user, title="marker")
    page = await env.wait_inbox(user, 1)
    await asyncio.sleep(0.2)
    page = await env.inbox(user)
    assert [n["id"] for n in page["notifications"]] == [marker]


async def test_unread_count_mark_read_and_read_all(env: Env) -> None:
    user = uid()
    ids = [await env.send(user) for _ in range(3)]
    await env.wait_inbox(user, 3)
    r = await env.http.get("/notifications/unread-count", headers=env.user(user))
    assert r.json() == {"unread_count": 3}

    r = await env.http.patch(f"/notifications/{ids[0]}/read", headers=env.user(user))
    assert r.status_code == 200
    assert r.json()["unread_count"] == 2
    # Marking again is harmless.
    r = await env.http.patch(f"/notifications/{ids[0]}/read", headers=env.user(user))
    assert r.status_code == 200 and r.json()["unread_count"] == 2
    page = await env.inbox(user)
    assert {n["id"]: n["read"] for n in page["notifications"]}[ids[0]] is True

    r = await env.http.patch("/notifications/read-all", headers=env.user(user))
    assert r.json() == {"updated": 2}
    r = await env.http.get("/notifications/unread-count", headers=env.user(user))
    assert r.json() == {"unread_count": 0}


async def test_idempotency_key_gives_same_id_and_one_notification(env: Env) -> None:
    user = uid()
    first = await env.send(user, idempotency_key="order-42")
    again = await env.send(user, idempotency_key="order-42", title="changed")
    other_user = await env.send(uid(), idempotency_key="order-42")
    assert first == again
    assert other_user != first
    concurrent = await asyncio.gather(
        *[env.send(user, idempotency_key="order-43") for _ in range(10)]
    )
    assert len(set(concurrent)) == 1
    page = await env.wait_inbox(user, 2)
    await asyncio.sleep(0.2)
    page = await env.inbox(user)
    assert sorted(n["id"] for n in page["notifications"]) == sorted({first, concurrent[0]})


async def test_health_and_readiness(env: Env) -> None:
    assert (await env.http.get("/healthz")).status_code == 200
    r = await env.http.get("/readyz")
    assert r.status_code == 200, r.text


async def test_unknown_route_is_json_404(env: Env) -> None:
    r = await env.http.get("/nope")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


async def test_many_concurrent_sends_all_arrive_once(env: Env) -> None:
    # 4 users x 50: each stays under the in-app limit of 100 a minute.
    users = [uid() for _ in range(4)]
    ids = await asyncio.gather(*[env.send(users[i % 4], title=f"c{i}") for i in range(200)])
    assert len(set(ids)) == 200
    for user in users:
        page = await eventually(
            lambda user=user: env.http.get("/notifications/unread-count", headers=env.user(user)),
            lambda r: r.json()["unread_count"] == 50,
        )
        assert page.json()["unread_count"] == 50
