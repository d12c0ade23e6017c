"""Delivery state: attempts, dead letters, engagement counters, suppressed email addresses.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from notify_core.db.schema import UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notification_deliveries") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("dead_at", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("opens", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("clicks", sa.Integer(), server_default="0", nullable=False))
    op.create_index(
        "idx_deliveries_dead",
        "notification_deliveries",
        ["dead_at"],
        postgresql_where=sa.text("status = 'failed'"),
        sqlite_where=sa.text("status = 'failed'"),
    )
    op.create_table(
        "email_suppressions",
        sa.Column("address", sa.String(254), nullable=False),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("provider", sa.String(50), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("address", name="pk_email_suppressions"),
    )


def downgrade() -> None:
    op.drop_table("email_suppressions")
    op.drop_index("idx_deliveries_dead", table_name="notification_deliveries")
    with op.batch_alter_table("notification_deliveries") as batch:
        for column in ("clicks", "opens", "dead_at", "attempts"):
            batch.drop_column(column)
