"""A user's email address and phone number, what became of a notification's deliveries,
and the state of the providers' breakers."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from notify.v1 import delivery_pb2, delivery_pb2_grpc

from notify_core.db.schema import notification_deliveries
from tests.support.nodes import Env


async def set_email(env: Env, user: str) -> str:
    address = f"{user}@example.com"
    r = await env.http.put("/preferences", json={"email": address}, headers=env.user(user))
    assert r.status_code == 200, r.text
    return address


async def set_phone(env: Env, user: str, phone: str) -> None:
    """Give the user a phone number, with SMS switched on."""
    body = {"phone": phone, "channels": {"sms": True}}
    r = await env.http.put("/preferences", json=body, headers=env.user(user))
    assert r.status_code == 200, r.text


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


async def recorded_channels(env: Env, nid: str) -> list[str]:
    """The channels with a ``notification_deliveries`` row for the notification, sorted."""
    assert env.node.database is not None
    d = notification_deliveries.c
    async with env.node.database.read() as conn:
        found = await conn.scalars(sa.select(d.channel).where(d.notification_id == nid))
        return sorted(found)


async def breaker(env: Env, provider: str) -> delivery_pb2.ProviderStatus:
    """The provider's breaker as the node reports it (``GetProviderStatus``)."""
    stub = delivery_pb2_grpc.DeliveryServiceStub(env.grpc_channel)
    reply = await stub.GetProviderStatus(
        delivery_pb2.GetProviderStatusRequest(), metadata=env.metadata
    )
    return next(p for p in reply.providers if p.provider == provider)
