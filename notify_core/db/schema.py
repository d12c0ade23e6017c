"""The relational schema (SQLAlchemy Core), shared by every service and by the migrations.

It follows the original design's tables with user ids as external strings (Notify does not
own users). Two additions: ``notifications.state``/``inbox``/``idempotency_key`` (ingest and
router bookkeeping) and ``queue_jobs`` (the embedded work queue).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Timestamps stored in UTC and always returned timezone-aware (SQLite keeps none)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; Notify stores aware UTC timestamps")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


def _uuid_pk() -> sa.Column[Any]:
    return sa.Column("id", sa.String(36), primary_key=True, default=new_id)


notifications = sa.Table(
    "notifications",
    metadata,
    _uuid_pk(),
    sa.Column("user_id", sa.String(255), nullable=False),
    sa.Column("type", sa.String(50), nullable=False),
    sa.Column("title", sa.String(255), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("data", JSONType),
    sa.Column("priority", sa.String(20), nullable=False, server_default="normal"),
    sa.Column("read", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("read_at", UtcDateTime),
    sa.Column("clicked", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("clicked_at", UtcDateTime),
    sa.Column("created_at", UtcDateTime, nullable=False, default=utcnow),
    sa.Column("expires_at", UtcDateTime),
    # -- bookkeeping beyond the original design ------------------------------------------
    sa.Column("channels", JSONType, comment="channels the producer asked for; null = any"),
    sa.Column("template", sa.String(100)),
    sa.Column("locale", sa.String(35)),
    sa.Column("idempotency_key", sa.String(255)),
    sa.Column(
        "state",
        sa.String(16),
        nullable=False,
        server_default="accepted",
        comment="scheduled (send_at ahead) -> accepted (durable, not yet routed) -> routed",
    ),
    sa.Column("routed_at", UtcDateTime),
    sa.Column(
        "inbox",
        sa.Boolean,
        nullable=False,
        server_default=sa.false(),
        comment="true once the router put it in the user's in-app inbox",
    ),
    sa.Column("group_key", sa.String(255), comment="the producer's group key; null = never merged"),
    sa.Column("send_at", UtcDateTime, comment="scheduled send; routed once due"),
    sa.Column(
        "count",
        sa.Integer,
        nullable=False,
        server_default="1",
        comment="sends of the same group key merged into this one, itself included",
    ),
    sa.Index("idx_notifications_user", "user_id", sa.text("created_at DESC")),
    sa.Index(
        "idx_notifications_unread",
        "user_id",
        "read",
        postgresql_where=sa.text("read = false"),
        sqlite_where=sa.text("read = 0"),
    ),
    sa.Index("idx_notifications_type", "type"),
    sa.Index(
        "idx_notifications_expires",
        "expires_at",
        postgresql_where=sa.text("expires_at IS NOT NULL"),
        sqlite_where=sa.text("expires_at IS NOT NULL"),
    ),
    sa.Index(
        "uq_notifications_idempotency",
        "user_id",
        "idempotency_key",
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
        sqlite_where=sa.text("idempotency_key IS NOT NULL"),
    ),
    sa.Index(
        "idx_notifications_accepted",
        "created_at",
        postgresql_where=sa.text("state = 'accepted'"),
        sqlite_where=sa.text("state = 'accepted'"),
    ),
    sa.Index(
        "idx_notifications_scheduled",
        "send_at",
        postgresql_where=sa.text("state = 'scheduled'"),
        sqlite_where=sa.text("state = 'scheduled'"),
    ),
    sa.Index("idx_notifications_group", "user_id", "type", "group_key", "created_at"),
    sa.Index(
        "idx_notifications_inbox_routed",
        "user_id",
        "routed_at",
        "id",
        postgresql_where=sa.text("inbox = true"),
        sqlite_where=sa.text("inbox = 1"),
    ),
)

notification_preferences = sa.Table(
    "notification_preferences",
    metadata,
    _uuid_pk(),
    sa.Column("user_id", sa.String(255), nullable=False, unique=True),
    sa.Column("email_enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("push_enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("sms_enabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("inapp_enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("digest_enabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("digest_frequency", sa.String(20), nullable=False, server_default="daily"),
    sa.Column("quiet_hours_start", sa.Time),
    sa.Column("quiet_hours_end", sa.Time),
    sa.Column("timezone", sa.String(50), nullable=False, server_default="UTC"),
    sa.Column("preferences", JSONType, comment="per-type overrides: {type: {channel: bool}}"),
    sa.Column("created_at", UtcDateTime, nullable=False, default=utcnow),
    sa.Column("updated_at", UtcDateTime, nullable=False, default=utcnow, onupdate=utcnow),
    # -- beyond the original design ------------------------------------------------------
    sa.Column("webpush_enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("webhook_enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("quiet_hours_high_breaks", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("digest_hour", sa.SmallInteger, nullable=False, server_default="9"),
    sa.Column("digest_weekday", sa.SmallInteger, nullable=False, server_default="1"),
    sa.Column("email_address", sa.String(254)),
    sa.Column("phone", sa.String(16)),
    sa.Column("webhook_url", sa.String(2048)),
)

device_tokens = sa.Table(
    "device_tokens",
    metadata,
    _uuid_pk(),
    sa.Column("user_id", sa.String(255), nullable=False),
    sa.Column("platform", sa.String(20), nullable=False),
    sa.Column("token", sa.Text, nullable=False),
    sa.Column("device_id", sa.String(255)),
    sa.Column("device_name", sa.String(255)),
    sa.Column("last_used_at", UtcDateTime, default=utcnow),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", UtcDateTime, nullable=False, default=utcnow),
    sa.Column("deactivated_at", UtcDateTime),
    sa.Column(
        "deactivated_reason",
        sa.Text,
        comment="why it stopped: the provider's answer, unused too long, unregistered",
    ),
    sa.Index("idx_device_tokens_user", "user_id"),
    sa.Index("idx_device_tokens_platform", "platform", "active"),
    sa.Index(
        "idx_device_tokens_token",
        "token",
        unique=True,
        postgresql_where=sa.text("active = true"),
        sqlite_where=sa.text("active = 1"),
    ),
)

push_sends = sa.Table(
    "push_sends",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True, comment="the send id (APNs apns-id)"),
    sa.Column(
        "delivery_id",
        sa.String(36),
        sa.ForeignKey("notification_deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column(
        "device_id",
        sa.String(36),
        sa.ForeignKey("device_tokens.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("platform", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False, comment="sent, retrying or failed"),
    sa.Column("provider", sa.String(50), nullable=False),
    sa.Column("provider_message_id", sa.String(255)),
    sa.Column("error_message", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
    sa.Column("updated_at", UtcDateTime, nullable=False, default=utcnow),
    sa.UniqueConstraint("delivery_id", "device_id"),
    sa.Index("idx_push_sends_device", "device_id"),
)

notification_deliveries = sa.Table(
    "notification_deliveries",
    metadata,
    _uuid_pk(),
    sa.Column(
        "notification_id",
        sa.String(36),
        sa.ForeignKey("notifications.id", ondelete="CASCADE"),
    ),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("provider", sa.String(50)),
    sa.Column("provider_message_id", sa.String(255)),
    sa.Column("error_message", sa.Text),
    sa.Column("metadata", JSONType),
    sa.Column("sent_at", UtcDateTime),
    sa.Column("delivered_at", UtcDateTime),
    sa.Column("opened_at", UtcDateTime),
    sa.Column("clicked_at", UtcDateTime),
    sa.Column("created_at", UtcDateTime, nullable=False, default=utcnow),
    # -- beyond the original design ------------------------------------------------------
    sa.Column("hold_until", UtcDateTime, comment="status held: when to look again"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("dead_at", UtcDateTime, comment="when the last try failed (dead letter)"),
    sa.Column("opens", sa.Integer, nullable=False, server_default="0"),
    sa.Column("clicks", sa.Integer, nullable=False, server_default="0"),
    sa.Column(
        "digest_id",
        sa.String(36),
        comment="the digest carrying it (digests.id): set when queued, kept once sent",
    ),
    sa.Column(
        "recipient",
        sa.String(254),
        comment="email: the address it was sent to; provider events suppress only this one",
    ),
    sa.Index("idx_deliveries_notification", "notification_id"),
    sa.Index(
        "idx_deliveries_digest_id",
        "digest_id",
        postgresql_where=sa.text("digest_id IS NOT NULL"),
        sqlite_where=sa.text("digest_id IS NOT NULL"),
    ),
    sa.Index(
        "idx_deliveries_digested",
        "notification_id",
        postgresql_where=sa.text("status = 'digested' AND digest_id IS NULL"),
        sqlite_where=sa.text("status = 'digested' AND digest_id IS NULL"),
    ),
    sa.Index(
        "idx_deliveries_dead",
        "dead_at",
        postgresql_where=sa.text("status = 'failed'"),
        sqlite_where=sa.text("status = 'failed'"),
    ),
    sa.Index(
        "idx_deliveries_held",
        "hold_until",
        postgresql_where=sa.text("status = 'held'"),
        sqlite_where=sa.text("status = 'held'"),
    ),
    sa.Index("idx_deliveries_status", "status", "channel"),
    sa.Index("idx_deliveries_provider_id", "provider_message_id"),
)

notification_templates = sa.Table(
    "notification_templates",
    metadata,
    _uuid_pk(),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("type", sa.String(50), nullable=False),
    sa.Column("subject", sa.String(255)),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("locale", sa.String(10), server_default="en"),
    sa.Column("variables", JSONType),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("created_at", UtcDateTime, nullable=False, default=utcnow),
    sa.Column("updated_at", UtcDateTime, nullable=False, default=utcnow, onupdate=utcnow),
    sa.Index("idx_templates_name_type", "name", "type"),
    sa.Index("idx_templates_locale", "locale", "active"),
)

# The templates TemplateService serves (``notification_templates`` above, from the original
# design, is unused: one row per unique name, no channel, no kept versions).
template_versions = sa.Table(
    "template_versions",
    metadata,
    _uuid_pk(),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("channel", sa.String(20), nullable=False, comment="a channel, or 'layout'"),
    sa.Column("locale", sa.String(35), nullable=False, comment="BCP 47; '' = the default"),
    sa.Column(
        "version", sa.Integer, nullable=False, comment="1, 2, ... per name x channel x locale"
    ),
    sa.Column("subject", sa.Text),
    sa.Column("body", sa.Text, nullable=False, comment="HTML for email and layouts, else text"),
    sa.Column("layout", sa.String(100), comment="email only: the layout it extends"),
    sa.Column("variables", JSONType, comment="declared variable names; null = not declared"),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", UtcDateTime, nullable=False, default=utcnow),
    sa.UniqueConstraint("name", "channel", "locale", "version"),
)

notification_aggregations = sa.Table(
    "notification_aggregations",
    metadata,
    _uuid_pk(),
    sa.Column("user_id", sa.String(255), nullable=False),
    sa.Column("type", sa.String(50), nullable=False),
    sa.Column("count", sa.Integer, nullable=False, server_default="1"),
    sa.Column("last_notification_id", sa.String(36), sa.ForeignKey("notifications.id")),
    sa.Column("aggregated_at", UtcDateTime, default=utcnow),
    sa.Column("sent", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("sent_at", UtcDateTime),
    sa.Index("idx_aggregations_user", "user_id", "sent"),
    sa.Index("idx_aggregations_type", "type", "aggregated_at"),
)

email_suppressions = sa.Table(
    "email_suppressions",
    metadata,
    sa.Column("address", sa.String(254), primary_key=True, comment="lower-cased"),
    sa.Column("reason", sa.String(20), nullable=False, comment="bounce or complaint"),
    sa.Column("provider", sa.String(50)),
    sa.Column("detail", sa.Text),
    sa.Column("created_at", UtcDateTime, nullable=False, default=utcnow),
)

# Phone numbers SMS is not sent to: opted out (STOP), invalid, not mobile, or reported
# unknown by the carrier.
phone_suppressions = sa.Table(
    "phone_suppressions",
    metadata,
    sa.Column("number", sa.String(16), primary_key=True, comment="E.164"),
    sa.Column("reason", sa.String(20), nullable=False, comment="opted_out or unreachable"),
    sa.Column("provider", sa.String(50)),
    sa.Column("detail", sa.Text),
    sa.Column("created_at", UtcDateTime, nullable=False, default=utcnow),
)

# Provider events (SendGrid sg_event_id, SNS MessageId) already applied, so a retried
# webhook post counts nothing twice; pruned after PROVIDER_EVENT_RECEIPT_DAYS.
provider_event_receipts = sa.Table(
    "provider_event_receipts",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True, comment="sha256 of provider, id, ..."),
    sa.Column("received_at", UtcDateTime, nullable=False, default=utcnow),
    sa.Index("idx_provider_event_receipts_received", "received_at"),
)

topic_subscriptions = sa.Table(
    "topic_subscriptions",
    metadata,
    sa.Column("topic", sa.String(100), primary_key=True),
    sa.Column("user_id", sa.String(255), primary_key=True),
    sa.Column("created_at", UtcDateTime, nullable=False, default=utcnow),
    sa.Index("idx_topic_subscriptions_user", "user_id"),
)

# Topics a producer configured; a topic without a row is private (and topics need no row
# to be subscribed to or sent to).
topics = sa.Table(
    "topics",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column(
        "public",
        sa.Boolean,
        nullable=False,
        server_default=sa.false(),
        comment="users may subscribe themselves",
    ),
    sa.Column("created_at", UtcDateTime, nullable=False, default=utcnow),
    sa.Column("updated_at", UtcDateTime, nullable=False, default=utcnow),
)

topic_sends = sa.Table(
    "topic_sends",
    metadata,
    _uuid_pk(),
    sa.Column("topic", sa.String(100), nullable=False),
    sa.Column("request", JSONType, nullable=False, comment="the send, less the recipients"),
    sa.Column("cursor", sa.String(255), comment="last subscriber fanned out to (user_id order)"),
    sa.Column("fanned_out", sa.Integer, nullable=False, server_default="0"),
    sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("idempotency_key", sa.String(255)),
    sa.Column("created_at", UtcDateTime, nullable=False, default=utcnow),
    sa.Column("updated_at", UtcDateTime, nullable=False, default=utcnow),
    sa.Index(
        "idx_topic_sends_pending",
        "updated_at",
        postgresql_where=sa.text("state = 'pending'"),
        sqlite_where=sa.text("state = 'pending'"),
    ),
    sa.Index(
        "uq_topic_sends_idempotency",
        "topic",
        "idempotency_key",
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
        sqlite_where=sa.text("idempotency_key IS NOT NULL"),
    ),
)

queue_jobs = sa.Table(
    "queue_jobs",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("queue", sa.String(100), nullable=False),
    sa.Column("priority", sa.SmallInteger, nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("message_id", sa.String(255)),
    sa.Column("lease_until", sa.Float, comment="epoch seconds; null or past = ready"),
    sa.Column("deliveries", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("idx_queue_jobs_ready", "queue", sa.text("priority DESC"), "id"),
)

# The outbox: jobs staged in a service's transaction, published to RabbitMQ after it
# commits (notify_core/queue/outbox.py). Empty when the queue lives in the database.
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("queue", sa.String(100), nullable=False, comment="the namespaced queue name"),
    sa.Column("priority", sa.SmallInteger, nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("message_id", sa.String(255)),
    sa.Column("delay", sa.Float, nullable=False, server_default="0", comment="seconds"),
    sa.Column("created_at", sa.Float, nullable=False, comment="epoch seconds"),
    sa.Index("idx_outbox_queue_created", "queue", "created_at"),
)

# -- digests -----------------------------------------------------------------------------
# When each digest-enabled user is next due (kept in step with their preferences).
digest_schedules = sa.Table(
    "digest_schedules",
    metadata,
    sa.Column("user_id", sa.String(255), primary_key=True),
    sa.Column("next_at", UtcDateTime, nullable=False, comment="due from then (a slot, or a retry)"),
    sa.Column(
        "synced_at",
        UtcDateTime,
        nullable=False,
        comment="the preferences' updated_at it was computed from",
    ),
    sa.Index("idx_digest_schedules_next", "next_at"),
)

# One row per digest: at most one per user and period. Written with its rendered message
# when a run hands it over (pending), then claimed and sent by the digest delivery worker
# like a notification delivery (sending, retrying, sent, failed).
digests = sa.Table(
    "digests",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True, comment="uuid5 of user and period"),
    sa.Column("user_id", sa.String(255), nullable=False),
    sa.Column("period_key", sa.String(32), nullable=False, comment="daily:DATE, weekly:YYYY-Www"),
    sa.Column(
        "status", sa.String(16), nullable=False, comment="pending, sending, retrying, sent, failed"
    ),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("items", sa.Integer, nullable=False, server_default="0"),
    sa.Column("message_id", sa.String(255)),
    sa.Column("provider", sa.String(50)),
    sa.Column("provider_message_id", sa.String(255)),
    sa.Column("error", sa.Text),
    sa.Column("slot_at", UtcDateTime, nullable=False, comment="the scheduled instant"),
    sa.Column("created_at", UtcDateTime, nullable=False, default=utcnow),
    # -- sent by the delivery worker (0012) ----------------------------------------------
    sa.Column("message", JSONType, comment="the rendered email, as the run composed it"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("hold_until", UtcDateTime, comment="sending: end of the lease; retrying: next try"),
    sa.Column("recipient", sa.String(254), comment="the address it was sent to"),
    sa.Column("sent_at", UtcDateTime),
    sa.Column("dead_at", UtcDateTime, comment="when the last try failed (dead letter)"),
    sa.UniqueConstraint("user_id", "period_key"),
)

# Digest runs: requested (queued), running, finished; their counts and timings.
digest_runs = sa.Table(
    "digest_runs",
    metadata,
    _uuid_pk(),
    sa.Column("trigger", sa.String(16), nullable=False, comment="schedule or manual"),
    sa.Column(
        "status", sa.String(16), nullable=False, comment="queued, running, succeeded, failed"
    ),
    sa.Column("as_of", UtcDateTime, nullable=False, comment="the run's clock"),
    sa.Column("holder", sa.String(255), comment="the node running it"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("due", sa.Integer, nullable=False, server_default="0"),
    sa.Column("processed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("sent", sa.Integer, nullable=False, server_default="0"),
    sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("skipped", sa.Integer, nullable=False, server_default="0"),
    sa.Column("items", sa.Integer, nullable=False, server_default="0"),
    sa.Column("skipped_by_reason", JSONType),
    sa.Column("failed_by_reason", JSONType),
    sa.Column("timings", JSONType, comment="seconds: query, render, send, record"),
    sa.Column("error", sa.Text),
    sa.Column("created_at", UtcDateTime, nullable=False, default=utcnow),
    sa.Column("started_at", UtcDateTime),
    sa.Column("finished_at", UtcDateTime),
    sa.Index("idx_digest_runs_status", "status", "created_at"),
    sa.Index("idx_digest_runs_created", "created_at"),
)

# Leases: one holder per name at a time, taken and renewed by conditional UPDATE.
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("holder", sa.String(255), nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
)
