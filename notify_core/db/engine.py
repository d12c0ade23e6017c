"""The async database handle every service uses.

SQLite (the embedded default) gets WAL with ``synchronous=NORMAL`` and one writer at a time
inside the process. In WAL mode NORMAL makes a commit survive the crash (kill -9) of any
process — the guarantee of DESIGN §7 — but not a power loss or kernel crash, which may
take back the last commits; deployments that need that run on PostgreSQL (fsync on every
commit), or set ``NOTIFY_SQLITE_SYNCHRONOUS=FULL`` (an fsync per commit). PostgreSQL goes
through psycopg 3. Driver exceptions that mean "the database is not there" become
:class:`~notify_core.errors.Unavailable` here, once.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from notify_core.errors import Unavailable


def async_url(url: str) -> str:
    """The async driver URL for a configured ``sqlite:///`` or ``postgresql+psycopg://`` URL."""
    if url.startswith("sqlite:"):
        return "sqlite+aiosqlite:" + url.removeprefix("sqlite:")
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def sync_url(url: str) -> str:
    """The synchronous driver URL (migrations)."""
    if url.startswith("sqlite+aiosqlite:"):
        return "sqlite:" + url.removeprefix("sqlite+aiosqlite:")
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


class Database:
    """An async engine plus the write discipline of its dialect."""

    def __init__(
        self, url: str, *, pool_size: int = 10, sqlite_synchronous: str = "NORMAL"
    ) -> None:
        if sqlite_synchronous not in ("NORMAL", "FULL"):
            raise ValueError(
                f"sqlite_synchronous must be NORMAL or FULL, not {sqlite_synchronous!r}"
            )
        self.url = url
        self.dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
        kwargs: dict[str, Any] = {}
        if self.dialect == "postgresql":
            # No pre-ping (it costs a round trip per transaction): a dropped connection fails
            # its transaction with Unavailable and SQLAlchemy invalidates the pool.
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)
        else:
            kwargs.update(connect_args={"timeout": 30})
        self.engine: AsyncEngine = create_async_engine(async_url(url), **kwargs)
        # Single-statement reads: autocommit, so no BEGIN before and no ROLLBACK after
        # (its own pool; connections are opened only when such reads happen).
        self._plain: AsyncEngine = create_async_engine(
            async_url(url), isolation_level="AUTOCOMMIT", skip_autocommit_rollback=True, **kwargs
        )
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None
        if self.dialect == "sqlite":
            for engine in (self.engine, self._plain):
                event.listen(
                    engine.sync_engine,
                    "connect",
                    functools.partial(_sqlite_pragmas, sqlite_synchronous),
                )

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that commits on success and rolls back on error."""
        try:
            if self._write_lock is not None:
                async with self._write_lock, self.engine.begin() as conn:
                    yield conn
            else:
                async with self.engine.begin() as conn:
                    yield conn
        except (OperationalError, InterfaceError) as exc:
            if _is_unavailable(exc):
                raise Unavailable(f"database unavailable: {exc.orig}") from exc
            raise

    @asynccontextmanager
    async def read(self, *, snapshot: bool = True) -> AsyncIterator[AsyncConnection]:
        """A connection for reads. With ``snapshot`` its statements share one transaction
        (rolled back at the end); without, each statement stands alone (autocommit: no
        BEGIN or ROLLBACK round trips), for a read that is one statement."""
        engine = self.engine if snapshot else self._plain
        try:
            async with engine.connect() as conn:
                yield conn
        except (OperationalError, InterfaceError) as exc:
            if _is_unavailable(exc):
                raise Unavailable(f"database unavailable: {exc.orig}") from exc
            raise

    async def ping(self) -> None:
        async with self.read() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()
        await self._plain.dispose()


def _is_unavailable(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower()
    if "database is locked" in text:
        return False
    return exc.connection_invalidated or isinstance(exc, (OperationalError, InterfaceError))


def _sqlite_pragmas(synchronous: str, dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={synchronous}")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
