"""notice subscriptions (Web Push and e-mail notices to residents)

Revision ID: 0007_rooms
Revises: 0006_truth
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
import app.models

revision: str = "0007_rooms"
down_revision: str | None = "0006_truth"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notice_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("target", app.models.ProtectedText(), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("sent", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False),
        sa.Column("created_at", app.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_notice_subscriptions_case_id_cases"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_subscriptions")),
    )
    op.create_index(op.f("ix_notice_subscriptions_case_id"), "notice_subscriptions", ["case_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_notice_subscriptions_case_id"), table_name="notice_subscriptions")
    op.drop_table("notice_subscriptions")
