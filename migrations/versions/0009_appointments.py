"""appointments (booked slots), slot counters and remote web tickets

Revision ID: 0009_appointments
Revises: 0008_preentry
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
import app.models

revision: str = "0009_appointments"
down_revision: str | None = "0008_preentry"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "appointment_slots",
        sa.Column("office", sa.String(length=32), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("start_at", app.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("booked", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("office", "queue", "start_at", name=op.f("pk_appointment_slots")),
    )
    op.create_table(
        "appointments",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("office", sa.String(length=32), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("start_at", app.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("end_at", app.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("life_event", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("email", app.models.ProtectedText(), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("client_key", sa.String(length=64), nullable=True),
        sa.Column("case_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", app.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("checked_in_at", app.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", app.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("no_show_at", app.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_appointments_created_by_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_appointments_case_id_cases"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointments")),
        sa.UniqueConstraint("code", name=op.f("uq_appointments_code")),
    )
    op.create_index("ix_appointments_office_day_status", "appointments", ["office", "day", "status"], unique=False)
    op.create_index(op.f("ix_appointments_client_key"), "appointments", ["client_key"], unique=False)
    op.create_table(
        "remote_tickets",
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("client_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", app.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_remote_tickets_case_id_cases"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_remote_tickets")),
    )
    op.create_index("ix_remote_tickets_client_created", "remote_tickets", ["client_key", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_remote_tickets_client_created", table_name="remote_tickets")
    op.drop_table("remote_tickets")
    op.drop_index(op.f("ix_appointments_client_key"), table_name="appointments")
    op.drop_index("ix_appointments_office_day_status", table_name="appointments")
    op.drop_table("appointments")
    op.drop_table("appointment_slots")
