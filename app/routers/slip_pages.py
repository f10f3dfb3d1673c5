"""The routing slip as a printable HTML page for staff: GET /cases/{case_id}/slip."""

from __future__ import annotations

import segno
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from app.deps import ClientDep, DefinitionsDep, PageCounterUser, SessionDep, SettingsDep
from app.services import audit, routing
from app.services.cases import get_case_or_raise
from app.templating import get_templates

router = APIRouter(tags=["pages"], include_in_schema=False)

# Staff open the page in the browser they are signed in with (cookie session; the API has JSON and PDF).
PageUser = PageCounterUser


@router.get("/cases/{case_id}/slip", response_class=HTMLResponse)
def slip_page(request: Request, case_id: str, session: SessionDep, defs: DefinitionsDep, settings: SettingsDep,
              user: PageUser, client: ClientDep) -> HTMLResponse:
    """The slip with every step, its status, the exit check and the QR code to the resident page."""
    case = get_case_or_raise(session, case_id)
    slip = routing.slip_view(session, defs=defs, case=case)
    check = routing.exit_check(session, defs=defs, case=case)
    audit.record(session, action=audit.CASE_READ, actor=user, case_id=case.id, target="slip-page", client=client)
    url = routing.resident_url(settings.public_base_url, case)
    # segno's SVG is built from our own URL (no user input), so it is safe to embed as markup.
    qr = Markup(segno.make_qr(url, error="m").svg_inline(scale=4, title="住民用ページのQRコード"))  # noqa: S704
    response = get_templates().TemplateResponse(request, "slip/slip.html", {
        "slip": slip, "missed": check, "city_name": settings.city_name, "office_name": settings.office_name,
        "resident_url": url, "qr_svg": qr, "stage_count": len({s["stage"] for s in slip["steps"]
                                                               if s["status"] != "cancelled"}),
    })
    response.headers["Cache-Control"] = "no-store"
    return response
