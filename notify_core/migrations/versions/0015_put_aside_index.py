"""The put-aside emails' index covers only those no digest carries yet.

A put-aside email (``digested``) is now written once, when a digest takes it (its
``digest_id``); it stays ``digested`` and reads ``digest_sent`` through its digest once
that is sent. The partial index a run reads the put-aside emails by
(``idx_deliveries_digested``) would otherwise keep every email ever digested: it now
holds those with no digest, and a row leaves it when a digest takes it.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_NAME = "idx_deliveries_digested"
_TABLE = "notification_deliveries"


def _create(where: str) -> None:
    op.create_index(
        _NAME,
        _TABLE,
        ["notification_id"],
        postgresql_where=sa.text(where),
        sqlite_where=sa.text(where),
    )


def upgrade() -> None:
    op.drop_index(_NAME, table_name=_TABLE)
    _create("status = 'digested' AND digest_id IS NULL")


def downgrade() -> None:
    op.drop_index(_NAME, table_name=_TABLE)
    _create("status = 'digested'")
