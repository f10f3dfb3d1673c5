"""Reception's bookings (counter staff): the day's bookings, booking for a caller on the phone, check-in by code.

Check-in is one text field: a USB QR scanner types the code from the resident's phone and presses
Enter (or staff type the code read aloud); the visit's ticket is issued and printed like any other.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.deps import ClientDep, DefinitionsDep, PageCounterUser, SessionDep, SettingsDep
from app.errors import AppError, ValidationFailed
from app.forms import slots
from app.forms.loader import DefinitionSet
from app.routers.guide import EVENT_LABELS
from app.services import appointments, audit, reception
from app.services.background import window
from app.services.clock import local_today
from app.services.wait_estimate import wait_defaults
from app.settings import Settings
from app.templating import staff_page

router = APIRouter(include_in_schema=False)

STATUS_LABELS = {"booked": "予約中", "checked_in": "受付済み", "cancelled": "取り消し", "no_show": "来庁なし（期限切れ）"}
CHANNEL_LABELS = {"web": "スマートフォン", "phone": "電話（職員）"}


def _day(text: str, settings: Settings) -> dt.date:
    try:
        return dt.date.fromisoformat(text) if text else local_today(settings)
    except ValueError:
        return local_today(settings)


def _purposes(defs: DefinitionSet) -> list[dict[str, str]]:
    return [{"value": f"{item.queue}:{event}", "label": f"{EVENT_LABELS.get(event, event)}　— {appointments.queue_label(defs, item)}"}
            for item in defs.appointments.values() for event in item.life_events]


def _context(session: Any, defs: DefinitionSet, settings: Settings, *, day: dt.date, purpose: str, slot_day: str,
             booked: str = "") -> dict[str, Any]:
    tz = settings.tz
    rows = []
    for row in appointments.list_day(session, office=settings.office_code, day=day):
        item = defs.appointments.get(row.queue)
        rows.append({"time": f"{row.start_at.astimezone(tz):%H:%M}", "code": appointments.display_code(row.code),
                     "raw_code": row.code, "queue": appointments.queue_label(defs, item) if item else row.queue,
                     "event": EVENT_LABELS.get(row.life_event, row.life_event), "status": row.status,
                     "status_label": STATUS_LABELS.get(row.status, row.status),
                     "channel": CHANNEL_LABELS.get(row.channel, row.channel)})
    queue_id, _, _event = purpose.partition(":")
    item = defs.appointments.get(queue_id) if purpose else None
    days = [d.isoformat() for d in slots.bookable_days(item, local_today(settings), calendar=defs.calendar)] if item else []
    slot_list: list[dict[str, Any]] = []
    if item is not None and slot_day in days:
        slot_list = appointments.day_slots(session, defs=defs, office=settings.office_code, queue_id=queue_id,
                                           day=dt.date.fromisoformat(slot_day), tz=tz)
    return {"day": day.isoformat(), "rows": rows, "purposes": _purposes(defs), "purpose": purpose if item else "",
            "days": days, "slot_day": slot_day if slot_list else "", "slots": slot_list, "errors": {},
            "booked": appointments.display_code(booked) if booked else ""}


@router.get("/reception/bookings", response_class=HTMLResponse)
def bookings_page(request: Request, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
                  user: PageCounterUser, day: str = "", purpose: str = "", slot_day: str = "",
                  booked: str = "") -> HTMLResponse:
    """The day's bookings and the form to book for a caller."""
    clean = appointments.clean_code(booked) or ""
    return staff_page(request, "reception/bookings.html",
                      _context(session, defs, settings, day=_day(day[:10], settings), purpose=purpose[:120],
                               slot_day=slot_day[:10], booked=clean))


@router.post("/reception/bookings", response_class=HTMLResponse)
def book_for_caller(request: Request, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
                    user: PageCounterUser, purpose: Annotated[str, Form(max_length=120)] = "",
                    slot_day: Annotated[str, Form(max_length=10)] = "",
                    start: Annotated[str, Form(max_length=40)] = "") -> Response:
    """Book a slot for a resident on the phone; the code to read out comes back on the page."""
    queue_id, _, event = purpose.partition(":")
    try:
        row = appointments.book(session, defs=defs, office=settings.office_code, queue_id=queue_id, life_event=event,
                                start=start, tz=settings.tz, channel="phone", user=user)
    except AppError as exc:
        context = _context(session, defs, settings, day=local_today(settings), purpose=purpose, slot_day=slot_day)
        details = exc.details if isinstance(exc, ValidationFailed) and exc.details else [{"field": "start",
                                                                                          "message": exc.message}]
        context["errors"] = {d["field"]: d["message"] for d in details}
        return staff_page(request, "reception/bookings.html", context, status=exc.status)
    return RedirectResponse(f"/reception/bookings?day={row.day.isoformat()}&booked={row.code}", status_code=303)


@router.post("/reception/bookings/{code}/cancel")
def cancel_for_caller(code: str, session: SessionDep, user: PageCounterUser) -> Response:
    """Cancel a booking for a resident who calls."""
    row = appointments.cancel(session, code=code)
    return RedirectResponse(f"/reception/bookings?day={row.day.isoformat()}", status_code=303)


@router.post("/reception/check-in", response_class=HTMLResponse)
def check_in(request: Request, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
             user: PageCounterUser, client: ClientDep, code: Annotated[str, Form(max_length=64)] = "") -> Response:
    """The scanned or typed code: issue the visit's ticket (first in line when on time) and print it."""
    try:
        done = appointments.check_in(session, defs=defs, code=code, office=settings.office_code,
                                     today=local_today(settings), tz=settings.tz, window=window(settings), user=user,
                                     defaults=wait_defaults(settings, defs))
    except AppError as exc:
        return staff_page(request, "reception/index.html", {
            "choices": reception.life_event_choices(defs), "priorities": reception.PRIORITY_CHOICES, "errors": {},
            "chosen": [], "priority": "", "code_error": exc.message, "code": code}, status=exc.status)
    audit.record(session, action=audit.CASE_CREATED, actor=user, case_id=done.case.id, target="appointment",
                 client=client)
    state = "on_time" if done.on_time else "late"
    return RedirectResponse(f"/reception/tickets/{done.case.id}?checkin={state}", status_code=303)
