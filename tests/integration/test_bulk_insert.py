"""``insert_rows``: COPY on PostgreSQL, executemany on SQLite, the same rows read back —
JSON, aware timestamps, NULLs and server defaults — and nothing of a failed copy left
behind once its transaction rolls back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from notify_core.db.bulk import insert_rows
from notify_core.db.engine import Database
from notify_core.db.migrate import upgrade
from notify_core.db.schema import new_id, notification_deliveries, notifications


@pytest.fixture(params=["embedded", "real"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    url = (
        f"sqlite:///{tmp_path / 'bulk.db'}"
        if request.param == "embedded"
        else request.getfixturevalue("postgres_url")
    )
    await asyncio.to_thread(upgrade, url)
    database = Database(url)
    try:
        yield database
    finally:
        await database.close()


async def a_notification(db: Database) -> str:
    nid = new_id()
    async with db.write() as conn:
        await conn.execute(
            notifications.insert().values(
                id=nid,
                user_id=f"bulk-{uuid.uuid4().hex[:8]}",
                type="bulk",
                title="t",
                message="m",
                created_at=datetime.now(UTC),
            )
        )
    return nid


def rows_for(nid: str, now: datetime) -> list[dict[str, Any]]:
    later = now + timedelta(minutes=5)
    return [
        {
            "id": new_id(),
            "notification_id": nid,
            "channel": channel,
            "status": status,
            "metadata": meta,
            "delivered_at": delivered,
            "hold_until": hold,
            "created_at": now,
        }
        for channel, status, meta, delivered, hold in (
            ("inapp", "delivered", {"reason": "sent", "n": 1}, now, None),
            (
                "email",
                "held",
                {"reason": 'quiet "22-07"\t\\N\n', "tz": "Europe/Paris"},
                None,
                later,
            ),
            ("sms", "skipped", {"reason": "no phone", "nested": {"a": [1, None, "ü"]}}, None, None),
            ("push", "skipped", None, None, None),
        )
    ]


async def test_rows_read_back_as_written(db: Database) -> None:
    nid = await a_notification(db)
    now = datetime.now(UTC).replace(microsecond=123456)
    rows = rows_for(nid, now)
    async with db.write() as conn:
        await insert_rows(conn, notification_deliveries, rows)
    d = notification_deliveries.c
    async with db.read() as conn:
        got = {
            r.id: r._mapping
            for r in await conn.execute(
                sa.select(notification_deliveries).where(d.notification_id == nid)
            )
        }
    assert set(got) == {r["id"] for r in rows}
    for row in rows:
        back = got[row["id"]]
        for column, value in row.items():
            assert back[column] == value, (column, back[column], value)
        # left out: server defaults
        assert (back["attempts"], back["opens"], back["clicks"]) == (0, 0, 0)
        assert back["provider"] is None


async def test_nothing_is_left_when_the_transaction_fails(db: Database) -> None:
    nid = await a_notification(db)
    rows = rows_for(nid, datetime.now(UTC))
    rows.append({**rows[0], "id": rows[0]["id"]})  # the same primary key twice
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        async with db.write() as conn:
            await insert_rows(conn, notification_deliveries, rows)
    async with db.read() as conn:
        count = await conn.scalar(
            sa.select(sa.func.count()).where(notification_deliveries.c.notification_id == nid)
        )
    assert count == 0


async def test_a_naive_timestamp_is_refused(db: Database) -> None:
    nid = await a_notification(db)
    rows = rows_for(nid, datetime.now(UTC))
    rows[0]["created_at"] = datetime.now()  # no zone
    with pytest.raises(Exception, match="naive datetime"):
        async with db.write() as conn:
            await insert_rows(conn, notification_deliveries, rows)
