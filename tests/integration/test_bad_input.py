"""Bad input: a clear 4xx naming the field, and nothing stored."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from notify_core.db.schema import notifications
from tests.integration.conftest import Env

BASE = {"type": "comment", "title": "t", "message": "m"}


async def _stored(env: Env, user: str) -> int:
    assert env.node.database is not None
    async with env.node.database.read() as conn:
        result = await conn.execute(
            sa.select(sa.func.count())
            .select_from(notifications)
            .where(notifications.c.user_id == user)
        )
        return int(result.scalar_one())


CASES: list[tuple[str, dict[str, Any], str]] = [
    ("missing-user", {**BASE}, "user_id"),
    ("missing-type", {"title": "t", "message": "m"}, "type"),
    ("missing-title", {"type": "c", "message": "m"}, "title"),
    ("missing-message", {"type": "c", "title": "t"}, "message"),
    ("blank-title", {**BASE, "title": "   "}, "title"),
    ("title-number", {**BASE, "title": 5}, "title"),
    ("data-string", {**BASE, "data": "x"}, "data"),
    ("unknown-priority", {**BASE, "priority": "urgent"}, "priority"),
    ("priority-number", {**BASE, "priority": 1}, "priority"),
    ("unknown-channel", {**BASE, "channels": ["pigeon"]}, "channels[0]"),
    ("channels-string", {**BASE, "channels": "email"}, "channels"),
    ("title-too-long", {**BASE, "title": "x" * 256}, "title"),
    ("message-too-long", {**BASE, "message": "x" * 10_001}, "message"),
    ("data-too-big", {**BASE, "data": {"blob": "x" * 20_000}}, "data"),
    ("type-too-long", {**BASE, "type": "x" * 51}, "type"),
    ("unknown-field", {**BASE, "colour": "red"}, "colour"),
    ("idempotency-number", {**BASE, "idempotency_key": 7}, "idempotency_key"),
]


@pytest.mark.parametrize(
    ("body", "field"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES]
)
async def test_bad_send_is_400_naming_the_field_and_stores_nothing(
    env: Env, body: dict[str, Any], field: str
) -> None:
    user = f"user-{uuid.uuid4().hex[:10]}"
    if field != "user_id":
        body = {"user_id": user, **body}
    r = await env.http.post("/notifications/send", json=body, headers=env.producer)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_argument"
    assert error["message"].startswith(field), error["message"]
    await asyncio.sleep(0.05)
    assert await _stored(env, user) == 0


async def test_non_json_body_is_400(env: Env) -> None:
    r = await env.http.post(
        "/notifications/send",
        content=b"{not json",
        headers={**env.producer, "content-type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["error"]["message"].startswith("body")


async def test_json_array_body_is_400(env: Env) -> None:
    r = await env.http.post("/notifications/send", json=[1, 2], headers=env.producer)
    assert r.status_code == 400
    assert "JSON object" in r.json()["error"]["message"]


async def test_one_bad_user_in_user_ids_stores_none(env: Env) -> None:
    good = f"user-{uuid.uuid4().hex[:10]}"
    r = await env.http.post(
        "/notifications/send",
        json={**BASE, "user_ids": [good, "x" * 300]},
        headers=env.producer,
    )
    assert r.status_code == 400
    assert "user_id" in r.json()["error"]["message"]
    await asyncio.sleep(0.05)
    assert await _stored(env, good) == 0


@pytest.mark.parametrize("query", ["page=0", "page=abc", "limit=0", "limit=101", "limit=-1"])
async def test_bad_paging_is_400(env: Env, query: str) -> None:
    r = await env.http.get(f"/notifications?{query}", headers=env.user("u1"))
    assert r.status_code == 400
    assert r.json()["error"]["message"].split(":")[0] in ("page", "limit")
