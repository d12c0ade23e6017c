"""Preference fields beyond the original design: web push and webhook switches, quiet-hours
break-through, digest hour and weekday, contact points.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notification_preferences") as batch:
        batch.add_column(
            sa.Column("webpush_enabled", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch.add_column(
            sa.Column("webhook_enabled", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch.add_column(
            sa.Column(
                "quiet_hours_high_breaks", sa.Boolean(), server_default=sa.true(), nullable=False
            )
        )
        batch.add_column(
            sa.Column("digest_hour", sa.SmallInteger(), server_default="9", nullable=False)
        )
        batch.add_column(
            sa.Column("digest_weekday", sa.SmallInteger(), server_default="1", nullable=False)
        )
        batch.add_column(sa.Column("email_address", sa.String(254), nullable=True))
        batch.add_column(sa.Column("phone", sa.String(16), nullable=True))
        batch.add_column(sa.Column("webhook_url", sa.String(2048), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notification_preferences") as batch:
        for column in (
            "webhook_url",
            "phone",
            "email_address",
            "digest_weekday",
            "digest_hour",
            "quiet_hours_high_breaks",
            "webhook_enabled",
            "webpush_enabled",
        ):
            batch.drop_column(column)
