"""Digests are sent by the delivery worker: the rendered message, attempts, lease or next
try, recipient, sent and dead times on each ``digests`` row; the put-aside emails a digest
carries found by its id.

A run now writes the digest ``pending`` with its message and stages its job; the worker
claims it (``sending`` with a lease), and records ``sent``, ``retrying`` or ``failed``, as
it does for a notification delivery. Rows written before (``sent``, ``failed``) keep their
status and have no message.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from notify_core.db.schema import JSONType, UtcDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("digests") as batch:
        batch.add_column(
            sa.Column("message", JSONType, comment="the rendered email, as the run composed it")
        )
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column(
                "hold_until",
                UtcDateTime(),
                comment="sending: end of the lease; retrying: next try",
            )
        )
        batch.add_column(
            sa.Column("recipient", sa.String(254), comment="the address it was sent to")
        )
        batch.add_column(sa.Column("sent_at", UtcDateTime()))
        batch.add_column(
            sa.Column("dead_at", UtcDateTime(), comment="when the last try failed (dead letter)")
        )
    op.create_index(
        "idx_deliveries_digest_id",
        "notification_deliveries",
        ["digest_id"],
        postgresql_where=sa.text("digest_id IS NOT NULL"),
        sqlite_where=sa.text("digest_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("idx_deliveries_digest_id", table_name="notification_deliveries")
    with op.batch_alter_table("digests") as batch:
        for column in ("dead_at", "sent_at", "recipient", "hold_until", "attempts", "message"):
            batch.drop_column(column)
