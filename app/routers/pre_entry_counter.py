"""The counter's side of pre-entry: the 事前入力コード field (typed, USB scanner or camera) opens the visit."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from app.deps import ClientDep, DefinitionsDep, PageCounterUser, SessionDep, SettingsDep
from app.routers import counter as counter_pages
from app.services import audit, pre_entry, queue
from app.services.clock import local_today
from app.services.wait_estimate import wait_defaults
from app.templating import staff_page

router = APIRouter(include_in_schema=False)


@router.post("/counter/pre-entry")
def open_pre_entry(request: Request, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
                   user: PageCounterUser, client: ClientDep,
                   code: Annotated[str, Form(max_length=300)] = "") -> Response:
    """The resident shows their pre-entry code: the visit opens with their answers marked 本人入力."""
    try:
        if not pre_entry.normalise_code(code):
            raise pre_entry.DraftNotFound("事前入力コード（例: ABCD-EFGH）を入力するか、QRコードを読み取ってください")
        case, _answered = pre_entry.hand_over(session, defs=defs, code=code, user=user, office=settings.office_code,
                                              today=local_today(settings))
    except pre_entry.DraftNotFound as exc:
        page = counter_pages.today(request, session, settings, defs, user)
        return staff_page(request, "counter/today.html", {**page.context,  # type: ignore[attr-defined]
                                                          "pre_error": exc.message, "pre_code": code[:40]}, status=404)
    audit.record(session, action=audit.CASE_CREATED, actor=user, case_id=case.id, target="pre-entry", client=client)
    desk = (request.cookies.get("kakanai_counter") or "1").strip()[:40] or "1"
    queue.issue_ticket(session, case=case, queues=defs.departments.keys(), defaults=wait_defaults(settings, defs))
    queue.start_service(session, case_id=case.id, counter=desk, actor=user)
    return RedirectResponse(f"/counter/visits/{case.id}?new=1", status_code=303)
