"""Apply the Alembic migrations (``notify migrate``), or autogenerate a new one."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from notify_core.db.engine import sync_url

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", sync_url(database_url).replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database at ``database_url`` to ``revision``; safe to run repeatedly."""
    command.upgrade(alembic_config(database_url), revision)


def revision(database_url: str, message: str) -> None:
    """Autogenerate a migration from the difference between the schema and the database."""
    command.revision(alembic_config(database_url), message=message, autogenerate=True)
