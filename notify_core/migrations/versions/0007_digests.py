"""Digests: schedules, one digest per user and period, runs, leases; the digest that carried
each put-aside email.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from notify_core.db.schema import JSONType, UtcDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _add_delivery_digest_id()
    _create_digest_schedules()
    _create_digests()
    _create_digest_runs()
    _create_leases()


def _add_delivery_digest_id() -> None:
    with op.batch_alter_table("notification_deliveries") as batch:
        batch.add_column(
            sa.Column("digest_id", sa.String(36), comment="the digest that carried it (digests.id)")
        )
    op.create_index(
        "idx_deliveries_digested",
        "notification_deliveries",
        ["notification_id"],
        postgresql_where=sa.text("status = 'digested'"),
        sqlite_where=sa.text("status = 'digested'"),
    )


def _create_digest_schedules() -> None:
    op.create_table(
        "digest_schedules",
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column(
            "next_at", UtcDateTime(), nullable=False, comment="due from then (a slot, or a retry)"
        ),
        sa.Column(
            "synced_at",
            UtcDateTime(),
            nullable=False,
            comment="the preferences' updated_at it was computed from",
        ),
        sa.PrimaryKeyConstraint("user_id", name="pk_digest_schedules"),
    )
    op.create_index("idx_digest_schedules_next", "digest_schedules", ["next_at"])


def _create_digests() -> None:
    op.create_table(
        "digests",
        sa.Column("id", sa.String(36), nullable=False, comment="uuid5 of user and period"),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column(
            "period_key", sa.String(32), nullable=False, comment="daily:DATE, weekly:YYYY-Www"
        ),
        sa.Column("status", sa.String(16), nullable=False, comment="sent or failed"),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("message_id", sa.String(255)),
        sa.Column("provider", sa.String(50)),
        sa.Column("provider_message_id", sa.String(255)),
        sa.Column("error", sa.Text()),
        sa.Column("slot_at", UtcDateTime(), nullable=False, comment="the scheduled instant"),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_digests"),
        sa.UniqueConstraint("user_id", "period_key", name="uq_digests_user_id_period_key"),
    )


def _create_digest_runs() -> None:
    op.create_table(
        "digest_runs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False, comment="schedule or manual"),
        sa.Column(
            "status",
            sa.String(16),
            nullable=False,
            comment="queued, running, succeeded, failed",
        ),
        sa.Column("as_of", UtcDateTime(), nullable=False, comment="the run's clock"),
        sa.Column("holder", sa.String(255), comment="the node running it"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("due", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("processed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("sent", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("skipped", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("items", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("skipped_by_reason", JSONType),
        sa.Column("failed_by_reason", JSONType),
        sa.Column("timings", JSONType, comment="seconds: query, render, send, record"),
        sa.Column("error", sa.Text()),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("started_at", UtcDateTime()),
        sa.Column("finished_at", UtcDateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_digest_runs"),
    )
    op.create_index("idx_digest_runs_status", "digest_runs", ["status", "created_at"])
    op.create_index("idx_digest_runs_created", "digest_runs", ["created_at"])


def _create_leases() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_leases"),
    )


def downgrade() -> None:
    op.drop_table("leases")
    op.drop_index("idx_digest_runs_created", table_name="digest_runs")
    op.drop_index("idx_digest_runs_status", table_name="digest_runs")
    op.drop_table("digest_runs")
    op.drop_table("digests")
    op.drop_index("idx_digest_schedules_next", table_name="digest_schedules")
    op.drop_table("digest_schedules")
    op.drop_index("idx_deliveries_digested", table_name="notification_deliveries")
    with op.batch_alter_table("notification_deliveries") as batch:
        batch.drop_column("digest_id")
