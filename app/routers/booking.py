"""Public booking pages for residents' phones (/booking) and the web ticket (/ticket); no login.

A booking's code is its only credential (10 characters from 32, about 50 bits): the confirmation,
its .ics and the cancel button live under /booking/<code>. Nothing personal is asked except an
optional e-mail address for the confirmation, which is erased once it is sent.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import segno
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from app import i18n
from app.deps import ClientDep, DefinitionsDep, SessionDep, SettingsDep
from app.errors import AppError, ValidationFailed
from app.forms import slots
from app.forms.loader import DefinitionSet
from app.i18n import N_
from app.models import utcnow
from app.routers.guide import EVENT_LABELS
from app.routers.resident import PRIVATE_HEADERS, language, page_context, remember_language
from app.services import appointment_invite, appointments, remote_tickets
from app.services.appointment_invite import local_date
from app.services.clock import local_today
from app.services.routing import resident_url
from app.services.wait_estimate import wait_defaults
from app.settings import Settings
from app.templating import get_templates

router = APIRouter(tags=["booking"], include_in_schema=False)

STATUS_TEXT = {
    "booked": N_("予約しています"),
    "checked_in": N_("受付が済みました"),
    "cancelled": N_("取り消しました"),
    "no_show": N_("予約の時間を過ぎました"),
}
def purposes(defs: DefinitionSet, gettext: Any) -> list[dict[str, str]]:
    """What a resident can book: each life event of each bookable queue, with where it is handled."""
    out = []
    for item in defs.appointments.values():
        dep = defs.departments.get(item.queue)
        place = gettext(dep.name) if dep else gettext("総合窓口")
        for event in item.life_events:
            out.append({"value": f"{item.queue}:{event}", "label": gettext(EVENT_LABELS.get(event, event)),
                        "place": place})
    return out


def _render(request: Request, template: str, lang: str, context: dict[str, Any], status: int = 200) -> Response:
    response = get_templates().TemplateResponse(request, template, {**page_context(request, lang), **context},
                                                status_code=status, headers=PRIVATE_HEADERS)
    return remember_language(request, response, lang)


def _split(purpose: str) -> tuple[str, str]:
    queue_id, _, event = (purpose or "").partition(":")
    return queue_id, event


def _form_context(session: Any, defs: DefinitionSet, settings: Settings, lang: str, purpose: str, day_text: str,
                  ) -> dict[str, Any]:
    gettext = i18n.gettext_for(lang)
    queue_id, _event = _split(purpose)
    item = defs.appointments.get(queue_id) if purpose else None
    today = local_today(settings)
    days: list[dict[str, Any]] = []
    chosen_day = None
    slot_list: list[dict[str, Any]] = []
    if item is not None:
        for day in slots.bookable_days(item, today, calendar=defs.calendar):
            days.append({"value": day.isoformat(), "label": local_date(day, lang)})
        try:
            chosen_day = dt.date.fromisoformat(day_text) if day_text else None
        except ValueError:
            chosen_day = None
        if chosen_day is not None and chosen_day.isoformat() in {d["value"] for d in days}:
            slot_list = appointments.day_slots(session, defs=defs, office=settings.office_code, queue_id=queue_id,
                                               day=chosen_day, tz=settings.tz)
        else:
            chosen_day = None
    return {"purposes": purposes(defs, gettext), "purpose": purpose if item else "", "days": days,
            "day": chosen_day.isoformat() if chosen_day else "", "day_label": local_date(chosen_day, lang) if chosen_day else "",
            "slots": slot_list, "errors": {}, "email": "", "email_enabled": bool(settings.smtp_host)}


@router.get("/booking", response_class=HTMLResponse)
def booking_page(request: Request, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
                 purpose: str = "", day: str = "", code: str = "") -> Response:
    """Choose what for, the day, then a free slot (each step a plain GET form; works without JavaScript).

    `?code=` finds a booking by the code alone (a booking made by staff on the phone has no link).
    """
    lang = language(request)
    context = _form_context(session, defs, settings, lang, purpose[:120], day[:10])
    if code:
        clean = appointments.clean_code(code[:64])
        if clean is not None:
            return RedirectResponse(f"/booking/{clean}?lang={lang}", status_code=303)
        context["code_error"] = i18n.gettext_for(lang)(appointments.UNKNOWN_CODE)
        context["code"] = code[:64]
    return _render(request, "resident/booking.html", lang, context, status=422 if code else 200)


@router.post("/booking", response_class=HTMLResponse)
def book(request: Request, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep, client: ClientDep,
         purpose: Annotated[str, Form(max_length=120)] = "", day: Annotated[str, Form(max_length=10)] = "",
         start: Annotated[str, Form(max_length=40)] = "", email: Annotated[str, Form(max_length=320)] = "") -> Response:
    """Book the chosen slot; the confirmation page follows (or the form again with the message)."""
    lang = language(request)
    queue_id, event = _split(purpose)
    try:
        # Without an SMTP server nothing would ever be mailed: the address is not taken at all.
        row = appointments.book(session, defs=defs, office=settings.office_code, queue_id=queue_id, life_event=event,
                                start=start, tz=settings.tz, email=email if settings.smtp_host else "", language=lang,
                                channel="web", limit_per_hour=settings.booking_limit_per_hour,
                                client_key=remote_tickets.client_key(client.ip, secret=settings.secret_key.get_secret_value()))
    except AppError as exc:
        gettext = i18n.gettext_for(lang)
        context = _form_context(session, defs, settings, lang, purpose, day)
        details = exc.details if isinstance(exc, ValidationFailed) else [{"field": "start", "message": exc.message}]
        context["errors"] = {d["field"]: gettext(d["message"]) for d in details or []}
        context["email"] = email
        return _render(request, "resident/booking.html", lang, context, status=exc.status)
    return RedirectResponse(f"/booking/{row.code}?lang={lang}", status_code=303)


def _booking_context(session: Any, defs: DefinitionSet, settings: Settings, code: str, lang: str) -> dict[str, Any]:
    row = appointments.get_by_code_or_raise(session, code)
    gettext = i18n.gettext_for(lang)
    start = row.start_at.astimezone(settings.tz)
    dep = defs.departments.get(row.queue)
    place = (f"{gettext(dep.name)}（{gettext(dep.location)}）" if dep and dep.location else
             gettext(dep.name) if dep else gettext("総合窓口"))
    # The QR holds the code itself: reception's scanner types it into the check-in field.
    qr = Markup(segno.make_qr(appointments.display_code(row.code), error="m")  # noqa: S704 - our own code, no input
                .svg_inline(scale=6, title=gettext("予約番号のQRコード")))
    return {"booking": row, "code": appointments.display_code(row.code), "date": local_date(start.date(), lang),
            "time": f"{start:%H:%M}", "place": place, "event": gettext(EVENT_LABELS.get(row.life_event, row.life_event)),
            "status_text": gettext(STATUS_TEXT.get(row.status, row.status)), "qr_svg": qr,
            "cancellable": row.status == "booked" and row.start_at > utcnow(),
            "early": settings.appointment_checkin_early_minutes, "late": settings.appointment_checkin_late_minutes}


@router.get("/booking/{code}.ics")
def booking_ics(code: str, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep) -> Response:
    """The booking as an iCalendar invitation (add it to the phone's calendar)."""
    row = appointments.get_by_code_or_raise(session, code)
    data = appointment_invite.ics(row, defs=defs, city_name=settings.city_name, base_url=settings.public_base_url,
                                  now=utcnow())
    return Response(data, media_type="text/calendar; charset=utf-8", headers={
        **PRIVATE_HEADERS, "Content-Disposition": f'attachment; filename="yoyaku-{row.code}.ics"'})


@router.get("/booking/{code}", response_class=HTMLResponse)
def booking_confirmation(request: Request, code: str, session: SessionDep, settings: SettingsDep,
                         defs: DefinitionsDep) -> Response:
    """The confirmation: when, where, the code and its QR for reception, the .ics, the cancel button."""
    lang = language(request)
    try:
        context = _booking_context(session, defs, settings, code, lang)
    except AppError as exc:
        return _render(request, "resident/not_found.html", lang, {"message": i18n.gettext_for(lang)(exc.message)},
                       status=404)
    context["cancelled_now"] = request.query_params.get("cancelled") == "1"
    return _render(request, "resident/booking_done.html", lang, context)


@router.post("/booking/{code}/cancel", response_class=HTMLResponse)
def booking_cancel(request: Request, code: str, session: SessionDep) -> Response:
    """Cancel with the code; the place is free again."""
    lang = language(request)
    try:
        row = appointments.cancel(session, code=code)
    except AppError as exc:
        return _render(request, "resident/not_found.html", lang, {"message": i18n.gettext_for(lang)(exc.message)},
                       status=exc.status)
    return RedirectResponse(f"/booking/{row.code}?lang={lang}&cancelled=1", status_code=303)


# --- The web ticket -----------------------------------------------------------------------------------------


def _ticket_context(defs: DefinitionSet, settings: Settings, lang: str) -> dict[str, Any]:
    gettext = i18n.gettext_for(lang)
    info = defs.fields.get("life_events")
    events = [str(c.value) for c in (info.field.choices or [])] if info else []
    return {"events": [{"value": e, "label": gettext(EVENT_LABELS.get(e, e))} for e in events],
            "open": remote_tickets.is_open(defs, now=utcnow(), tz=settings.tz),
            "hours": "、".join(f"{h.from_}–{h.to}" for h in defs.opening_hours), "error": ""}


@router.get("/ticket", response_class=HTMLResponse)
def web_ticket_page(request: Request, settings: SettingsDep, defs: DefinitionsDep) -> Response:
    """Take the visit's ticket from the phone during opening hours."""
    lang = language(request)
    return _render(request, "resident/web_ticket.html", lang, _ticket_context(defs, settings, lang))


@router.post("/ticket", response_class=HTMLResponse)
def web_ticket(request: Request, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep, client: ClientDep,
               life_event: Annotated[str, Form(max_length=40)] = "") -> Response:
    """Issue the ticket and open its phone page (the status page that follows it and offers notices)."""
    lang = language(request)
    key = remote_tickets.client_key(client.ip, secret=settings.secret_key.get_secret_value())
    try:
        case, _ticket = remote_tickets.take(session, defs=defs, life_event=life_event, key=key,
                                            office=settings.office_code, tz=settings.tz,
                                            limit=settings.remote_ticket_limit_per_hour,
                                            defaults=wait_defaults(settings, defs))
    except AppError as exc:
        context = _ticket_context(defs, settings, lang)
        message = exc.details[0]["message"] if isinstance(exc, ValidationFailed) and exc.details else exc.message
        context["error"] = i18n.gettext_for(lang)(message)
        return _render(request, "resident/web_ticket.html", lang, context, status=exc.status)
    return RedirectResponse(f"{resident_url('', case)}?lang={lang}", status_code=303)
