"""Leases in the database: one holder per name at a time, across every node.

A lease is a row of ``leases`` (name, holder, expires_at). It is taken, or renewed, by one
conditional statement: ``UPDATE ... WHERE name = :name AND (holder = :me OR expires_at <
:now)``, which of two nodes racing for an expired lease lets one through (the row lock on
PostgreSQL, the one writer on SQLite); a name never held is taken by an ``INSERT ... ON
CONFLICT DO NOTHING``. A holder that stops renewing loses the lease ``ttl`` seconds after
its last renewal, and another node may take it.

Fencing: :meth:`Lease.renew_in` renews inside the caller's transaction, so a holder whose
lease ran out (it stalled longer than the ttl, and another node took over) finds out when
it tries to write, and its transaction is rolled back instead of committing beside the new
holder's.

Times come from the holders' clocks (injectable for tests): their skew must stay well
within the ttl.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from notify_core.db.engine import Database
from notify_core.db.schema import leases, utcnow

Clock = Callable[[], datetime]


class Lease:
    def __init__(
        self, database: Database, name: str, holder: str, ttl: float, clock: Clock = utcnow
    ) -> None:
        self._db = database
        self.name = name
        self.holder = holder
        self.ttl = timedelta(seconds=ttl)
        self._clock = clock
        self.valid_until: datetime | None = None
        """Until when this holder knows the lease is its own (None: it is not)."""

    def held(self, margin: float = 0.0) -> bool:
        """Whether the lease is ours for at least ``margin`` more seconds, as far as this
        holder knows (without asking the database)."""
        return (
            self.valid_until is not None
            and self._clock() + timedelta(seconds=margin) < self.valid_until
        )

    async def acquire(self) -> bool:
        """Take the lease if it is free or expired, renew it if it is ours; answer whether
        it is ours now."""
        async with self._db.write() as conn:
            return await self.renew_in(conn, take=True)

    async def renew_in(self, conn: AsyncConnection, *, take: bool = False) -> bool:
        """Renew the lease in the caller's transaction; with ``take``, also take it when it
        is free. False means another holder has it: the caller rolls back."""
        now = self._clock()
        until = now + self.ttl
        ours = leases.c.holder == self.holder
        condition = sa.or_(ours, leases.c.expires_at < now) if take else ours
        result = await conn.execute(
            leases.update()
            .where(leases.c.name == self.name, condition)
            .values(holder=self.holder, expires_at=until)
            .returning(leases.c.name)
        )
        got = result.first() is not None
        if not got and take:
            insert = (sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert)(leases)
            result = await conn.execute(
                insert.values(name=self.name, holder=self.holder, expires_at=until)
                .on_conflict_do_nothing(index_elements=[leases.c.name])
                .returning(leases.c.name)
            )
            got = result.first() is not None
        self.valid_until = until if got else None
        return got

    async def release(self) -> None:
        """Give the lease up (if ours), so another node need not wait for it to expire."""
        self.valid_until = None
        async with self._db.write() as conn:
            await conn.execute(
                leases.delete().where(leases.c.name == self.name, leases.c.holder == self.holder)
            )


async def lease_holder(database: Database, name: str) -> tuple[str, datetime] | None:
    """Who holds ``name`` and until when (the row as it is: it may have expired)."""
    async with database.read() as conn:
        row = (
            await conn.execute(
                sa.select(leases.c.holder, leases.c.expires_at).where(leases.c.name == name)
            )
        ).first()
    return None if row is None else (row.holder, row.expires_at)
