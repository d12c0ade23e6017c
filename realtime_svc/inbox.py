"""The in-app inbox: reads and read-marks over the ``notifications`` table.

Queries follow the original design's indexes: ``(user_id, created_at DESC)`` for the
newest-first pages and the partial ``(user_id, read) WHERE read = false`` for unread counts.

The first page at the default size, and the unread count, are cached
(:mod:`notify_core.inbox_cache`); every read-mark here invalidates the user's entries after
its commit, as the router and scheduler do after theirs. A page and its unread count are
one statement (the count a scalar subquery), read without a transaction around it.

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

from notify_core import fastjson
from notify_core.constants import INBOX_DEFAULT_LIMIT, INBOX_MAX_LIMIT
from notify_core.convert import row_to_json
from notify_core.db.engine import Database
from notify_core.db.schema import notifications as n
from notify_core.errors import InvalidArgument, NotFound
from notify_core.inbox_cache import InboxCache


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


def _user_inbox(user_id: str | sa.BindParameter[str]) -> sa.ColumnElement[bool]:
    return sa.and_(n.c.user_id == user_id, n.c.inbox == sa.true())


_USER = sa.bindparam("user_id", type_=sa.String)
_PAGE_WITH_UNREAD = (
    sa.select(
        n,
        sa.select(sa.func.count())
        .select_from(n)
        .where(_user_inbox(_USER), n.c.read == sa.false())
        .scalar_subquery()
        .label("unread_count"),
    )
    .where(_user_inbox(_USER))
    .order_by(n.c.created_at.desc(), n.c.id.desc())
    .limit(sa.bindparam("limit", type_=sa.Integer))
    .offset(sa.bindparam("offset", type_=sa.Integer))
)
"""A page newest first, one row more than asked (it tells whether there is a next page),
with the user's unread count on every row: one statement, built once."""


def page_params(user_id: str, page: int, limit: int) -> dict[str, Any]:
    """The parameters of ``_PAGE_WITH_UNREAD`` for a checked page and limit."""
    return {"user_id": user_id, "limit": limit + 1, "offset": (page - 1) * limit}


def page_query(user_id: str, page: int, limit: int) -> sa.Select[Any]:
    """The statement of a page with its values bound (for EXPLAIN)."""
    return _PAGE_WITH_UNREAD.params(page_params(user_id, page, limit))


def encode_page(page: Page) -> bytes:
    """The JSON body of ``GET /notifications`` for ``page``."""
    return fastjson.dumps(
        {
            "notifications": [row_to_json(r) for r in page.rows],
            "page": page.page,
            "limit": page.limit,
            "has_more": page.has_more,
            "unread_count": page.unread_count,
        }
    )


def unread_query(user_id: str) -> sa.Select[Any]:
    return (
        sa.select(sa.func.count())
        .select_from(n)
        .where(_user_inbox(user_id), n.c.read == sa.false())
    )


class Inbox:
    def __init__(self, database: Database, cache: InboxCache) -> None:
        self._db = database
        self._cache = cache

    async def list_page(
        self, user_id: str, page: int = 1, limit: int = INBOX_DEFAULT_LIMIT
    ) -> Page:
        """A page from the database (uncached)."""
        page, limit = page_args(page, limit)
        params = page_params(user_id, page, limit)
        async with self._db.read(snapshot=False) as conn:
            rows = [dict(r._mapping) for r in await conn.execute(_PAGE_WITH_UNREAD, params)]
            if rows:
                unread = int(rows[0]["unread_count"])
                for row in rows:
                    del row["unread_count"]
            elif page == 1:
                unread = 0
            else:
                unread = await self._unread(conn, user_id)
        return Page(rows[:limit], page, limit, len(rows) > limit, unread)

    async def page_body(
        self, user_id: str, page: int = 1, limit: int = INBOX_DEFAULT_LIMIT
    ) -> bytes:
        """The encoded JSON body of a page; the default first page comes from the cache."""
        if (page, limit) != (1, INBOX_DEFAULT_LIMIT):
            return encode_page(await self.list_page(user_id, page, limit))

        async def load() -> tuple[int, bytes]:
            first = await self.list_page(user_id)
            return first.unread_count, encode_page(first)

        return await self._cache.first_page(user_id, load)

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
        """The unread count, cached."""

        async def load() -> int:
            async with self._db.read(snapshot=False) as conn:
                return await self._unread(conn, user_id)

        return await self._cache.unread(user_id, load)

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
            changed = not found.read
            if changed:
                await conn.execute(
                    n.update()
                    .where(n.c.id == notification_id)
                    .values(read=True, read_at=datetime.now(UTC))
                )
            unread = await self._unread(conn, user_id)
        if changed:
            await self._cache.forget([user_id])
        return unread

    async def mark_all_read(self, user_id: str) -> int:
        """Mark every unread notification read; answer how many changed."""
        async with self._db.write() as conn:
            result = await conn.execute(
                n.update()
                .where(_user_inbox(user_id), n.c.read == sa.false())
                .values(read=True, read_at=datetime.now(UTC))
            )
        if result.rowcount:
            await self._cache.forget([user_id])
        return int(result.rowcount)

    @staticmethod
    async def _unread(conn: Any, user_id: str) -> int:
        result = await conn.execute(
            sa.select(sa.func.count())
            .select_from(n)
            .where(_user_inbox(user_id), n.c.read == sa.false())
        )
        return int(result.scalar_one())
