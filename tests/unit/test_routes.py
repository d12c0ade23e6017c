"""Declaring an HTTP route: its auth policy is required, and applied before the handler."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from notify_core.auth import Authenticator, issue_user_token
from notify_core.routes import PRODUCER, PUBLIC, SELF, USER, WEBSOCKET, HttpRoute, mount

SECRET = "s" * 32
KEY = "key-aaaaaaaa"
AUTH = Authenticator(frozenset({KEY}), SECRET)
PRODUCER_HEADERS = {"authorization": f"Bearer {KEY}"}


async def plain(request: Request) -> Response:
    return JSONResponse({"path": request.url.path})


async def for_user(request: Request, user_id: str) -> Response:
    return JSONResponse({"user_id": user_id})


async def socket(websocket: Any) -> None:
    await websocket.close()


APP = Starlette(
    routes=mount(
        [
            HttpRoute("GET", "/open", PUBLIC, plain, note="anyone"),
            HttpRoute("GET", "/producer", PRODUCER, plain),
            HttpRoute("GET", "/users/{user_id}/things", PRODUCER, for_user),
            HttpRoute("GET", "/mine", USER, for_user),
        ],
        AUTH,
    )
)


async def get(path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=APP)
    async with httpx.AsyncClient(transport=transport, base_url="http://edge") as client:
        return await client.get(path, headers=headers)


def test_a_route_without_a_policy_cannot_be_declared() -> None:
    with pytest.raises(TypeError):
        HttpRoute("GET", "/x", plain)  # type: ignore[call-arg, arg-type]
    with pytest.raises(TypeError, match="Policy"):
        HttpRoute("GET", "/x", "public", plain, note="anyone")  # type: ignore[arg-type]


@pytest.mark.parametrize("policy", [PUBLIC, SELF])
def test_an_open_route_says_why(policy: Any) -> None:
    with pytest.raises(ValueError, match="says why"):
        HttpRoute("GET", "/x", policy, plain)


def test_a_websocket_authenticates_itself() -> None:
    HttpRoute(WEBSOCKET, "/ws", SELF, socket, note="token in the query")
    with pytest.raises(ValueError, match="WebSocket"):
        HttpRoute(WEBSOCKET, "/ws", PUBLIC, socket, note="anyone")


@pytest.mark.parametrize(
    ("policy", "path", "handler"),
    [
        (USER, "/mine", plain),
        (PRODUCER, "/users/{user_id}/things", plain),
        (PRODUCER, "/things", for_user),
    ],
)
def test_a_handler_takes_the_user_exactly_when_the_route_acts_on_one(
    policy: Any, path: str, handler: Any
) -> None:
    with pytest.raises(TypeError, match="arguments"):
        HttpRoute("GET", path, policy, handler)


async def test_a_public_route_needs_no_credentials() -> None:
    r = await get("/open")
    assert (r.status_code, r.json()) == (200, {"path": "/open"})


@pytest.mark.parametrize("path", ["/producer", "/users/u1/things", "/mine"])
async def test_a_guarded_route_without_credentials_is_401(path: str) -> None:
    r = await get(path)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthenticated"


async def test_a_producer_route_refuses_a_user_token_and_the_other_way_round() -> None:
    user = {"authorization": f"Bearer {issue_user_token(SECRET, 'u1')}"}
    assert (await get("/producer", user)).status_code == 401
    assert (await get("/mine", PRODUCER_HEADERS)).status_code == 401


async def test_a_user_route_is_given_the_token_user() -> None:
    r = await get("/mine", {"authorization": f"Bearer {issue_user_token(SECRET, 'u1')}"})
    assert (r.status_code, r.json()) == (200, {"user_id": "u1"})


async def test_a_producer_route_is_given_the_checked_user_of_its_path() -> None:
    r = await get("/users/u1/things", PRODUCER_HEADERS)
    assert (r.status_code, r.json()) == (200, {"user_id": "u1"})
    r = await get("/users/" + "x" * 300 + "/things", PRODUCER_HEADERS)
    assert r.status_code == 400
    assert r.json()["error"]["message"].startswith("user_id: must be at most")
    assert (await get("/users/" + "x" * 300 + "/things")).status_code == 401
