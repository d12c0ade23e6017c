"""One-click unsubscribe over HTTP, on both backends: links, the page, the POST, bad tokens."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from notify_app.node import Node
from notify_app.settings import NodeSettings
from preference_svc.unsubscribe import make_token
from tests.support.ids import uid
from tests.support.nodes import Env

SIGNING_SECRET = "unsubscribe-signing-secret-0123456789"
ONE_CLICK = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
def settings(settings: NodeSettings) -> NodeSettings:
    return replace(settings, signing_secret=SIGNING_SECRET)


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


async def link(env: Env, user: str, **body: Any) -> dict[str, Any]:
    r = await env.http.post(
        f"/users/{user}/unsubscribe-links", json={"type": "comment", **body}, headers=env.producer
    )
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


async def per_type(env: Env, user: str) -> dict[str, dict[str, bool]]:
    r = await env.http.get(f"/users/{user}/preferences", headers=env.producer)
    assert r.status_code == 200, r.text
    result: dict[str, dict[str, bool]] = r.json()["per_type"]
    return result


async def set_per_type(env: Env, user: str, value: dict[str, dict[str, bool]]) -> None:
    r = await env.http.put(
        f"/users/{user}/preferences", json={"per_type": value}, headers=env.producer
    )
    assert r.status_code == 200, r.text


async def test_a_link_switches_one_type_off_by_email_and_keeps_the_rest(env: Env) -> None:
    user = uid()
    before = {"mention": {"push": False}, "comment": {"push": False}}
    await set_per_type(env, user, before)

    answer = await link(env, user)
    url = answer["url"]
    assert url.startswith(f"{env.base_url}/unsubscribe?token=")
    assert answer["headers"] == {
        "List-Unsubscribe": f"<{url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    expires = datetime.fromisoformat(answer["expires_at"]).timestamp()
    assert abs(expires - (time.time() + 30 * 24 * 3600)) < 60

    # GET shows the page and changes nothing (mail scanners fetch links).
    page = await env.http.get(url)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "<strong>comment</strong> notifications by email" in page.text
    assert '<form method="post"' in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert await per_type(env, user) == before

    # The RFC 8058 one-click POST: no credentials, the token is the authority.
    r = await env.http.post(url, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)
    assert r.status_code == 200, r.text
    assert "You are unsubscribed" in r.text
    after = {"mention": {"push": False}, "comment": {"push": False, "email": False}}
    assert await per_type(env, user) == after
    prefs = (await env.http.get("/preferences", headers=env.user(user))).json()
    assert prefs["channels"]["email"] is True  # the global switch is not touched

    # Again: same answer, same state.
    r = await env.http.post(
        url,
        content=b"List-Unsubscribe=One-Click",
        headers={**ONE_CLICK, "accept": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "unsubscribed": True,
        "user_id": user,
        "type": "comment",
        "channel": "email",
        "per_type": {"comment": {"push": False, "email": False}},
    }
    assert await per_type(env, user) == after


async def test_a_user_without_preferences_and_an_every_channel_link(env: Env) -> None:
    user = uid()
    answer = await link(env, user, type="digest", channel="*", ttl_seconds=120)
    expires = datetime.fromisoformat(answer["expires_at"]).timestamp()
    assert abs(expires - (time.time() + 120)) < 10
    assert "on any channel" in (await env.http.get(answer["url"])).text
    # What a mail client may send instead: multipart/form-data.
    r = await env.http.post(
        answer["url"],
        files={"List-Unsubscribe": (None, "One-Click")},
        headers={"accept": "application/json"},
    )
    assert r.status_code == 200, r.text
    off = dict.fromkeys(("inapp", "email", "sms", "push", "webpush", "webhook"), False)
    assert await per_type(env, user) == {"digest": off}


async def test_the_pages_own_form_posts_with_no_body(env: Env) -> None:
    user = uid()
    await set_per_type(env, user, {"comment": {"email": True}})
    answer = await link(env, user, channel="push")
    r = await env.http.post(answer["url"])
    assert r.status_code == 200, r.text
    assert await per_type(env, user) == {"comment": {"email": True, "push": False}}


@pytest.mark.parametrize("how", ["altered", "expired", "other-secret", "missing", "garbage"])
async def test_a_bad_token_is_400_naming_token_and_changes_nothing(env: Env, how: str) -> None:
    user = uid()
    before = {"comment": {"push": False}}
    await set_per_type(env, user, before)
    good = token_of((await link(env, user))["url"])
    if how == "altered":
        at = len(good) // 2
        token = good[:at] + ("A" if good[at] != "A" else "B") + good[at + 1 :]
    elif how == "expired":
        token = make_token(SIGNING_SECRET, user, "comment", "email", int(time.time()) - 1)
    elif how == "other-secret":
        token = make_token("some-other-secret-0123456789", user, "comment", "email", 2**33)
    elif how == "missing":
        token = ""
    else:
        token = "not-a-token"
    expected = {
        "altered": "bad signature",
        "expired": "expired at",
        "other-secret": "bad signature",
        "missing": "is required",
        "garbage": "malformed",
    }[how]
    for method in ("GET", "POST"):
        r = await env.http.request(
            method,
            "/unsubscribe",
            params={"token": token} if token else None,
            content=b"List-Unsubscribe=One-Click" if method == "POST" else None,
            headers=ONE_CLICK if method == "POST" else None,
        )
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["code"] == "invalid_argument"
        assert error["message"].startswith("token: ")
        assert expected in error["message"]
    assert await per_type(env, user) == before


async def test_links_are_for_producers_and_their_bodies_are_checked(env: Env) -> None:
    user = uid()
    path = f"/users/{user}/unsubscribe-links"
    r = await env.http.post(path, json={"type": "comment"})
    assert r.status_code == 401
    r = await env.http.post(path, json={"type": "comment"}, headers=env.user(user))
    assert r.status_code == 401  # a user token is not a producer key
    for body, field in [
        ({"type": "comment", "channel": "fax"}, "channel"),
        ({"channel": "email"}, "type"),
        ({"type": "comment", "ttl_seconds": -5}, "ttl_seconds"),
    ]:
        r = await env.http.post(path, json=body, headers=env.producer)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["message"].startswith(f"{field}: ")
    r = await env.http.post(path, content=b"{", headers=env.producer)
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("body: ")


@asynccontextmanager
async def running(settings: NodeSettings) -> AsyncIterator[httpx.AsyncClient]:
    node = Node(settings)
    await node.start()
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{node.http_port}", timeout=10
        ) as http:
            yield http
    finally:
        await node.stop()


async def test_links_use_the_public_url_when_set(settings: NodeSettings) -> None:
    public = replace(settings, public_url="https://notify.example.com/edge/")
    async with running(public) as http:
        r = await http.post(
            f"/users/{uid()}/unsubscribe-links",
            json={"type": "comment"},
            headers={"authorization": f"Bearer {sorted(settings.api_keys)[0]}"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["url"].startswith("https://notify.example.com/edge/unsubscribe?token=")


async def test_without_a_signing_secret_every_route_is_unavailable(settings: NodeSettings) -> None:
    unsigned = replace(settings, signing_secret=None)
    token = make_token(SIGNING_SECRET, "u", "comment", "email", 2**33)
    async with running(unsigned) as http:
        producer = {"authorization": f"Bearer {sorted(settings.api_keys)[0]}"}
        answers = [
            await http.post("/users/u/unsubscribe-links", json={"type": "x"}, headers=producer),
            await http.get("/unsubscribe", params={"token": token}),
            await http.post("/unsubscribe", params={"token": token}),
        ]
        for r in answers:
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "unavailable"
            assert "NOTIFY_SIGNING_SECRET is not set" in r.json()["error"]["message"]
