"""Staff API v1: a visit's routing slip (JSON, PDF), the exit check and closing the visit."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from app.deps import ClientDep, CounterUser, DefinitionsDep, SessionDep, SettingsDep
from app.routers.api_cases import ERRORS
from app.schemas import CaseClosedOut, ErrorOut, ExitCheckOut, RoutingSlipOut, VisitNotFinishedOut
from app.services import audit, routing

router = APIRouter(prefix="/api/v1/cases/{case_id}", tags=["routing"])
CONFLICT: dict[int | str, dict[str, Any]] = {**ERRORS, 409: {"model": ErrorOut}}
PDF_RESPONSE: dict[int | str, dict[str, Any]] = {**ERRORS, 200: {"content": {"application/pdf": {}}}}


@router.get("/routing-slip", response_model=RoutingSlipOut, responses=ERRORS, summary="回付票を読む")
def get_routing_slip(case_id: str, session: SessionDep, defs: DefinitionsDep, user: CounterUser,
                     client: ClientDep) -> dict[str, Any]:
    """The visit's routing slip: each department's step with its applications, status, stage and order."""
    slip = routing.get_slip(session, defs=defs, case_id=case_id)
    audit.record(session, action=audit.CASE_READ, actor=user, case_id=case_id, target="routing-slip", client=client)
    return slip


@router.post("/routing-slip", response_model=RoutingSlipOut, responses=CONFLICT, summary="回付票を作成・更新する")
def post_routing_slip(case_id: str, session: SessionDep, defs: DefinitionsDep, user: CounterUser,
                      client: ClientDep) -> dict[str, Any]:
    """Build the slip from the answers, or refresh it after they changed (existing steps keep their status)."""
    slip = routing.refresh_slip(session, defs=defs, case_id=case_id, actor=user)
    audit.record(session, action=audit.CASE_UPDATED, actor=user, case_id=case_id, target="routing-slip", client=client)
    return slip


@router.post("/release", responses=CONFLICT, summary="お帰りいただく（各課の処理は続く）")
def release(case_id: str, session: SessionDep, defs: DefinitionsDep, user: CounterUser) -> dict[str, Any]:
    """The counter is done with the resident: they may leave; the phone page tells them when something needs them."""
    case = routing.release_resident(session, defs=defs, case_id=case_id, actor=user)
    return {"case_id": case.id, "released": True}


@router.post("/answer-sources/confirm", responses=ERRORS, summary="本人入力・カード・転入予約の回答を確認済みにする")
def confirm_answer_sources(case_id: str, session: SessionDep, user: CounterUser, client: ClientDep) -> dict[str, int]:
    """The clerk checked every marked answer with the resident: the marks go and the departments' steps may start."""
    count = routing.confirm_answers(session, case_id=case_id, actor=user)
    audit.record(session, action=audit.CASE_UPDATED, actor=user, case_id=case_id, target="answer-sources confirmed",
                 client=client)
    return {"confirmed": count}


@router.get("/routing-slip.pdf", response_class=Response, responses=PDF_RESPONSE, summary="回付票（PDF・A4 1枚）")
def routing_slip_pdf(case_id: str, session: SessionDep, defs: DefinitionsDep, settings: SettingsDep,
                     user: CounterUser, client: ClientDep) -> Response:
    """The slip on one A4 page with the ticket number, the steps in order and the QR code to the resident page."""
    pdf, filename = routing.render_slip_pdf(session, defs=defs, case_id=case_id, city_name=settings.city_name,
                                            office_name=settings.office_name, base_url=settings.public_base_url)
    audit.record(session, action=audit.PDF_DOWNLOAD, actor=user, case_id=case_id, target=filename, client=client)
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


@router.get("/exit-check", response_model=ExitCheckOut, responses=ERRORS, summary="退庁前の確認（漏れの一覧）")
def get_exit_check(case_id: str, session: SessionDep, defs: DefinitionsDep, user: CounterUser,
                   client: ClientDep) -> dict[str, Any]:
    """What still keeps the visit open (open steps, no signature, forms not printed), without closing it."""
    result = routing.exit_check_view(session, defs=defs, case_id=case_id)
    audit.record(session, action=audit.CASE_READ, actor=user, case_id=case_id, target="exit-check", client=client)
    return result


@router.post("/close", response_model=CaseClosedOut, summary="来庁を終了する（退庁）",
             responses={**ERRORS, 409: {"model": VisitNotFinishedOut, "description": "終わっていない手続きの一覧"}})
def close_visit(case_id: str, session: SessionDep, defs: DefinitionsDep, user: CounterUser,
                client: ClientDep) -> CaseClosedOut:
    """Close the visit; refused with 409 and the list of what was missed unless every step is done or cancelled."""
    case = routing.close_case(session, defs=defs, case_id=case_id, actor=user)
    audit.record(session, action=audit.CASE_UPDATED, actor=user, case_id=case_id, target="close", client=client)
    assert case.closed_at is not None
    return CaseClosedOut(case_id=case.id, case_number=case.case_number, status=case.status, closed_at=case.closed_at)
