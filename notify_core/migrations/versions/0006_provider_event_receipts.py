"""Provider event receipts: the webhook events already applied, for idempotency.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from notify_core.db.schema import UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "provider_event_receipts",
        sa.Column("key", sa.String(64), nullable=False, comment="sha256 of provider, id, ..."),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_provider_event_receipts"),
    )
    op.create_index(
        "idx_provider_event_receipts_received", "provider_event_receipts", ["received_at"]
    )


def downgrade() -> None:
    op.drop_index("idx_provider_event_receipts_received", table_name="provider_event_receipts")
    op.drop_table("provider_event_receipts")
