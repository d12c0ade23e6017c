"""Who may call what: API keys for producers, JWTs for users (DESIGN §5)."""

from __future__ import annotations

import time

import jwt
import pytest
import websockets

from tests.support.ids import uid
from tests.support.nodes import API_KEY, JWT_SECRET, Env

SEND = {"user_id": "u1", "type": "comment", "title": "t", "message": "m"}


@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong-key-123456", "Basic abc", "Bearer"],
    ids=["no-key", "wrong-key", "wrong-scheme", "empty-token"],
)
async def test_send_refuses_bad_producer_credentials(env: Env, header: str | None) -> None:
    headers = {} if header is None else {"authorization": header}
    r = await env.http.post("/notifications/send", json=SEND, headers=headers)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthenticated"


async def test_user_token_is_not_a_producer_key(env: Env) -> None:
    r = await env.http.post("/notifications/send", json=SEND, headers=env.user("u1"))
    assert r.status_code == 401


async def test_producer_key_is_not_a_user_token(env: Env) -> None:
    r = await env.http.get("/notifications", headers=env.producer)
    assert r.status_code == 401


async def test_bad_signature_and_expired_and_missing_exp_are_refused(env: Env) -> None:
    bad_sig = jwt.encode({"sub": "u1", "exp": time.time() + 60}, "another-secret-000000", "HS256")
    expired = jwt.encode({"sub": "u1", "exp": time.time() - 5}, JWT_SECRET, "HS256")
    no_exp = jwt.encode({"sub": "u1"}, JWT_SECRET, "HS256")
    for token, words in ((bad_sig, "signature"), (expired, "expired"), (no_exp, "exp")):
        r = await env.http.get("/notifications", headers={"authorization": f"Bearer {token}"})
        assert r.status_code == 401, token
        assert words in r.json()["error"]["message"]


async def test_another_users_notification_is_404(env: Env) -> None:
    owner, other = uid(), uid()
    nid = await env.send(owner)
    await env.wait_inbox(owner, 1)
    r = await env.http.patch(f"/notifications/{nid}/read", headers=env.user(other))
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    page = await env.inbox(owner)
    assert page["notifications"][0]["read"] is False


async def test_websocket_handshake_refused_with_401(env: Env) -> None:
    expired = jwt.encode({"sub": "u1", "exp": time.time() - 5}, JWT_SECRET, "HS256")
    for url in (
        env.ws_url,
        f"{env.ws_url}?token=garbage",
        f"{env.ws_url}?token={expired}",
        f"{env.ws_url}?token={API_KEY}",
    ):
        with pytest.raises(websockets.InvalidStatus) as info:
            async with websockets.connect(url):
                pass
        assert info.value.response.status_code == 401
