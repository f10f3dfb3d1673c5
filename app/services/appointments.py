"""Appointments (予約): slots per queue from departments.yaml, booking, cancelling, check-in, no-shows.

Capacity is a counter row per slot (`appointment_slots`) that a booking increments with
`UPDATE ... SET booked = booked + 1 WHERE booked < capacity`: on PostgreSQL the second of two racing
updates waits for the first and re-checks the condition; SQLite serialises writers. Either way one
booking gets the last place and the other a 409. A cancellation or a no-show gives the place back.

Check-in (reception types or scans the booking code) issues the visit's one ticket with priority
reason "appointment", so it is called before walk-ins of its queue. It is accepted from
`early` minutes before the slot starts until `late` minutes after; later the booking is a no-show
(`sweep_no_shows`, run by the app's background task) and a check-in gets an ordinary ticket.
"""

from __future__ import annotations

import datetime as dt
import secrets
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.errors import AppError, Conflict, NotFound, ValidationFailed
from app.forms import slots
from app.forms.loader import DefinitionSet
from app.forms.schema import AppointmentQueue
from app.i18n import N_
from app.models import Appointment, AppointmentSlot, Case, QueueTicket, User, utcnow
from app.services import notify, queue
from app.services.wait_estimate import WaitDefaults

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud on the phone
CODE_LENGTH = 10
CHANNELS = ("web", "phone")
STATUSES = ("booked", "checked_in", "cancelled", "no_show")

FULL = N_("この時間の予約はいっぱいです。別の時間を選んでください")
NO_SLOT = N_("この時間は予約できません。表示されている時間から選んでください")
PAST = N_("過ぎた時間は予約できません")
NO_QUEUE = N_("ご用件を選んでください")
BAD_EMAIL = N_("メールアドレスの形をご確認ください")
UNKNOWN_CODE = N_("この予約番号は見つかりません")
ALREADY_CANCELLED = N_("この予約は取り消し済みです")
NOT_CANCELLABLE = N_("受付済み・期限切れの予約は取り消せません")
TOO_MANY = N_("短い時間に多くの予約がありました。しばらくしてからお試しください")


class TooManyBookings(AppError):
    """Too many web bookings from one address within the hour."""

    status = 429
    code = "too_many_bookings"
    message = TOO_MANY


@dataclass(frozen=True)
class Window:
    """How long before and after the slot start a booking can be checked in (settings)."""

    early_minutes: int = 30
    late_minutes: int = 15


@dataclass(frozen=True)
class CheckIn:
    """The result of a check-in: the visit, its ticket, and whether it kept the booking's priority."""

    case: Case
    ticket: QueueTicket
    appointment: Appointment
    on_time: bool
    message: str


