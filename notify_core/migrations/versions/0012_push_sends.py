"""Per-device push sends, and why a device was deactivated.

One push delivery of a user with three devices is three sends: ``push_sends`` holds one
row per (delivery, device) with its own status and provider id. A device deactivated by a
provider (or for not being used) keeps the reason and the time.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from notify_core.db.schema import UtcDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "push_sends",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("delivery_id", sa.String(36), nullable=False),
        sa.Column("device_id", sa.String(36), nullable=False),
        sa.Column("platform", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("provider", sa.String(50), nullable=False),
        sa.Column("provider_message_id", sa.String(255)),
        sa.Column("error_message", sa.Text()),
        sa.Column("attempts", sa.Integer(), server_default="1", nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_push_sends"),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["notification_deliveries.id"],
            name="fk_push_sends_delivery_id_notification_deliveries",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["device_tokens.id"],
            name="fk_push_sends_device_id_device_tokens",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("delivery_id", "device_id", name="uq_push_sends_delivery_id_device_id"),
    )
    op.create_index("idx_push_sends_device", "push_sends", ["device_id"])
    with op.batch_alter_table("device_tokens") as batch:
        batch.add_column(sa.Column("deactivated_at", UtcDateTime()))
        batch.add_column(sa.Column("deactivated_reason", sa.Text()))


def downgrade() -> None:
    with op.batch_alter_table("device_tokens") as batch:
        batch.drop_column("deactivated_reason")
        batch.drop_column("deactivated_at")
    op.drop_index("idx_push_sends_device", table_name="push_sends")
    op.drop_table("push_sends")
