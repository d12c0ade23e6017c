"""Routing state: dedup group keys and counts, scheduled sends, held deliveries, topics.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from notify_core.db.schema import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("group_key", sa.String(255), nullable=True))
        batch.add_column(sa.Column("send_at", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("count", sa.Integer(), server_default="1", nullable=False))
    op.create_index(
        "idx_notifications_scheduled",
        "notifications",
        ["send_at"],
        postgresql_where=sa.text("state = 'scheduled'"),
        sqlite_where=sa.text("state = 'scheduled'"),
    )
    op.create_index(
        "idx_notifications_group",
        "notifications",
        ["user_id", "type", "group_key", "created_at"],
    )
    with op.batch_alter_table("notification_deliveries") as batch:
        batch.add_column(sa.Column("hold_until", UtcDateTime(), nullable=True))
    op.create_index(
        "idx_deliveries_held",
        "notification_deliveries",
        ["hold_until"],
        postgresql_where=sa.text("status = 'held'"),
        sqlite_where=sa.text("status = 'held'"),
    )
    op.create_table(
        "topic_subscriptions",
        sa.Column("topic", sa.String(100), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("topic", "user_id", name="pk_topic_subscriptions"),
    )
    op.create_index("idx_topic_subscriptions_user", "topic_subscriptions", ["user_id"])
    op.create_table(
        "topic_sends",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("topic", sa.String(100), nullable=False),
        sa.Column(
            "request", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("cursor", sa.String(255), nullable=True),
        sa.Column("fanned_out", sa.Integer(), server_default="0", nullable=False),
        sa.Column("state", sa.String(16), server_default="pending", nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_topic_sends"),
    )
    op.create_index(
        "idx_topic_sends_pending",
        "topic_sends",
        ["updated_at"],
        postgresql_where=sa.text("state = 'pending'"),
        sqlite_where=sa.text("state = 'pending'"),
    )
    op.create_index(
        "uq_topic_sends_idempotency",
        "topic_sends",
        ["topic", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
        sqlite_where=sa.text("idempotency_key IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_table("topic_sends")
    op.drop_table("topic_subscriptions")
    op.drop_index("idx_deliveries_held", table_name="notification_deliveries")
    with op.batch_alter_table("notification_deliveries") as batch:
        batch.drop_column("hold_until")
    op.drop_index("idx_notifications_group", table_name="notifications")
    op.drop_index("idx_notifications_scheduled", table_name="notifications")
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("count")
        batch.drop_column("send_at")
        batch.drop_column("group_key")
