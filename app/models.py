"""Database models (SQLAlchemy 2). Timestamps are UTC and end in `_at`."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app import crypto
from app.db import Base
from app.services import clock

JSONType = JSON().with_variant(JSONB(), "postgresql")


class ProtectedAnswers(TypeDecorator[dict[str, Any]]):
    """The answers document, with My Numbers and account numbers encrypted in the database."""

    impl = JSONType
    cache_ok = True

    def process_bind_param(self, value: dict[str, Any] | None, dialect: Any) -> dict[str, Any] | None:
        return crypto.protect(value) if value is not None else None

    def process_result_value(self, value: dict[str, Any] | None, dialect: Any) -> dict[str, Any] | None:
        return crypto.reveal(value) if value is not None else None


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores it naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    """The current time in UTC (read from app.services.clock, which the visit benchmark may simulate)."""
    return clock.utcnow()


def new_id() -> str:
    """A random, unguessable identifier."""
    return uuid.uuid4().hex


class User(Base):
    """A staff account: counter staff, department staff or an administrator."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    department_id: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored, so a database leak reveals no usable token."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship(lazy="joined")


class TicketCounter(Base):
    """The last ticket number issued per office and day; incremented atomically."""

    __tablename__ = "ticket_counters"

    office: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    last_number: Mapped[int] = mapped_column(Integer, default=0)


