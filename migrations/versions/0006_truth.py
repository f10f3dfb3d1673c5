"""signatures per signer and signed forms

Revision ID: 0006_truth
Revises: 0005_card
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models

revision: str = "0006_truth"
down_revision: str | None = "0005_card"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signatures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("signer", sa.String(length=20), nullable=False),
        sa.Column("png", sa.LargeBinary(), nullable=True),
        sa.Column("signed_at", app.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_signatures_case_id_cases"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signatures")),
        sa.UniqueConstraint("case_id", "signer", name=op.f("uq_signatures_case_id_signer")),
    )
    with op.batch_alter_table("signatures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signatures_case_id"), ["case_id"], unique=False)
    op.create_table(
        "signed_forms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("instance_id", sa.String(length=100), nullable=False),
        sa.Column("signer", sa.String(length=20), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("signed_at", app.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("voided_at", app.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_signed_forms_case_id_cases"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signed_forms")),
        sa.UniqueConstraint("case_id", "instance_id", name=op.f("uq_signed_forms_case_id_instance_id")),
    )
    with op.batch_alter_table("signed_forms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signed_forms_case_id"), ["case_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("signed_forms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signed_forms_case_id"))
    op.drop_table("signed_forms")
    with op.batch_alter_table("signatures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signatures_case_id"))
    op.drop_table("signatures")
