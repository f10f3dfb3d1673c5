"""Reception page (受付): large life-event buttons, a priority, and the printed 80 mm ticket with the QR code."""

from __future__ import annotations

from typing import Annotated

import segno
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from app.deps import ClientDep, DefinitionsDep, PageCounterUser, SessionDep, SettingsDep
from app.errors import ValidationFailed
from app.services import audit, reception
from app.services.clock import local_today
from app.services.wait_estimate import wait_defaults
from app.templating import staff_page

router = APIRouter(include_in_schema=False)
CHECKIN_MESSAGES = {"on_time": "予約の受付をしました。優先してお呼びします",
                    "late": "予約の時間を過ぎているため、通常の順番でお呼びします"}
NO_STORE = {"Cache-Control": "no-store"}


_render = staff_page  # the signed-in user, CSRF token and idle timeout; never cached


@router.get("/reception", response_class=HTMLResponse)
def reception_page(request: Request, defs: DefinitionsDep, user: PageCounterUser) -> HTMLResponse:
    """Life events as large buttons, a priority, one button to print the ticket."""
    return _render(request, "reception/index.html", {"choices": reception.life_event_choices(defs),
                                                     "priorities": reception.PRIORITY_CHOICES, "errors": {},
                                                     "chosen": [], "priority": ""})


@router.post("/reception/tickets", response_class=HTMLResponse)
def issue_ticket(
    request: Request, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep, user: PageCounterUser,
    client: ClientDep, life_events: Annotated[list[str] | None, Form()] = None,
    priority_reason: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """Issue the ticket and open it for printing; a missing choice comes back on the page."""
    try:
        case, _ticket = reception.issue(session, defs=defs, life_events=life_events or [],
                                        priority_reason=priority_reason, user=user, office=settings.office_code,
                                        today=local_today(settings), defaults=wait_defaults(settings, defs))
    except ValidationFailed as exc:
        errors = {d["field"]: d["message"] for d in exc.details or []}
        return _render(request, "reception/index.html", {
            "choices": reception.life_event_choices(defs), "priorities": reception.PRIORITY_CHOICES, "errors": errors,
            "chosen": life_events or [], "priority": priority_reason}, status=422)
    audit.record(session, action=audit.CASE_CREATED, actor=user, case_id=case.id, target="reception", client=client)
    return RedirectResponse(f"/reception/tickets/{case.id}", status_code=303)


@router.get("/reception/tickets/{case_id}", response_class=HTMLResponse)
def ticket_page(request: Request, case_id: str, session: SessionDep, settings: SettingsDep,
                user: PageCounterUser) -> HTMLResponse:
    """The ticket in an 80 mm receipt layout; it prints itself once (the page stays for a reprint)."""
    view = reception.ticket_view(session, case_id=case_id, base_url=settings.public_base_url, tz=settings.tz)
    # segno's SVG is built from our own URL (no user input), so it is safe to embed as markup.
    qr = Markup(segno.make_qr(view["url"], error="m").svg_inline(scale=5, title="スマートフォン用ページのQRコード"))  # noqa: S704
    checkin = CHECKIN_MESSAGES.get(request.query_params.get("checkin", ""), "")
    return _render(request, "reception/ticket.html", {"ticket": view, "qr_svg": qr, "city_name": settings.city_name,
                                                      "office_name": settings.office_name, "checkin_message": checkin})