class Case(Base):
    """One visit: one ticket, one interview, the answers document and its history."""

    __tablename__ = "cases"
    __table_args__ = (UniqueConstraint("office", "ticket_day", "ticket_number"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    office: Mapped[str] = mapped_column(String(32))
    ticket_day: Mapped[dt.date] = mapped_column(Date, index=True)
    ticket_number: Mapped[int] = mapped_column(Integer)
    status_token: Mapped[str] = mapped_column(String(32), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="interviewing")
    answers: Mapped[dict[str, Any]] = mapped_column(ProtectedAnswers(), default=dict)
    complete: Mapped[bool] = mapped_column(default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
    definitions_fingerprint: Mapped[str] = mapped_column(String(64), default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # The resident signs once on the tablet; the image is placed on every form with a signature box.
    signature_png: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    signed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # Retention: when the personal data (answers, signature) was purged; events and metrics stay.
    purged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    events: Mapped[list[CaseEvent]] = relationship(
        back_populates="case", order_by="CaseEvent.id", cascade="all, delete-orphan"
    )

    @property
    def case_number(self) -> str:
        """Human-readable number printed on every page: 20260406-honcho-007."""
        return f"{self.ticket_day:%Y%m%d}-{self.office}-{self.ticket_number:03d}"


class CaseEvent(Base):
    """A time-stamped event of a visit (arrival, interview started, saved, signed, ...)."""

    __tablename__ = "case_events"
    __table_args__ = (Index("ix_case_events_case_id_at", "case_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    note: Mapped[str] = mapped_column(Text, default="")

    case: Mapped[Case] = relationship(back_populates="events")


# --- Routing, queue and resident feedback (issue 5) ------------------------------------------------
#
# Every state change below also writes a CaseEvent (see app/events.py for the vocabulary); the
# metrics are computed from those events and the resident page's live updates are driven by them.


class RoutingStep(Base):
    """One department's step on a visit's routing slip (回付票)."""

    __tablename__ = "routing_steps"
    __table_args__ = (
        UniqueConstraint("case_id", "department_id"),
        Index("ix_routing_steps_department_id_status", "department_id", "status"),
        Index("ix_routing_steps_updated_at", "updated_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    department_id: Mapped[str] = mapped_column(String(64))
    # Position in a valid (topological) order; steps with the same `stage` may run in parallel.
    position: Mapped[int] = mapped_column(Integer, default=0)
    stage: Mapped[int] = mapped_column(Integer, default=0)
    # Instance ids of the applications this department handles (e.g. ["jido_teate", "kodomo_iryo-m3"]).
    applications: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # Department ids that must be done before this step may start (from the definitions' `after`).
    depends_on: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # pending -> in_progress -> done | needs_resident (| cancelled when the application no longer applies)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    claimed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # When the department needs the resident in person: why (plain Japanese) and at which counter.
    resident_reason: Mapped[str] = mapped_column(Text, default="")
    counter: Mapped[str] = mapped_column(String(40), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    case: Mapped[Case] = relationship()


class QueueTicket(Base):
    """A visit's place in the waiting-room queue: one ticket per visit, called to a counter."""

    __tablename__ = "queue_tickets"
    __table_args__ = (Index("ix_queue_tickets_office_day_status", "office", "day", "status"),)

    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True)
    office: Mapped[str] = mapped_column(String(32))
    day: Mapped[dt.date] = mapped_column(Date)
    number: Mapped[int] = mapped_column(Integer)
    # Higher is served first (appointment, accessibility needs); ties by issue time.
    priority: Mapped[int] = mapped_column(Integer, default=0)
    priority_reason: Mapped[str] = mapped_column(String(40), default="")
    # waiting -> called -> serving -> done; skipped (no-show) may be recalled to waiting.
    status: Mapped[str] = mapped_column(String(20), default="waiting")
    counter: Mapped[str] = mapped_column(String(40), default="")
    # Department the ticket waits for ("" = the one-stop counter); changed by a transfer.
    queue: Mapped[str] = mapped_column(String(64), default="")
    call_count: Mapped[int] = mapped_column(Integer, default=0)
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    called_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    served_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # The wait we told the resident when the ticket was issued, to measure the estimate's error.
    estimated_wait_minutes: Mapped[float | None] = mapped_column()
    version: Mapped[int] = mapped_column(Integer, default=1)

    case: Mapped[Case] = relationship()


class SatisfactionResponse(Base):
    """手続満足度: the resident's 1-5 answer (and optional comment) at the end of the visit."""

    __tablename__ = "satisfaction_responses"

    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True)
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str] = mapped_column(String(16), default="ja")
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


# --- Staff sessions (issue 4) and audit log (issue 7) ------------------------------------------------


class StaffSession(Base):
    """A signed-in browser session of a staff member; only the token's SHA-256 is stored."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship(lazy="joined")


class AuditEntry(Base):
    """Who read or changed what, when and from where. The app only ever inserts rows here."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"), Index("ix_audit_log_case_id", "case_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Username as it was at the time (or the attempted one for a failed login), never personal data.
    actor: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(40))
    case_id: Mapped[str | None] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(200), default="")
    outcome: Mapped[str] = mapped_column(String(20), default="ok")
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(200), default="")


# --- Operations (issue 11): running instances publish the encryption keys they know ------------------


class ServiceInstance(Base):
    """A running service process and the key ids it can decrypt (`kakanai keys rotate` checks them).

    Each process upserts its row at start and refreshes `heartbeat_at` while it runs; key ids are
    public names (`k2`), never key material.
    """

    __tablename__ = "service_instances"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(100), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    key_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    current_key: Mapped[str] = mapped_column(String(16), default="")
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
# --- マイナンバーカード read-in and 転入予約 import (issue 16) ------------------------------------------------


class CardPairing(Base):
    """A one-time code shown on the visit's tablet that lets a counter card bridge post one card reading."""

    __tablename__ = "card_pairings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    # Only the code's SHA-256 is stored: a database leak reveals no usable code.
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The household member the card belongs to; None = add a new member.
    member_id: Mapped[str | None] = mapped_column(String(32))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # What the reading changed (answer paths) and what the clerk must still look at; no personal data.
    result: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class PlannedVisit(Base):
    """A visit announced before the resident comes (転入予約 from the 引越しワンストップ service)."""

    __tablename__ = "planned_visits"
    __table_args__ = (
        UniqueConstraint("office", "source", "reference"),
        Index("ix_planned_visits_office_planned_on", "office", "planned_on"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    office: Mapped[str] = mapped_column(String(32))
    planned_on: Mapped[dt.date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(40))
    # The sender's own number for the reservation (予約番号), so a file imported twice adds nothing twice.
    reference: Mapped[str] = mapped_column(String(64))
    answers: Mapped[dict[str, Any]] = mapped_column(ProtectedAnswers(), default=dict)
    imported_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    imported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Set when the resident arrives and the clerk opens the visit from the planned one.
    case_id: Mapped[str | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"))
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class AnswerSource(Base):
    """An answer that came from a card reading or an import, marked on the screen until the clerk confirms it."""

    __tablename__ = "answer_sources"
    __table_args__ = (UniqueConstraint("case_id", "path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    # Answers path with the member's id instead of its position: household.members.m2.birth_date.
    path: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    confirmed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
# --- Signatures per signer (issue 12) --------------------------------------------------------------


class Signature(Base):
    """One signer's signature on a visit: a member id, or "agent" for the 代理人. Drawn once, used on that person's forms."""

    __tablename__ = "signatures"
    __table_args__ = (UniqueConstraint("case_id", "signer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    signer: Mapped[str] = mapped_column(String(20))
    png: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    signed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SignedForm(Base):
    """A form as its signer signed it: the digest of what it printed. A later change voids the signature."""

    __tablename__ = "signed_forms"
    __table_args__ = (UniqueConstraint("case_id", "instance_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    instance_id: Mapped[str] = mapped_column(String(100))
    signer: Mapped[str] = mapped_column(String(20))
    digest: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    voided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
class ProtectedText(TypeDecorator[str]):
    """Text encrypted at rest with the keyring (AEAD): where a resident asked to be notified."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return crypto.keyring().encrypt(value, field="notice_target") if value is not None else None

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        return crypto.keyring().decrypt(value, field="notice_target") if value is not None else None


class NoticeSubscription(Base):
    """A resident's opt-in to notices for one visit: a Web Push subscription or an e-mail address.

    The target is encrypted at rest and never logged; `sent` lists the notice keys already delivered
    (one "near", one per call, one per department that needs the resident, one "done").
    """

    __tablename__ = "notice_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    target: Mapped[str] = mapped_column(ProtectedText())
    language: Mapped[str] = mapped_column(String(16), default="ja")
    sent: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)



# --- Resident pre-entry on the phone (issue 16) ----------------------------------------------------


class SealedJSON(TypeDecorator[Any]):
    """A whole JSON value encrypted at rest (AEAD): nothing of it, not even a name, is readable in the row."""

    impl = Text
    cache_ok = True

    def __init__(self, field: str, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.field = field

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        return crypto.keyring().encrypt(json.dumps(value, ensure_ascii=False, sort_keys=True), field=self.field)

    def process_result_value(self, value: str | None, dialect: Any) -> Any:
        return json.loads(crypto.keyring().decrypt(value, field=self.field)) if value is not None else None


class PreEntryDraft(Base):
    """Answers a resident typed on their own phone before the visit, kept until hand-off or expiry.

    The code (shown as QR and XXXX-XXXX) is the hand-off credential at the counter, the token
    authorises the phone's writes; only their SHA-256 are stored. After hand-off the answers are
    removed and the row stays, empty, until it expires, so the phone can tell it was handed over.
    """

    __tablename__ = "pre_entry_drafts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    lang: Mapped[str] = mapped_column(String(16), default="ja")
    answers: Mapped[dict[str, Any] | None] = mapped_column(SealedJSON("pre_entry_answers"))
    # SHA-256 of the creating client's address (keyed): counts drafts per address per hour.
    client_key: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    handed_over_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class PreEntryOriginal(Base):
    """What the resident entered, kept (encrypted) with the visit so the review can show what the clerk changed."""

    __tablename__ = "pre_entry_originals"

    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True)
    answers: Mapped[dict[str, Any]] = mapped_column(SealedJSON("pre_entry_original"))
    lang: Mapped[str] = mapped_column(String(16), default="ja")
    handed_over_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
class AppointmentSlot(Base):
    """How many bookings hold a place in one slot of a queue: the row a booking increments under its
    capacity (`UPDATE ... SET booked = booked + 1 WHERE booked < capacity`), so two bookings racing for
    the last place cannot both win on any backend."""

    __tablename__ = "appointment_slots"

    office: Mapped[str] = mapped_column(String(32), primary_key=True)
    queue: Mapped[str] = mapped_column(String(64), primary_key=True)
    start_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), primary_key=True)
    booked: Mapped[int] = mapped_column(Integer, default=0)


class Appointment(Base):
    """A booked slot (予約): made by the resident on the phone or by staff for a caller.

    booked → checked_in (the visit's ticket is issued, priority "appointment") | cancelled | no_show
    (not checked in by the end of the window; its place in the slot is released). The optional e-mail
    address is encrypted and used only for the confirmation.
    """

    __tablename__ = "appointments"
    __table_args__ = (Index("ix_appointments_office_day_status", "office", "day", "status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    office: Mapped[str] = mapped_column(String(32))
    queue: Mapped[str] = mapped_column(String(64), default="")
    day: Mapped[dt.date] = mapped_column(Date)
    start_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    life_event: Mapped[str] = mapped_column(String(40), default="")
    status: Mapped[str] = mapped_column(String(20), default="booked")
    channel: Mapped[str] = mapped_column(String(20), default="web")
    email: Mapped[str | None] = mapped_column(ProtectedText())
    language: Mapped[str] = mapped_column(String(16), default="ja")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Keyed hash of the booking phone's address (web bookings), for the per-address limit; erased after a day.
    client_key: Mapped[str | None] = mapped_column(String(64), index=True)
    case_id: Mapped[str | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    checked_in_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    no_show_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, default=1)


class RemoteTicket(Base):
    """A ticket taken from a phone (web ticket): which client address asked (a keyed hash), for the rate limit."""

    __tablename__ = "remote_tickets"
    __table_args__ = (Index("ix_remote_tickets_client_created", "client_key", "created_at"),)

    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True)
    client_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
