"""Many rows into one table inside an open transaction: ``COPY … FROM STDIN`` on
PostgreSQL, an ``executemany`` INSERT elsewhere (:func:`insert_rows`); many rows of one
table updated, each with its own values, in one statement on PostgreSQL
(:func:`update_many`); many rows inserted where they are new, answering which were
(:func:`insert_new`).

COPY sends the rows as one stream the server parses itself: none of the per-row parameter
processing of an INSERT, which was the router's largest statement (six decision rows per
notification). Columns left out get their server defaults, as with an INSERT.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from notify_core import fastjson
from notify_core.errors import Unavailable


async def insert_rows(
    conn: AsyncConnection, table: sa.Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert ``rows`` (each with the same keys: column names) into ``table`` on ``conn``,
    within its transaction."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        await conn.execute(table.insert(), list(rows))
        return
    import psycopg

    columns = list(rows[0])
    json_columns = {c for c in columns if isinstance(table.c[c].type, sa.JSON)}
    raw = await conn.get_raw_connection()
    driver: psycopg.AsyncConnection[Any] = raw.driver_connection  # type: ignore[assignment]
    names = ", ".join(f'"{c}"' for c in columns)
    try:
        async with (
            driver.cursor() as cursor,
            cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy,
        ):
            for row in rows:
                await copy.write_row([_value(row[c], c in json_columns) for c in columns])
    except psycopg.OperationalError as exc:
        raise Unavailable(f"database unavailable: {exc}") from exc


def _value(value: Any, is_json: bool) -> Any:
    if value is None:
        return None
    if is_json:
        return fastjson.dumps(value).decode()
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given; Notify stores aware UTC timestamps")
        return value.astimezone(UTC)
    return value


async def update_many(
    conn: AsyncConnection,
    table: sa.Table,
    key: str,
    rows: Sequence[Mapping[str, Any]],
    where: sa.ColumnElement[bool] | None = None,
    also: Mapping[str, Any] | None = None,
) -> None:
    """``UPDATE table SET … WHERE table.key = row[key]`` for every row (all with the same
    columns; ``also``: values the same for every row).

    On PostgreSQL one statement, joined with ``unnest`` of one array per column, and
    ``key = ANY(:keys)`` besides: that finds the rows through the key's index, so the join
    stays as small as the batch whatever the table's size (without it the planner hashed
    the whole table; one statement per row or per group costs three times as much). On
    SQLite one statement per row (executemany in process, where that is cheap)."""
    if not rows:
        return
    names = [c for c in rows[0] if c != key]
    if conn.dialect.name == "postgresql":
        arrays = {}
        for c in (key, *names):
            kind = postgresql.ARRAY(table.c[c].type)
            arrays[c] = sa.cast(sa.bindparam(f"a_{c}", [r[c] for r in rows], type_=kind), kind)
        v = sa.func.unnest(*arrays.values()).table_valued(key, *names).render_derived(name="v")
        stmt = (
            table.update()
            .where(table.c[key] == sa.any_(arrays[key]), table.c[key] == v.c[key])
            .values({c: v.c[c] for c in names} | dict(also or {}))
        )
        await conn.execute(stmt if where is None else stmt.where(where))
        return
    sets = {c: sa.bindparam(f"v_{c}") for c in names} | dict(also or {})
    stmt = table.update().where(table.c[key] == sa.bindparam(f"v_{key}")).values(sets)
    await conn.execute(
        stmt if where is None else stmt.where(where),
        [{f"v_{c}": r[c] for c in (key, *names)} for r in rows],
    )


async def insert_new(
    conn: AsyncConnection, table: sa.Table, key: str, rows: Sequence[Mapping[str, Any]]
) -> set[Any]:
    """Insert those of ``rows`` (each with the same keys, every column without a server
    default among them) that conflict with no row of ``table`` (any unique constraint),
    within the open transaction; answer the ``key`` of each row inserted.

    On PostgreSQL the rows go by ``COPY`` into a temporary table shaped like ``table``
    (emptied at commit), then one ``INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING``:
    a multi-row ``INSERT`` of 500 digests was one statement of 5,500 parameters, which
    psycopg spent more time on than the server. Elsewhere one ``INSERT … ON CONFLICT DO
    NOTHING RETURNING`` per row (executemany)."""
    if not rows:
        return set()
    if conn.dialect.name != "postgresql":
        stmt = sqlite.insert(table).on_conflict_do_nothing().returning(table.c[key])
        return {r[0] for r in await conn.execute(stmt, list(rows))}
    staging = _staging(table)
    await conn.exec_driver_sql(
        f'CREATE TEMPORARY TABLE IF NOT EXISTS "{staging.name}" '
        f'(LIKE "{table.name}" INCLUDING DEFAULTS) ON COMMIT DELETE ROWS'
    )
    await insert_rows(conn, staging, rows)
    names = ", ".join(f'"{c}"' for c in rows[0])
    result = await conn.exec_driver_sql(
        f'INSERT INTO "{table.name}" ({names}) SELECT {names} FROM "{staging.name}" '
        f'ON CONFLICT DO NOTHING RETURNING "{key}"'
    )
    return {r[0] for r in result}


_STAGING: dict[str, sa.Table] = {}


def _staging(table: sa.Table) -> sa.Table:
    """The temporary table :func:`insert_new` copies ``table``'s rows into (its columns
    and types: what :func:`insert_rows` reads)."""
    found = _STAGING.get(table.name)
    if found is None:
        columns = [sa.Column(c.name, c.type) for c in table.c]
        found = _STAGING[table.name] = sa.Table(f"_new_{table.name}", sa.MetaData(), *columns)
    return found
