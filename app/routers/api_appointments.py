"""Appointments API v1: public slots, booking and cancelling by code (/api/v1/booking), and reception's
side for counter staff (/api/v1/appointments: the day's bookings, booking for a caller, check-in)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from app.deps import ClientDep, CounterUser, DefinitionsDep, SessionDep, SettingsDep
from app.errors import ValidationFailed
from app.models import Appointment
from app.schemas import ErrorOut
from app.services import appointments, audit, remote_tickets
from app.services.background import window
from app.services.clock import local_today
from app.services.routing import resident_url
from app.services.wait_estimate import wait_defaults
from app.settings import Settings

public = APIRouter(prefix="/api/v1/booking", tags=["appointments"])
staff = APIRouter(prefix="/api/v1/appointments", tags=["appointments"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut}, 409: {"model": ErrorOut},
    422: {"model": ErrorOut}, 429: {"model": ErrorOut},
}


class SlotOut(BaseModel):
    """One slot of a day with its free places."""

    start: dt.datetime
    end: dt.datetime
    capacity: int
    free: int
    bookable: bool


class BookingIn(BaseModel):
    """What a resident (or staff for a caller) books: the queue, the reason, the slot's start."""

    queue: str = Field("", max_length=64, description="'' = 総合窓口、または課のID（departments.yaml の appointments）")
    life_event: str = Field(max_length=40, description="move_in, birth, ...（その待ち列の life_events）")
    start: dt.datetime = Field(description="枠の開始時刻（タイムゾーン付き ISO 8601）")
    email: str = Field("", max_length=320, description="確認メールの宛先（任意。送信後に消去）")
    language: str = Field("ja", max_length=16)


class BookingOut(BaseModel):
    """A booking as the resident may see it (nothing personal)."""

    code: str
    display_code: str
    queue: str
    life_event: str
    start: dt.datetime
    end: dt.datetime
    status: str
    channel: str
    url: str
    ics_url: str

    @classmethod
    def of(cls, row: Appointment, settings: Settings) -> BookingOut:
        """Build from a model."""
        base = f"{settings.public_base_url.rstrip('/')}/booking/{row.code}"
        return cls(code=row.code, display_code=appointments.display_code(row.code), queue=row.queue,
                   life_event=row.life_event, start=row.start_at, end=row.end_at, status=row.status,
                   channel=row.channel, url=base, ics_url=f"{base}.ics")


class CheckInOut(BaseModel):
    """The visit's ticket issued at check-in."""

    case_id: str
    ticket_number: int
    status_token: str
    resident_url: str
    on_time: bool
    priority_reason: str
    message: str


def _day(value: str | None, settings: Settings) -> dt.date:
    if not value:
        return local_today(settings)
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(details=[{"field": "day", "message": "日付は YYYY-MM-DD で指定してください"}]) from None


@public.get("/slots", response_model=list[SlotOut], responses=ERRORS)
def list_slots(session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
               queue: str = Query("", max_length=64), day: str | None = Query(None, max_length=10)) -> list[SlotOut]:
    """The slots of a bookable queue on a day with free places (none on closing days)."""
    slots = appointments.day_slots(session, defs=defs, office=settings.office_code, queue_id=queue,
                                   day=_day(day, settings), tz=settings.tz)
    return [SlotOut(start=s["start"], end=s["end"], capacity=s["capacity"], free=s["free"], bookable=s["bookable"])
            for s in slots]


def _book(session: Any, settings: Settings, defs: Any, body: BookingIn, *, channel: str, user: Any = None,
          client_ip: str | None = None) -> Appointment:
    key = None if client_ip is None else remote_tickets.client_key(client_ip, secret=settings.secret_key.get_secret_value())
    return appointments.book(session, defs=defs, office=settings.office_code, queue_id=body.queue,
                             life_event=body.life_event, start=body.start, tz=settings.tz,
                             email=body.email if settings.smtp_host else "", language=body.language, channel=channel,
                             user=user, client_key=key, limit_per_hour=settings.booking_limit_per_hour)


@public.post("", response_model=BookingOut, status_code=201, responses=ERRORS)
def create_booking(body: BookingIn, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
                   client: ClientDep) -> BookingOut:
    """Book a place in a slot (409 when it is full, 429 over the per-address limit); the code is its only credential."""
    return BookingOut.of(_book(session, settings, defs, body, channel="web", client_ip=client.ip), settings)


@public.get("/{code}", response_model=BookingOut, responses=ERRORS)
def get_booking(code: str, session: SessionDep, settings: SettingsDep) -> BookingOut:
    """A booking by its code."""
    return BookingOut.of(appointments.get_by_code_or_raise(session, code), settings)


@public.post("/{code}/cancel", response_model=BookingOut, responses=ERRORS)
def cancel_booking(code: str, session: SessionDep, settings: SettingsDep) -> BookingOut:
    """Cancel by code; the place is free again."""
    return BookingOut.of(appointments.cancel(session, code=code), settings)


@staff.get("", response_model=list[BookingOut], responses=ERRORS)
def list_bookings(session: SessionDep, settings: SettingsDep, user: CounterUser,
                  day: str | None = Query(None, max_length=10)) -> list[BookingOut]:
    """The office's bookings of a day (default today), by slot."""
    return [BookingOut.of(r, settings) for r in appointments.list_day(session, office=settings.office_code,
                                                                        day=_day(day, settings))]


@staff.post("", response_model=BookingOut, status_code=201, responses=ERRORS)
def book_for_caller(body: BookingIn, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
                    user: CounterUser) -> BookingOut:
    """Staff book a slot for a resident on the phone."""
    return BookingOut.of(_book(session, settings, defs, body, channel="phone", user=user), settings)


@staff.post("/{code}/check-in", response_model=CheckInOut, responses=ERRORS)
def check_in(code: str, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep, user: CounterUser,
             client: ClientDep) -> CheckInOut:
    """Reception checks the booking in: the visit's ticket, first in its queue when on time."""
    done = appointments.check_in(session, defs=defs, code=code, office=settings.office_code,
                                 today=local_today(settings), tz=settings.tz, window=window(settings), user=user,
                                 defaults=wait_defaults(settings, defs))
    audit.record(session, action=audit.CASE_CREATED, actor=user, case_id=done.case.id, target="appointment",
                 client=client)
    return CheckInOut(case_id=done.case.id, ticket_number=done.ticket.number, status_token=done.case.status_token,
                      resident_url=resident_url(settings.public_base_url, done.case), on_time=done.on_time,
                      priority_reason=done.ticket.priority_reason, message=done.message)
