"""Users due for a digest, written straight into the database; how many of their put-aside
emails read ``digest_sent``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from notify_core.db.engine import Database
from notify_core.db.schema import (
    new_id,
    notification_deliveries,
    notification_preferences,
    notifications,
)
from notify_core.db.shown import shown_status_sql, with_carrier
from tests.support.ids import uid


async def seed(db: Database, users: int, items: int = 2) -> list[str]:
    """Users with daily digests (UTC, 09:00) and ``items`` put-aside emails each."""
    now = datetime.now(UTC)
    ids = [uid("sched") for _ in range(users)]
    prefs, notes, rows = [], [], []
    for user in ids:
        prefs.append(
            {
                "id": new_id(),
                "user_id": user,
                "email_address": f"{user}@example.com",
                "digest_enabled": True,
                "updated_at": now,
            }
        )
        for i in range(items):
            nid = new_id()
            notes.append(
                {
                    "id": nid,
                    "user_id": user,
                    "type": "comment",
                    "title": f"c{i}",
                    "message": "m",
                    "priority": "low",
                    "group_key": f"post:{i % 2}",
                    "created_at": now,
                    "state": "routed",
                }
            )
            rows.append(
                {
                    "id": new_id(),
                    "notification_id": nid,
                    "channel": "email",
                    "status": "digested",
                    "created_at": now,
                }
            )
    async with db.write() as conn:
        await conn.execute(notification_preferences.insert(), prefs)
        await conn.execute(notifications.insert(), notes)
        await conn.execute(notification_deliveries.insert(), rows)
    return ids


def sent_in_digest(users: list[str]) -> sa.Select[Any]:
    """``SELECT count(*)`` of the users' put-aside emails that read ``digest_sent`` (their
    digest was sent), as the deliveries endpoint shows them."""
    d, n = notification_deliveries, notifications
    return (
        sa.select(sa.func.count())
        .select_from(with_carrier.join(n, n.c.id == d.c.notification_id))
        .where(
            n.c.user_id.in_(users),
            shown_status_sql() == "digest_sent",
            d.c.digest_id.is_not(None),
        )
    )
