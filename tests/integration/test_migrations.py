"""The migrations build exactly the schema the code declares (notify_core.db.schema), on
SQLite and on PostgreSQL: no table, column or index missing or extra on either side."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from notify_core.db.migrate import upgrade
from notify_core.db.schema import metadata


def _differences(url: str) -> list[Any]:
    """What autogenerate would change, less what it cannot see through: column comments
    (documentation only) and indexes on expressions such as ``created_at DESC``, which it
    reports as removed and added under the same name."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": False, "compare_server_default": False}
            )
            found = list(compare_metadata(context, metadata))
    finally:
        engine.dispose()
    flat = [d for group in found for d in (group if isinstance(group, list) else [group])]
    flat = [d for d in flat if d[0] != "modify_comment"]
    added = {d[1].name for d in flat if d[0] == "add_index"}
    removed = {d[1].name for d in flat if d[0] == "remove_index"}
    same = added & removed
    return [d for d in flat if not (d[0] in ("add_index", "remove_index") and d[1].name in same)]


def test_sqlite_migrations_match_the_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    assert _differences(url) == []


def test_postgres_migrations_match_the_schema(postgres_url: str) -> None:
    name = f"notify_mig_{uuid.uuid4().hex[:8]}"
    admin = postgres_url.rsplit("/", 1)[0].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = postgres_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        assert _differences(url) == []
    finally:
        with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
