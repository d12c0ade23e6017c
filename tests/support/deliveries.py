"""A user's email address, and what became of a notification's deliveries."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from notify_core.db.schema import notification_deliveries
from tests.support.nodes import Env


async def set_email(env: Env, user: str) -> str:
    address = f"{user}@example.com"
    r = await env.http.put("/preferences", json={"email": address}, headers=env.user(user))
    assert r.status_code == 200, r.text
    return address


async def status(env: Env, nid: str, channel: str = "email") -> dict[str, Any]:
    r = await env.http.get(f"/notifications/{nid}/deliveries", headers=env.producer)
    assert r.status_code == 200, r.text
    found = {d["channel"]: d for d in r.json()["deliveries"]}
    return found.get(channel, {})


async def delivery_row(env: Env, nid: str) -> dict[str, Any]:
    """The email delivery row as stored (provider and all)."""
    assert env.node.database is not None
    async with env.node.database.read() as conn:
        row = (
            await conn.execute(
                sa.select(notification_deliveries).where(
                    notification_deliveries.c.notification_id == nid,
                    notification_deliveries.c.channel == "email",
                )
            )
        ).first()
    return dict(row._mapping) if row is not None else {"status": None}
