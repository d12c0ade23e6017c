"""Phone suppressions: numbers SMS is not sent to (opted out, invalid, unreachable).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from notify_core.db.schema import UtcDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "phone_suppressions",
        sa.Column("number", sa.String(16), nullable=False, comment="E.164"),
        sa.Column("reason", sa.String(20), nullable=False, comment="opted_out or unreachable"),
        sa.Column("provider", sa.String(50), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("number", name="pk_phone_suppressions"),
    )


def downgrade() -> None:
    op.drop_table("phone_suppressions")
