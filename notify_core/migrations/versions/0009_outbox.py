"""The outbox: jobs staged in a transaction, published to RabbitMQ after the commit.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("queue", sa.String(100), nullable=False, comment="the namespaced queue name"),
        sa.Column("priority", sa.SmallInteger, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("message_id", sa.String(255)),
        sa.Column("delay", sa.Float, nullable=False, server_default="0", comment="seconds"),
        sa.Column("created_at", sa.Float, nullable=False, comment="epoch seconds"),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
    )
    op.create_index("idx_outbox_queue_created", "outbox", ["queue", "created_at"])


def downgrade() -> None:
    op.drop_index("idx_outbox_queue_created", table_name="outbox")
    op.drop_table("outbox")