def _field(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(details=[{"field": field, "message": message}])


def display_code(code: str) -> str:
    """The code as printed and read aloud: two groups of five (ABCDE-23456)."""
    return f"{code[:5]}-{code[5:]}"


def clean_code(value: Any) -> str | None:
    """A typed or scanned code (any case, full-width, with hyphens or spaces) as stored, or None."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    text = "".join(ch for ch in unicodedata.normalize("NFKC", value).upper() if ch not in "- \t\r\n")
    if len(text) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in text):
        return None
    return text


def _new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def bookable_queue_or_raise(defs: DefinitionSet, queue_id: Any) -> AppointmentQueue:
    """The bookable queue with this id ("" = one-stop counter), or a field error."""
    item = defs.appointments.get(queue_id) if isinstance(queue_id, str) else None
    if item is None:
        raise _field("queue", NO_QUEUE)
    return item


def queue_label(defs: DefinitionSet, item: AppointmentQueue) -> str:
    """The name shown for a bookable queue (its own, else the department's, else 総合窓口)."""
    if item.name:
        return item.name
    dep = defs.departments.get(item.queue)
    return dep.name if dep else "総合窓口"


def where(defs: DefinitionSet, queue_id: str) -> str:
    """Where to come for this queue: the department's location, or the one-stop counter."""
    dep = defs.departments.get(queue_id)
    return f"{dep.name}（{dep.location}）" if dep and dep.location else (dep.name if dep else "総合窓口")


def _booked(session: Session, *, office: str, queue_id: str, starts: Collection[dt.datetime]) -> dict[dt.datetime, int]:
    if not starts:
        return {}
    rows = session.execute(select(AppointmentSlot.start_at, AppointmentSlot.booked).where(
        AppointmentSlot.office == office, AppointmentSlot.queue == queue_id,
        AppointmentSlot.start_at.in_([s.astimezone(dt.UTC) for s in starts]))).all()
    return {start: booked for start, booked in rows}


def day_slots(
    session: Session, *, defs: DefinitionSet, office: str, queue_id: str, day: dt.date, tz: dt.tzinfo,
    now: dt.datetime | None = None,
) -> list[dict[str, Any]]:
    """The queue's slots on a day with the places left (none on a closed day); past slots are not bookable."""
    item = bookable_queue_or_raise(defs, queue_id)
    now = now or utcnow()
    day_list = slots.slots_of_day(item, day, calendar=defs.calendar, tz=tz)
    booked = _booked(session, office=office, queue_id=item.queue, starts=[s.start for s in day_list])
    out = []
    for slot in day_list:
        free = max(0, item.capacity - booked.get(slot.start.astimezone(dt.UTC), 0))
        out.append({"start": slot.start, "end": slot.end, "label": slot.label, "capacity": item.capacity,
                    "free": free, "bookable": free > 0 and slot.start > now})
    return out


def _ensure_slot_row(session: Session, *, office: str, queue_id: str, start: dt.datetime) -> None:
    values = {"office": office, "queue": queue_id, "start_at": start.astimezone(dt.UTC), "booked": 0}
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(AppointmentSlot).values(**values).on_conflict_do_nothing())


def _take_place(session: Session, *, office: str, queue_id: str, start: dt.datetime, capacity: int) -> bool:
    _ensure_slot_row(session, office=office, queue_id=queue_id, start=start)
    taken = session.execute(
        update(AppointmentSlot)
        .where(AppointmentSlot.office == office, AppointmentSlot.queue == queue_id,
               AppointmentSlot.start_at == start.astimezone(dt.UTC), AppointmentSlot.booked < capacity)
        .values(booked=AppointmentSlot.booked + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    return taken == 1


def _release_place(session: Session, appointment: Appointment) -> None:
    session.execute(
        update(AppointmentSlot)
        .where(AppointmentSlot.office == appointment.office, AppointmentSlot.queue == appointment.queue,
               AppointmentSlot.start_at == appointment.start_at, AppointmentSlot.booked > 0)
        .values(booked=AppointmentSlot.booked - 1)
        .execution_options(synchronize_session=False)
    )


def book(
    session: Session, *, defs: DefinitionSet, office: str, queue_id: Any, life_event: Any, start: Any,
    tz: dt.tzinfo, email: Any = "", language: str = "ja", channel: str = "web", user: User | None = None,
    now: dt.datetime | None = None, client_key: str | None = None, limit_per_hour: int | None = None,
) -> Appointment:
    """Book one place in a slot; field errors (queue, life_event, start, email), 409 when the slot is full,
    429 when the same address (`client_key`, web bookings) booked `limit_per_hour` times within the hour."""
    now = now or utcnow()
    item = bookable_queue_or_raise(defs, queue_id)
    errors = []
    event = life_event if isinstance(life_event, str) else ""
    info = defs.fields.get("life_events")
    allowed = item.life_events or [str(c.value) for c in (info.field.choices or [])] if info else item.life_events
    if event not in allowed:
        errors.append({"field": "life_event", "message": NO_QUEUE})
    slot = None
    if isinstance(start, str):
        try:
            start = dt.datetime.fromisoformat(start)
        except ValueError:
            start = None
    if isinstance(start, dt.datetime) and start.tzinfo is not None:
        slot = slots.find_slot(item, start, calendar=defs.calendar, tz=tz)
    if slot is None:
        errors.append({"field": "start", "message": NO_SLOT})
    elif slot.start <= now:
        errors.append({"field": "start", "message": PAST})
    elif slot.start.date() > (now.astimezone(tz).date() + dt.timedelta(days=item.book_days_ahead)):
        errors.append({"field": "start", "message": NO_SLOT})
    address = email.strip() if isinstance(email, str) else ""
    if address and (len(address) > 320 or not notify.is_email(address)):
        errors.append({"field": "email", "message": BAD_EMAIL})
    if errors:
        raise ValidationFailed(details=errors)
    assert slot is not None
    if client_key is not None and limit_per_hour is not None:
        recent = session.scalar(select(func.count()).select_from(Appointment).where(
            Appointment.client_key == client_key, Appointment.created_at > now - dt.timedelta(hours=1))) or 0
        if recent >= limit_per_hour:
            raise TooManyBookings()
    if not _take_place(session, office=office, queue_id=item.queue, start=slot.start, capacity=item.capacity):
        raise Conflict(FULL)
    row = Appointment(code=_new_code(), office=office, queue=item.queue, day=slot.start.date(),
                      start_at=slot.start.astimezone(dt.UTC), end_at=slot.end.astimezone(dt.UTC), life_event=event,
                      status="booked", channel=channel if channel in CHANNELS else "web", email=address or None,
                      language=language[:16], created_by=user.id if user else None, created_at=now,
                      client_key=client_key)
    session.add(row)
    session.flush()
    return row


def get_by_code_or_raise(session: Session, code: Any) -> Appointment:
    """The booking with this code (typed in any form), or NotFound."""
    clean = clean_code(code)
    row = session.scalar(select(Appointment).where(Appointment.code == clean)) if clean else None
    if row is None:
        raise NotFound(UNKNOWN_CODE)
    return row


def _set_status(session: Session, row: Appointment, *, status: str, **values: Any) -> bool:
    changed = session.execute(
        update(Appointment).where(Appointment.id == row.id, Appointment.status == "booked")
        .values(status=status, version=Appointment.version + 1, **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(row)
    return changed == 1


def cancel(session: Session, *, code: Any, now: dt.datetime | None = None) -> Appointment:
    """The resident (or staff) cancels a booking: its place is free again."""
    row = get_by_code_or_raise(session, code)
    if row.status == "cancelled":
        raise Conflict(ALREADY_CANCELLED)
    if not _set_status(session, row, status="cancelled", cancelled_at=now or utcnow()):
        raise Conflict(NOT_CANCELLABLE)
    _release_place(session, row)
    return row


def list_day(session: Session, *, office: str, day: dt.date) -> list[Appointment]:
    """The office's bookings of a day, by slot then booking time."""
    return list(session.scalars(select(Appointment).where(Appointment.office == office, Appointment.day == day)
                                .order_by(Appointment.start_at, Appointment.created_at)))


def check_in(
    session: Session, *, defs: DefinitionSet, code: Any, office: str, today: dt.date, tz: dt.tzinfo,
    window: Window, user: User | None = None, defaults: WaitDefaults | None = None, now: dt.datetime | None = None,
) -> CheckIn:
    """Reception scanned or typed the code: issue the visit's ticket, first in its queue when on time.

    Before the window: refused (409, says from when). After it (or already a no-show): an ordinary
    ticket, with a message saying so. Cancelled or already checked in: 409.
    """
    now = now or utcnow()
    row = get_by_code_or_raise(session, code)
    if row.office != office:
        raise NotFound(UNKNOWN_CODE)
    if row.status == "cancelled":
        raise Conflict("この予約は取り消されています")
    if row.status == "checked_in" or row.case_id is not None:
        raise Conflict("この予約はすでに受付済みです")
    start_local = row.start_at.astimezone(tz)
    if start_local.date() != today:
        raise Conflict(f"この予約は{start_local.month}月{start_local.day}日 {start_local:%H:%M} の予約です")
    opens = row.start_at - dt.timedelta(minutes=window.early_minutes)
    closes = row.start_at + dt.timedelta(minutes=window.late_minutes)
    if now < opens:
        raise Conflict(f"予約の受付は {opens.astimezone(tz):%H:%M} からです。もう少しお待ちください")
    on_time = row.status == "booked" and now <= closes
    life_events = [row.life_event]
    if on_time:
        if not _set_status(session, row, status="checked_in", checked_in_at=now):
            raise Conflict("この予約はほかの端末で先に受付されました")
        message = f"予約（{start_local:%H:%M}）の受付をしました。優先してお呼びします"
    else:
        if row.status == "booked":
            mark_no_show(session, row, now=now)
        message = f"予約の時間（{start_local:%H:%M}）を過ぎたため、通常の順番でお呼びします"
    case, ticket = queue.open_visit(session, defs=defs, life_events=life_events, user=user, office=office,
                                    today=today, priority_reason="appointment" if on_time else "",
                                    queue=row.queue, defaults=defaults, now=now)
    row.case_id = case.id
    if not on_time:
        row.checked_in_at = now
    session.flush()
    return CheckIn(case=case, ticket=ticket, appointment=row, on_time=on_time, message=message)


def mark_no_show(session: Session, row: Appointment, *, now: dt.datetime) -> bool:
    """A booking nobody checked in in time: no-show, and its place is released."""
    if _set_status(session, row, status="no_show", no_show_at=now):
        _release_place(session, row)
        return True
    return False


def forget_client_keys(session: Session, *, now: dt.datetime | None = None) -> int:
    """Erase the address hashes of bookings made more than a day ago (they only serve the hourly limit)."""
    cutoff = (now or utcnow()) - dt.timedelta(days=1)
    return session.execute(update(Appointment).where(Appointment.client_key.is_not(None),
                                                     Appointment.created_at < cutoff)
                           .values(client_key=None).execution_options(synchronize_session=False)).rowcount or 0


def sweep_no_shows(session: Session, *, window: Window, now: dt.datetime | None = None, limit: int = 200) -> int:
    """Mark every booking whose check-in window has passed as a no-show; returns how many.

    Rows are claimed with FOR UPDATE SKIP LOCKED (PostgreSQL), so several instances sweeping at
    once never handle one booking twice; SQLite's IMMEDIATE transactions take turns.
    """
    now = now or utcnow()
    cutoff = now - dt.timedelta(minutes=window.late_minutes)
    rows = list(session.scalars(
        select(Appointment).where(Appointment.status == "booked", Appointment.start_at < cutoff)
        .order_by(Appointment.start_at).limit(limit).with_for_update(skip_locked=True)))
    return sum(1 for row in rows if mark_no_show(session, row, now=now))
