"""Users due for a digest, written straight into the database."""

from __future__ import annotations

from datetime import UTC, datetime

from notify_core.db.engine import Database
from notify_core.db.schema import (
    new_id,
    notification_deliveries,
    notification_preferences,
    notifications,
)
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
