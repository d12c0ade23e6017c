"""Many rows into one table inside an open transaction: ``COPY … FROM STDIN`` on
PostgreSQL, an ``executemany`` INSERT elsewhere.

COPY sends the rows as one stream the server parses itself: none of the per-row parameter
processing of an INSERT, which was the router's largest statement (six decision rows per
notification). Columns left out get their server defaults, as with an INSERT.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
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
