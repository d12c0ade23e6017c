"""The in-app inbox: reads and read-marks over the ``notifications`` table.

Queries follow the original design's indexes: ``(user_id, created_at DESC)`` for the
newest-first pages and the partial ``(user_id, read) WHERE read = false`` for unread counts.

A resume (``after``) goes by when a notification entered the inbox: ``routed_at`` (the
router stamps it; a held in-app copy released later is stamped again then), ties broken by
id. That is the order live events go out in, which ``created_at`` is not: a high-priority
notification overtakes earlier ones in the routing queue, and a held one enters late.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from notify_core.constants import INBOX_DEFAULT_LIMIT, INBOX_MAX_LIMIT
from notify_core.db.engine import Database
from notify_core.db.schema import notifications as n
from notify_core.errors import InvalidArgument, NotFound


@dataclass(frozen=True, slots=True)
class Cursor:
    """A place in a user's inbox, in the order notifications entered it."""

    at: datetime
    id: str


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[dict[str, Any]]
    page: int
    limit: int
    has_more: bool
    unread_count: int


def page_args(page: int, limit: int) -> tuple[int, int]:
    """Checked paging arguments (0 means the default)."""
    page = page or 1
    limit = limit or INBOX_DEFAULT_LIMIT
    if page < 1:
        raise InvalidArgument("page", f"must be 1 or more, got {page}")
    if page > 100_000:
        raise InvalidArgument("page", "must be at most 100000")
    if not 1 <= limit <= INBOX_MAX_LIMIT:
        raise InvalidArgument("limit", f"must be between 1 and {INBOX_MAX_LIMIT}, got {limit}")
    return page, limit


def _user_inbox(user_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(n.c.user_id == user_id, n.c.inbox == sa.true())


def page_query(user_id: str, page: int, limit: int) -> sa.Select[Any]:
    """Newest first; one row more than ``limit`` tells whether there is a next page."""
    return (
        sa.select(n)
        .where(_user_inbox(user_id))
        .order_by(n.c.created_at.desc(), n.c.id.desc())
        .limit(limit + 1)
        .offset((page - 1) * limit)
    )


def unread_query(user_id: str) -> sa.Select[Any]:
    return (
        sa.select(sa.func.count())
        .select_from(n)
        .where(_user_inbox(user_id), n.c.read == sa.false())
    )


class Inbox:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def list_page(
        self, user_id: str, page: int = 1, limit: int = INBOX_DEFAULT_LIMIT
    ) -> Page:
        page, limit = page_args(page, limit)
        async with self._db.read() as conn:
            rows = [dict(r._mapping) for r in await conn.execute(page_query(user_id, page, limit))]
            unread = await self._unread(conn, user_id)
        return Page(rows[:limit], page, limit, len(rows) > limit, unread)

    async def pending(self, user_id: str, limit: int) -> tuple[list[dict[str, Any]], int]:
        """Up to ``limit`` unread notifications, newest first, and the unread count."""
        query = (
            sa.select(n)
            .where(_user_inbox(user_id), n.c.read == sa.false())
            .order_by(n.c.created_at.desc(), n.c.id.desc())
            .limit(limit)
        )
        async with self._db.read() as conn:
            rows = [dict(r._mapping) for r in await conn.execute(query)]
            unread = await self._unread(conn, user_id)
        return rows, unread

    async def position(self, user_id: str, notification_id: str) -> Cursor | None:
        """Where ``notification_id`` sits in this user's inbox; ``None`` when it is not there."""
        query = sa.select(n.c.routed_at).where(n.c.id == notification_id, _user_inbox(user_id))
        async with self._db.read() as conn:
            at = (await conn.execute(query)).scalar_one_or_none()
        return None if at is None else Cursor(at, notification_id)

    async def after(
        self, user_id: str, cursor: Cursor, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        """Up to ``limit`` notifications that entered the inbox after ``cursor``, in the
        order they entered it, and the unread count."""
        query = (
            sa.select(n)
            .where(
                _user_inbox(user_id),
                sa.tuple_(n.c.routed_at, n.c.id)
                > sa.tuple_(sa.literal(cursor.at, n.c.routed_at.type), sa.literal(cursor.id)),
            )
            .order_by(n.c.routed_at, n.c.id)
            .limit(limit)
        )
        async with self._db.read() as conn:
            rows = [dict(r._mapping) for r in await conn.execute(query)]
            unread = await self._unread(conn, user_id)
        return rows, unread

    async def unread_count(self, user_id: str) -> int:
        async with self._db.read() as conn:
            return await self._unread(conn, user_id)

    async def mark_read(self, user_id: str, notification_id: str) -> int:
        """Mark one notification read (idempotent); answer the new unread count.

        Raises NotFound when it is not in this user's inbox.
        """
        async with self._db.write() as conn:
            found = (
                await conn.execute(
                    sa.select(n.c.read).where(n.c.id == notification_id, _user_inbox(user_id))
                )
            ).first()
            if found is None:
                raise NotFound(f"notification {notification_id} not found")
            if not found.read:
                await conn.execute(
                    n.update()
                    .where(n.c.id == notification_id)
                    .values(read=True, read_at=datetime.now(UTC))
                )
            return await self._unread(conn, user_id)

    async def mark_all_read(self, user_id: str) -> int:
        """Mark every unread notification read; answer how many changed."""
        async with self._db.write() as conn:
            result = await conn.execute(
                n.update()
                .where(_user_inbox(user_id), n.c.read == sa.false())
                .values(read=True, read_at=datetime.now(UTC))
            )
            return int(result.rowcount)

    @staticmethod
    async def _unread(conn: Any, user_id: str) -> int:
        result = await conn.execute(
            sa.select(sa.func.count())
            .select_from(n)
            .where(_user_inbox(user_id), n.c.read == sa.false())
        )
        return int(result.scalar_one())
