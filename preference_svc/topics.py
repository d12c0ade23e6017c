"""Topics: which users a topic reaches, and whether users may subscribe themselves.

A topic is **private** unless a producer made it public (``PUT /topics/{topic}`` with
``{"public": true}``, the ``topics`` table): producers subscribe anyone to any topic,
users subscribe themselves only to public ones, and may always unsubscribe. Making a
topic private again keeps its subscribers.

Subscribing is idempotent and takes up to ``MAX_TOPIC_SUBSCRIBE`` users per call, written in
one transaction as batched multi-row ``INSERT … ON CONFLICT DO NOTHING`` statements (the
same on PostgreSQL and SQLite), so a user already subscribed is neither an error nor
counted twice. Subscribers are listed in ``user_id`` order with keyset pagination: the
``next`` cursor of a page is the last user id on it, given back as ``after``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from notify_core.checks import check_user_id
from notify_core.constants import (
    MAX_TOPIC,
    MAX_TOPIC_SUBSCRIBE,
    TOPIC_PAGE_DEFAULT,
    TOPIC_PAGE_MAX,
)
from notify_core.db.engine import Database
from notify_core.db.schema import topic_subscriptions as t
from notify_core.db.schema import topics as topics_table
from notify_core.db.schema import utcnow
from notify_core.errors import InvalidArgument, PermissionDenied

TOPIC_NAME = re.compile(rf"^[A-Za-z0-9._:-]{{1,{MAX_TOPIC}}}$")
INSERT_BATCH = 1_000
"""Rows per INSERT statement (3 bound parameters each, well under SQLite's limit)."""


# --- validation (pure) ------------------------------------------------------------------


def check_topic(value: Any, field: str = "topic") -> str:
    if not isinstance(value, str) or not TOPIC_NAME.match(value):
        raise InvalidArgument(
            field,
            f"must be 1 to {MAX_TOPIC} characters of letters, digits, '.', '_', ':' or '-', "
            f"got {value!r}",
        )
    return value


def check_user_ids(values: Any, field: str = "user_ids") -> list[str]:
    """1 to ``MAX_TOPIC_SUBSCRIBE`` user ids, duplicates dropped, order kept."""
    if not isinstance(values, (list, tuple)) or not values:
        raise InvalidArgument(field, "must be a non-empty array of user ids")
    if len(values) > MAX_TOPIC_SUBSCRIBE:
        raise InvalidArgument(field, f"at most {MAX_TOPIC_SUBSCRIBE} user ids per call")
    checked = [check_user_id(v, f"{field}[{i}]") for i, v in enumerate(values)]
    return list(dict.fromkeys(checked))


def check_page(after: str | None, limit: int | None) -> tuple[str | None, int]:
    """The ``after`` cursor (empty means the first page) and the page size."""
    if after:
        check_user_id(after, "after")
    if limit is None or limit == 0:
        limit = TOPIC_PAGE_DEFAULT
    if not 1 <= limit <= TOPIC_PAGE_MAX:
        raise InvalidArgument("limit", f"must be 1 to {TOPIC_PAGE_MAX}, got {limit}")
    return after or None, limit


def parse_subscribers(body: Any) -> list[str]:
    """The users a ``PUT /topics/{topic}/subscribers`` body names."""
    if not isinstance(body, dict):
        raise InvalidArgument("body", "must be an object")
    unknown = sorted(set(body) - {"user_ids"})
    if unknown:
        raise InvalidArgument(unknown[0], "is not a known field")
    if "user_ids" not in body:
        raise InvalidArgument("user_ids", "is required")
    return check_user_ids(body["user_ids"])


def parse_topic_settings(body: Any) -> bool:
    """Whether a ``PUT /topics/{topic}`` body makes the topic public."""
    if not isinstance(body, dict):
        raise InvalidArgument("body", "must be an object")
    unknown = sorted(set(body) - {"public"})
    if unknown:
        raise InvalidArgument(unknown[0], "is not a known field")
    if not isinstance(body.get("public"), bool):
        raise InvalidArgument("public", "is required: true or false")
    return bool(body["public"])


# --- storage ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    public: bool

    def to_json(self) -> dict[str, Any]:
        return {"topic": self.name, "public": self.public}


@dataclass(frozen=True, slots=True)
class SubscriberPage:
    user_ids: list[str]
    next: str | None
    """Pass as ``after`` for the next page; ``None`` on the last page."""


class TopicStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def set_public(self, topic: str, public: bool) -> Topic:
        """Make a checked topic public or private."""
        now = utcnow()
        insert = (sqlite.insert if self._db.is_sqlite else postgresql.insert)(topics_table)
        stmt = insert.values(name=topic, public=public, created_at=now, updated_at=now)
        stmt = stmt.on_conflict_do_update(
            index_elements=[topics_table.c.name], set_={"public": public, "updated_at": now}
        )
        async with self._db.write() as conn:
            await conn.execute(stmt)
        return Topic(topic, public)

    async def get(self, topic: str) -> Topic:
        """A checked topic as configured; one never configured is private."""
        query = sa.select(topics_table.c.public).where(topics_table.c.name == topic)
        async with self._db.read() as conn:
            public = (await conn.execute(query)).scalar_one_or_none()
        return Topic(topic, bool(public))

    async def subscribe_self(self, topic: str, user_id: str) -> None:
        """A user subscribing themselves: only to a public topic (else PermissionDenied,
        the same for a topic that was never configured, so nothing tells them apart)."""
        if not (await self.get(topic)).public:
            raise PermissionDenied(
                f"topic {topic!r} is not public: users subscribe themselves only to topics "
                'a producer made public (PUT /topics/{topic} with {"public": true})'
            )
        await self.subscribe(topic, [user_id])

    async def subscribe(self, topic: str, user_ids: Sequence[str]) -> int:
        """Subscribe checked users to a checked topic; answer how many were not already."""
        now = utcnow()
        insert = (sqlite.insert if self._db.is_sqlite else postgresql.insert)(t)
        added = 0
        async with self._db.write() as conn:
            for start in range(0, len(user_ids), INSERT_BATCH):
                rows = [
                    {"topic": topic, "user_id": u, "created_at": now}
                    for u in user_ids[start : start + INSERT_BATCH]
                ]
                stmt = insert.values(rows).on_conflict_do_nothing(
                    index_elements=[t.c.topic, t.c.user_id]
                )
                result = await conn.execute(stmt.returning(t.c.user_id))
                added += len(result.all())
        return added

    async def unsubscribe(self, topic: str, user_ids: Sequence[str]) -> int:
        """Remove checked users from a topic; answer how many were subscribed."""
        removed = 0
        async with self._db.write() as conn:
            for start in range(0, len(user_ids), INSERT_BATCH):
                chunk = list(user_ids[start : start + INSERT_BATCH])
                result = await conn.execute(
                    sa.delete(t)
                    .where(t.c.topic == topic, t.c.user_id.in_(chunk))
                    .returning(t.c.user_id)
                )
                removed += len(result.all())
        return removed

    async def subscribers(self, topic: str, after: str | None, limit: int) -> SubscriberPage:
        """One page of a topic's subscribers in ``user_id`` order, after ``after``."""
        query = sa.select(t.c.user_id).where(t.c.topic == topic)
        if after is not None:
            query = query.where(t.c.user_id > after)
        query = query.order_by(t.c.user_id).limit(limit + 1)
        async with self._db.read() as conn:
            user_ids = list((await conn.execute(query)).scalars())
        more = len(user_ids) > limit
        user_ids = user_ids[:limit]
        return SubscriberPage(user_ids, user_ids[-1] if more else None)

    async def topics_of(self, user_id: str) -> list[str]:
        """The topics a user is subscribed to, in name order."""
        query = sa.select(t.c.topic).where(t.c.user_id == user_id).order_by(t.c.topic)
        async with self._db.read() as conn:
            return list((await conn.execute(query)).scalars())
