"""Devices and what became of their pushes: registering tokens, reading ``push_sends``."""

from __future__ import annotations

import secrets
from typing import Any

import sqlalchemy as sa

from notify_core.db.schema import device_tokens, notification_deliveries, push_sends
from tests.support.nodes import Env


def apns_token() -> str:
    return secrets.token_hex(32)


async def register(env: Env, user: str, platform: str, token: Any) -> str:
    """Register ``token`` for ``user``; answer the device id."""
    r = await env.http.post(
        "/devices", json={"platform": platform, "token": token}, headers=env.user(user)
    )
    assert r.status_code in (200, 201), r.text
    return str(r.json()["id"])


async def sends_of(env: Env, nid: str, channel: str = "push") -> list[dict[str, Any]]:
    """The ``push_sends`` rows of the notification's ``channel`` delivery."""
    assert env.node.database is not None
    d, p = notification_deliveries.c, push_sends.c
    async with env.node.database.read() as conn:
        rows = await conn.execute(
            sa.select(push_sends)
            .join(notification_deliveries, d.id == p.delivery_id)
            .where(d.notification_id == nid, d.channel == channel)
            .order_by(p.device_id)
        )
        return [dict(r._mapping) for r in rows]


async def device_row(env: Env, device_id: str) -> dict[str, Any]:
    assert env.node.database is not None
    async with env.node.database.read() as conn:
        row = (
            await conn.execute(sa.select(device_tokens).where(device_tokens.c.id == device_id))
        ).one()
        return dict(row._mapping)
