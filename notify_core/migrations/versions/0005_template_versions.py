"""Template versions: templates by name x channel x locale, every published version kept.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from notify_core.db.schema import UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "template_versions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False, comment="a channel, or 'layout'"),
        sa.Column("locale", sa.String(35), nullable=False, comment="BCP 47; '' = the default"),
        sa.Column(
            "version",
            sa.Integer(),
            nullable=False,
            comment="1, 2, ... per name x channel x locale",
        ),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column(
            "body",
            sa.Text(),
            nullable=False,
            comment="HTML for email and layouts, else text",
        ),
        sa.Column(
            "layout", sa.String(100), nullable=True, comment="email only: the layout it extends"
        ),
        sa.Column(
            "variables",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=True,
            comment="declared variable names; null = not declared",
        ),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_template_versions"),
        sa.UniqueConstraint(
            "name",
            "channel",
            "locale",
            "version",
            name="uq_template_versions_name_channel_locale_version",
        ),
    )


def downgrade() -> None:
    op.drop_table("template_versions")
