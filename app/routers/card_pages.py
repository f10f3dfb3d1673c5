"""Counter page endpoints for issue 16: card pairing codes, confirming marked answers, opening a planned visit."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse, RedirectResponse

from app.deps import ClientDep, DefinitionsDep, PageCounterUser, SessionDep, SettingsDep
from app.errors import ValidationFailed
from app.services import audit, card_pairing, planned_visits, queue, routing
from app.services.clock import local_today
from app.services.wait_estimate import wait_defaults

router = APIRouter(include_in_schema=False)
NO_STORE = {"Cache-Control": "no-store"}


@router.post("/counter/visits/{case_id}/card-pairing")
def new_pairing(case_id: str, session: SessionDep, user: PageCounterUser, client: ClientDep,
                payload: Annotated[dict[str, Any] | None, Body()] = None) -> JSONResponse:
    """A one-time code for the counter's card bridge (for a given member, or a new one)."""
    member_id = (payload or {}).get("member_id") or None
    if member_id is not None and (not isinstance(member_id, str) or len(member_id) > 32):
        raise ValidationFailed(details=[{"field": "member_id", "message": "世帯員番号が正しくありません"}])
    code, row = card_pairing.create_pairing(session, case_id=case_id, member_id=member_id, user=user, client=client)
    return JSONResponse({"code": card_pairing.format_code(code), "pairing_id": row.id,
                         "expires_in": int(card_pairing.LIFETIME.total_seconds())}, headers=NO_STORE)


@router.get("/counter/visits/{case_id}/card-pairing/{pairing_id}")
def pairing_status(case_id: str, pairing_id: int, session: SessionDep, user: PageCounterUser) -> JSONResponse:
    """waiting / used / expired (the tablet polls this and reloads the interview once the card is in)."""
    return JSONResponse(card_pairing.pairing_status(session, case_id=case_id, pairing_id=pairing_id),
                        headers=NO_STORE)


@router.post("/counter/visits/{case_id}/sources/confirm")
def confirm_sources(case_id: str, session: SessionDep, user: PageCounterUser) -> JSONResponse:
    """The clerk checked the answers marked カード / 転入予約 with the resident; the marks go."""
    # Through routing: a step held back by the marks becomes ready, and polling departments see it.
    count = routing.confirm_answers(session, case_id=case_id, actor=user)
    return JSONResponse({"confirmed": count}, headers=NO_STORE)


@router.post("/counter/planned/{planned_id}/start")
def start_planned(request: Request, planned_id: str, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
                  user: PageCounterUser, client: ClientDep) -> RedirectResponse:
    """A household from 本日の来庁予定 has arrived: issue its ticket and open the interview with the imported answers."""
    day = local_today(settings)
    case = planned_visits.start_planned(session, defs=defs, planned_id=planned_id, user=user,
                                        office=settings.office_code, today=day)
    audit.record(session, action=audit.CASE_CREATED, actor=user, case_id=case.id, target="planned visit", client=client)
    desk = (request.cookies.get("kakanai_counter") or "1").strip()[:40] or "1"
    queue.issue_ticket(session, case=case, queues=defs.departments.keys(), defaults=wait_defaults(settings, defs))
    queue.start_service(session, case_id=case.id, counter=desk, actor=user)
    return RedirectResponse(f"/counter/visits/{case.id}?new=1", status_code=303)
