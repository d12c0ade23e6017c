"""The index a resume reads: a user's inbox in the order it was filled.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "idx_notifications_inbox_routed",
        "notifications",
        ["user_id", "routed_at", "id"],
        postgresql_where=sa.text("inbox = true"),
        sqlite_where=sa.text("inbox = 1"),
    )


def downgrade() -> None:
    op.drop_index("idx_notifications_inbox_routed", table_name="notifications")
