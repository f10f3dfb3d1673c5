"""resident pre-entry drafts on the phone and the pre-entered answers kept with the visit

Revision ID: 0008_preentry
Revises: 0007_rooms
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
import app.models

revision: str = "0008_preentry"
down_revision: str | None = "0007_rooms"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pre_entry_drafts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("lang", sa.String(length=16), nullable=False),
        sa.Column("answers", sa.Text(), nullable=True),
        sa.Column("client_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", app.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", app.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("handed_over_at", app.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pre_entry_drafts")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_pre_entry_drafts_code_hash")),
    )
    op.create_index(op.f("ix_pre_entry_drafts_client_key"), "pre_entry_drafts", ["client_key"], unique=False)
    op.create_index(op.f("ix_pre_entry_drafts_created_at"), "pre_entry_drafts", ["created_at"], unique=False)
    op.create_index(op.f("ix_pre_entry_drafts_expires_at"), "pre_entry_drafts", ["expires_at"], unique=False)
    op.create_table(
        "pre_entry_originals",
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("answers", sa.Text(), nullable=False),
        sa.Column("lang", sa.String(length=16), nullable=False),
        sa.Column("handed_over_at", app.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_pre_entry_originals_case_id_cases"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_pre_entry_originals")),
    )


def downgrade() -> None:
    op.drop_table("pre_entry_originals")
    op.drop_index(op.f("ix_pre_entry_drafts_expires_at"), table_name="pre_entry_drafts")
    op.drop_index(op.f("ix_pre_entry_drafts_created_at"), table_name="pre_entry_drafts")
    op.drop_index(op.f("ix_pre_entry_drafts_client_key"), table_name="pre_entry_drafts")
    op.drop_table("pre_entry_drafts")
