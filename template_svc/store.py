"""Template versions in the database (table ``template_versions``).

A template is identified by name x channel x locale (``''`` = the default locale).
Publishing adds version n+1 and keeps the earlier ones; a version never changes once
written, which is what lets compiled templates be cached by version. Deleting
deactivates every version of name x channel x locale; publishing again afterwards starts
from the next unused number (numbers are never reused), and only what is active is read.
Layouts are stored the same way, with channel ``layout``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from notify_core.convert import iso
from notify_core.db.engine import Database
from notify_core.db.schema import new_id, utcnow
from notify_core.db.schema import template_versions as t
from notify_core.errors import NotFound, Unavailable
from template_svc.render import Source
from template_svc.validate import TemplateInput, locale_chain

_PUBLISH_ATTEMPTS = 5
"""Two publishes of one template at once pick the same number; the loser tries again."""


@dataclass(frozen=True, slots=True)
class StoredTemplate:
    """One published version."""

    id: str
    name: str
    channel: str
    locale: str
    version: int
    subject: str | None
    body: str
    layout: str | None
    variables: tuple[str, ...] | None
    created_at: datetime

    def source(self) -> Source:
        key = (self.name, self.channel, self.locale, self.version)
        return Source(self.channel, self.body, self.subject, self.layout, self.variables, key)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "channel": self.channel,
            "locale": self.locale,
            "version": self.version,
            "subject": self.subject,
            "body": self.body,
            "layout": self.layout,
            "variables": None if self.variables is None else list(self.variables),
            "created_at": iso(self.created_at),
        }


def _stored(row: Any) -> StoredTemplate:
    return StoredTemplate(
        id=row.id,
        name=row.name,
        channel=row.channel,
        locale=row.locale,
        version=row.version,
        subject=row.subject,
        body=row.body,
        layout=row.layout,
        variables=None if row.variables is None else tuple(row.variables),
        created_at=row.created_at,
    )


def describe(name: str, channel: str, locale: str) -> str:
    """How errors name a template: ``template 'welcome' (email, locale 'fr')``."""
    where = f"locale {locale!r}" if locale else "default locale"
    return f"template {name!r} ({channel}, {where})"


def _active(name: str, channel: str, locale: str) -> sa.ColumnElement[bool]:
    return sa.and_(
        t.c.name == name, t.c.channel == channel, t.c.locale == locale, t.c.active == sa.true()
    )


class TemplateStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def publish(self, template: TemplateInput) -> StoredTemplate:
        """Store ``template`` (already checked) as the next version of its name x channel x
        locale, and answer it."""
        key = sa.and_(
            t.c.name == template.name,
            t.c.channel == template.channel,
            t.c.locale == template.locale,
        )
        for _ in range(_PUBLISH_ATTEMPTS):
            try:
                async with self._db.write() as conn:
                    last = (
                        await conn.execute(sa.select(sa.func.max(t.c.version)).where(key))
                    ).scalar()
                    row = (
                        await conn.execute(
                            sa.insert(t)
                            .values(
                                id=new_id(),
                                name=template.name,
                                channel=template.channel,
                                locale=template.locale,
                                version=(last or 0) + 1,
                                subject=template.subject,
                                body=template.body,
                                layout=template.layout,
                                variables=None
                                if template.variables is None
                                else list(template.variables),
                                active=True,
                                created_at=utcnow(),
                            )
                            .returning(*t.c)
                        )
                    ).one()
                return _stored(row)
            except IntegrityError:
                continue
        raise Unavailable(
            f"{describe(template.name, template.channel, template.locale)} kept "
            "racing with other publishes; try again"
        )

    async def get(
        self, name: str, channel: str, locale: str, version: int | None = None
    ) -> StoredTemplate:
        """The latest active version, or version ``version``; NotFound otherwise."""
        query = sa.select(t).where(_active(name, channel, locale))
        if version is not None:
            query = query.where(t.c.version == version)
        async with self._db.read() as conn:
            row = (await conn.execute(query.order_by(t.c.version.desc()).limit(1))).first()
        if row is None:
            which = describe(name, channel, locale)
            raise NotFound(f"{which} has no version {version}" if version else f"no {which}")
        return _stored(row)

    async def versions(self, name: str, channel: str, locale: str) -> list[StoredTemplate]:
        """Every active version, oldest first (empty when there is none)."""
        query = sa.select(t).where(_active(name, channel, locale)).order_by(t.c.version)
        async with self._db.read() as conn:
            return [_stored(row) for row in await conn.execute(query)]

    async def delete(self, name: str, channel: str, locale: str) -> int:
        """Deactivate every version; answer how many were active (NotFound when none)."""
        stmt = sa.update(t).where(_active(name, channel, locale)).values(active=False)
        async with self._db.write() as conn:
            count = (await conn.execute(stmt)).rowcount
        if not count:
            raise NotFound(f"no {describe(name, channel, locale)}")
        return int(count)

    async def resolve(self, name: str, channel: str, locale: str | None) -> StoredTemplate | None:
        """The latest active version for the first locale of ``locale``'s chain that has
        one (``fr-CA`` → ``fr`` → default), or None."""
        async with self._db.read() as conn:
            for candidate in locale_chain(locale):
                query = (
                    sa.select(t)
                    .where(_active(name, channel, candidate))
                    .order_by(t.c.version.desc())
                    .limit(1)
                )
                row = (await conn.execute(query)).first()
                if row is not None:
                    return _stored(row)
        return None
