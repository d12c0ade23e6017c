"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24 02:16:15.171675
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import notify_core.db.schema

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    _create_device_tokens()
    _create_notification_preferences()
    _create_notification_templates()
    _create_notifications()
    _create_queue_jobs()
    _create_notification_aggregations()
    _create_notification_deliveries()


def _create_device_tokens() -> None:
    op.create_table(
        "device_tokens",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("platform", sa.String(length=20), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("device_id", sa.String(length=255), nullable=True),
        sa.Column("device_name", sa.String(length=255), nullable=True),
        sa.Column("last_used_at", notify_core.db.schema.UtcDateTime(timezone=True), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", notify_core.db.schema.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_tokens")),
    )
    with op.batch_alter_table("device_tokens", schema=None) as batch_op:
        batch_op.create_index("idx_device_tokens_platform", ["platform", "active"], unique=False)
        batch_op.create_index(
            "idx_device_tokens_token",
            ["token"],
            unique=True,
            postgresql_where=sa.text("active = true"),
            sqlite_where=sa.text("active = 1"),
        )
        batch_op.create_index("idx_device_tokens_user", ["user_id"], unique=False)


def _create_notification_preferences() -> None:
    op.create_table(
        "notification_preferences",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("email_enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("push_enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("sms_enabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("inapp_enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("digest_enabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("digest_frequency", sa.String(length=20), server_default="daily", nullable=False),
        sa.Column("quiet_hours_start", sa.Time(), nullable=True),
        sa.Column("quiet_hours_end", sa.Time(), nullable=True),
        sa.Column("timezone", sa.String(length=50), server_default="UTC", nullable=False),
        sa.Column(
            "preferences",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_at", notify_core.db.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", notify_core.db.schema.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_preferences")),
        sa.UniqueConstraint("user_id", name=op.f("uq_notification_preferences_user_id")),
    )


def _create_notification_templates() -> None:
    op.create_table(
        "notification_templates",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("type", sa.String(length=50), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("locale", sa.String(length=10), server_default="en", nullable=True),
        sa.Column(
            "variables",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", notify_core.db.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", notify_core.db.schema.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_templates")),
        sa.UniqueConstraint("name", name=op.f("uq_notification_templates_name")),
    )
    with op.batch_alter_table("notification_templates", schema=None) as batch_op:
        batch_op.create_index("idx_templates_locale", ["locale", "active"], unique=False)
        batch_op.create_index("idx_templates_name_type", ["name", "type"], unique=False)


def _create_notifications() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=50), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("priority", sa.String(length=20), server_default="normal", nullable=False),
        sa.Column("read", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("read_at", notify_core.db.schema.UtcDateTime(timezone=True), nullable=True),
        sa.Column("clicked", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("clicked_at", notify_core.db.schema.UtcDateTime(timezone=True), nullable=True),
        sa.Column("created_at", notify_core.db.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", notify_core.db.schema.UtcDateTime(timezone=True), nullable=True),
        sa.Column(
            "channels",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
            comment="channels the producer asked for; null = any",
        ),
        sa.Column("template", sa.String(length=100), nullable=True),
        sa.Column("locale", sa.String(length=35), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column(
            "state",
            sa.String(length=16),
            server_default="accepted",
            nullable=False,
            comment="accepted (durable, not yet routed) -> routed",
        ),
        sa.Column("routed_at", notify_core.db.schema.UtcDateTime(timezone=True), nullable=True),
        sa.Column(
            "inbox",
            sa.Boolean(),
            server_default=sa.false(),
            nullable=False,
            comment="true once the router put it in the user's in-app inbox",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(
            "idx_notifications_accepted",
            ["created_at"],
            unique=False,
            postgresql_where=sa.text("state = 'accepted'"),
            sqlite_where=sa.text("state = 'accepted'"),
        )
        batch_op.create_index(
            "idx_notifications_expires",
            ["expires_at"],
            unique=False,
            postgresql_where=sa.text("expires_at IS NOT NULL"),
            sqlite_where=sa.text("expires_at IS NOT NULL"),
        )
        batch_op.create_index("idx_notifications_type", ["type"], unique=False)
        batch_op.create_index(
            "idx_notifications_user", ["user_id", sa.text("created_at DESC")], unique=False
        )
        batch_op.create_index(
            "idx_notifications_unread",
            ["user_id", "read"],
            unique=False,
            postgresql_where=sa.text("read = false"),
            sqlite_where=sa.text("read = 0"),
        )
        batch_op.create_index(
            "uq_notifications_idempotency",
            ["user_id", "idempotency_key"],
            unique=True,
            postgresql_where=sa.text("idempotency_key IS NOT NULL"),
            sqlite_where=sa.text("idempotency_key IS NOT NULL"),
        )


def _create_queue_jobs() -> None:
    op.create_table(
        "queue_jobs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("queue", sa.String(length=100), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        sa.Column(
            "lease_until", sa.Float(), nullable=True, comment="epoch seconds; null or past = ready"
        ),
        sa.Column("deliveries", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_jobs")),
    )
    op.create_index(
        "idx_queue_jobs_ready",
        "queue_jobs",
        ["queue", sa.text("priority DESC"), "id"],
        unique=False,
    )


def _create_notification_aggregations() -> None:
    op.create_table(
        "notification_aggregations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=50), nullable=False),
        sa.Column("count", sa.Integer(), server_default="1", nullable=False),
        sa.Column("last_notification_id", sa.String(length=36), nullable=True),
        sa.Column("aggregated_at", notify_core.db.schema.UtcDateTime(timezone=True), nullable=True),
        sa.Column("sent", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("sent_at", notify_core.db.schema.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["last_notification_id"],
            ["notifications.id"],
            name=op.f("fk_notification_aggregations_last_notification_id_notifications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_aggregations")),
    )
    with op.batch_alter_table("notification_aggregations", schema=None) as batch_op:
        batch_op.create_index("idx_aggregations_type", ["type", "aggregated_at"], unique=False)
        batch_op.create_index("idx_aggregations_user", ["user_id", "sent"], unique=False)


def _create_notification_deliveries() -> None:
    op.create_table(
        "notification_deliveries",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("notification_id", sa.String(length=36), nullable=True),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("provider", sa.String(length=50), nullable=True),
        sa.Column("provider_message_id", sa.String(length=255), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("sent_at", notify_core.db.schema.UtcDateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", notify_core.db.schema.UtcDateTime(timezone=True), nullable=True),
        sa.Column("opened_at", notify_core.db.schema.UtcDateTime(timezone=True), nullable=True),
        sa.Column("clicked_at", notify_core.db.schema.UtcDateTime(timezone=True), nullable=True),
        sa.Column("created_at", notify_core.db.schema.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name=op.f("fk_notification_deliveries_notification_id_notifications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_deliveries")),
    )
    with op.batch_alter_table("notification_deliveries", schema=None) as batch_op:
        batch_op.create_index("idx_deliveries_notification", ["notification_id"], unique=False)
        batch_op.create_index("idx_deliveries_provider_id", ["provider_message_id"], unique=False)
        batch_op.create_index("idx_deliveries_status", ["status", "channel"], unique=False)


def downgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table("notification_deliveries", schema=None) as batch_op:
        batch_op.drop_index("idx_deliveries_status")
        batch_op.drop_index("idx_deliveries_provider_id")
        batch_op.drop_index("idx_deliveries_notification")

    op.drop_table("notification_deliveries")
    with op.batch_alter_table("notification_aggregations", schema=None) as batch_op:
        batch_op.drop_index("idx_aggregations_user")
        batch_op.drop_index("idx_aggregations_type")

    op.drop_table("notification_aggregations")
    op.drop_index("idx_queue_jobs_ready", table_name="queue_jobs")
    op.drop_table("queue_jobs")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_notifications_idempotency",
            postgresql_where=sa.text("idempotency_key IS NOT NULL"),
            sqlite_where=sa.text("idempotency_key IS NOT NULL"),
        )
        batch_op.drop_index(
            "idx_notifications_unread",
            postgresql_where=sa.text("read = false"),
            sqlite_where=sa.text("read = 0"),
        )
        batch_op.drop_index("idx_notifications_type")
        batch_op.drop_index(
            "idx_notifications_expires",
            postgresql_where=sa.text("expires_at IS NOT NULL"),
            sqlite_where=sa.text("expires_at IS NOT NULL"),
        )
        batch_op.drop_index(
            "idx_notifications_accepted",
            postgresql_where=sa.text("state = 'accepted'"),
            sqlite_where=sa.text("state = 'accepted'"),
        )

    op.drop_table("notifications")
    with op.batch_alter_table("notification_templates", schema=None) as batch_op:
        batch_op.drop_index("idx_templates_name_type")
        batch_op.drop_index("idx_templates_locale")

    op.drop_table("notification_templates")
    op.drop_table("notification_preferences")
    with op.batch_alter_table("device_tokens", schema=None) as batch_op:
        batch_op.drop_index("idx_device_tokens_user")
        batch_op.drop_index(
            "idx_device_tokens_token",
            postgresql_where=sa.text("active = true"),
            sqlite_where=sa.text("active = 1"),
        )
        batch_op.drop_index("idx_device_tokens_platform")

    op.drop_table("device_tokens")
    # ### end Alembic commands ###
