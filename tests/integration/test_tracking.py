"""Open and click tracking through the node's HTTP edge, on both backends."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from delivery_svc.engagement import engagement_counts
from delivery_svc.tracking import click_url, open_pixel_url
from notify_app.settings import NodeSettings
from notify_core.db.engine import Database
from notify_core.db.schema import notification_deliveries, notifications, utcnow
from tests.support.nodes import Env, running

SIGNING_SECRET = "tracking-signing-secret-0123456789"
TARGET = "https://shop.example/p/%C3%A9t%C3%A9?id=42&ref=mail#reviews"


@pytest.fixture
def settings(settings: NodeSettings) -> NodeSettings:
    return replace(settings, signing_secret=SIGNING_SECRET)


def database(env: Env) -> Database:
    assert env.node.database is not None
    return env.node.database


async def sent_delivery(env: Env, status: str = "sent") -> tuple[str, str]:
    """A notification and its email delivery row, as a worker leaves them once sent."""
    nid, did = str(uuid.uuid4()), str(uuid.uuid4())
    now = utcnow()
    async with database(env).write() as conn:
        await conn.execute(
            notifications.insert().values(
                id=nid, user_id=f"user-{nid[:8]}", type="comment", title="t", message="m"
            )
        )
        await conn.execute(
            notification_deliveries.insert().values(
                id=did, notification_id=nid, channel="email", status=status, sent_at=now
            )
        )
    return nid, did


async def delivery_row(env: Env, delivery_id: str) -> dict[str, Any]:
    async with database(env).read() as conn:
        row = (
            await conn.execute(
                sa.select(notification_deliveries).where(
                    notification_deliveries.c.id == delivery_id
                )
            )
        ).one()
    return dict(row._mapping)


async def notification_row(env: Env, notification_id: str) -> dict[str, Any]:
    async with database(env).read() as conn:
        row = (
            await conn.execute(
                sa.select(notifications).where(notifications.c.id == notification_id)
            )
        ).one()
    return dict(row._mapping)


async def test_opens_and_clicks_are_counted_and_move_the_status_forward(env: Env) -> None:
    started = utcnow() - timedelta(seconds=1)
    nid, did = await sent_delivery(env)
    pixel = open_pixel_url(SIGNING_SECRET, env.base_url, did)
    for _ in range(2):
        r = await env.http.get(pixel)
        assert r.status_code == 200
        assert r.headers["content-type"] == "image/gif"
        assert r.content.startswith(b"GIF89a") and r.content[6:10] == b"\x01\x00\x01\x00"
        assert "no-store" in r.headers["cache-control"]
    row = await delivery_row(env, did)
    assert (row["opens"], row["clicks"], row["status"]) == (2, 0, "opened")
    first_open = row["opened_at"]
    assert first_open is not None and first_open >= started

    r = await env.http.get(click_url(SIGNING_SECRET, env.base_url, did, TARGET))
    assert r.status_code == 302
    assert r.headers["location"] == TARGET
    row = await delivery_row(env, did)
    assert (row["opens"], row["clicks"], row["status"]) == (2, 1, "clicked")
    assert row["clicked_at"] is not None and row["opened_at"] == first_open
    notification = await notification_row(env, nid)
    assert notification["clicked"] is True and notification["clicked_at"] is not None

    # A later open counts but does not move a clicked delivery back.
    assert (await env.http.get(pixel)).status_code == 200
    row = await delivery_row(env, did)
    assert (row["opens"], row["status"]) == (3, "clicked")
    # Counted from this test's own delivery on: the session's database holds the deliveries
    # of earlier tests, some made within the second before ``started``.
    counts = await engagement_counts(database(env), since=row["created_at"])
    assert counts == {"opens": 3, "clicks": 1, "opened": 1, "clicked": 1, "sent": 1}


def tamper(url: str) -> str:
    head, _, token = url.rpartition("/")
    middle = len(token) // 2
    swapped = "A" if token[middle] != "A" else "B"
    return f"{head}/{token[:middle]}{swapped}{token[middle + 1 :]}"


async def test_a_tampered_token_redirects_nowhere_and_counts_nothing(env: Env) -> None:
    nid, did = await sent_delivery(env)
    click = click_url(SIGNING_SECRET, env.base_url, did, TARGET)
    r = await env.http.get(tamper(click))
    assert r.status_code == 400
    assert "location" not in r.headers
    assert r.json()["error"]["code"] == "invalid_argument"
    assert "token" in r.json()["error"]["message"]
    # A valid token for another target is no help either: the target is signed.
    forged = click_url(
        "some-other-secret-0123456789abcdef", env.base_url, did, "https://evil.example/"
    )
    r = await env.http.get(forged)
    assert r.status_code == 400 and "location" not in r.headers

    pixel = open_pixel_url(SIGNING_SECRET, env.base_url, did).removesuffix(".gif")
    r = await env.http.get(tamper(pixel) + ".gif")
    assert r.status_code == 400
    assert r.headers["content-type"] == "image/gif"

    row = await delivery_row(env, did)
    assert (row["opens"], row["clicks"], row["status"]) == (0, 0, "sent")
    assert row["opened_at"] is None and row["clicked_at"] is None
    assert (await notification_row(env, nid))["clicked"] is False


async def test_a_failed_delivery_keeps_its_status_but_counts(env: Env) -> None:
    _, did = await sent_delivery(env, status="failed")
    assert (
        await env.http.get(open_pixel_url(SIGNING_SECRET, env.base_url, did))
    ).status_code == 200
    row = await delivery_row(env, did)
    assert (row["opens"], row["status"]) == (1, "failed")


async def test_a_deleted_delivery_still_redirects(env: Env) -> None:
    missing = str(uuid.uuid4())
    r = await env.http.get(click_url(SIGNING_SECRET, env.base_url, missing, TARGET))
    assert (r.status_code, r.headers["location"]) == (302, TARGET)
    r = await env.http.get(open_pixel_url(SIGNING_SECRET, env.base_url, missing))
    assert r.status_code == 200


async def test_without_a_signing_secret_tracking_is_unavailable(settings: NodeSettings) -> None:
    async with running(replace(settings, signing_secret=None)) as env:
        r = await env.http.get(click_url(SIGNING_SECRET, env.base_url, "d", TARGET))
        assert r.status_code == 503 and "location" not in r.headers
        assert "NOTIFY_SIGNING_SECRET" in r.json()["error"]["message"]
