"""Staff API v1 for cases: create from an answers document, read, autosave with a version, list today's."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from sqlalchemy.orm import Session

from app.deps import ClientDep, CounterUser, DefinitionsDep, SessionDep, SettingsDep
from app.errors import ValidationFailed
from app.forms.loader import DefinitionSet
from app.models import Case, User
from app.schemas import AnswersUpdate, CaseList, CaseOut, CaseSummary, ErrorOut
from app.services import audit, cases, masking
from app.services.clock import local_today

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut}, 422: {"model": ErrorOut},
}
DRAFT = Query(False, description="true なら未入力の必須項目があっても保存する（聞き取り途中の自動保存）")
REVEAL = Query(default_factory=list, description="マスクせずに返す番号: my_number, account_number, all（監査ログに記録される）")


def _shown(session: Session, case: Case, defs: DefinitionSet, *, today: dt.date, reveal: list[str], user: User,
           client: audit.Client) -> CaseOut:
    # My Numbers and account numbers are masked unless the caller asks for them; that request is audited.
    try:
        kinds = masking.parse_reveal(reveal)
    except ValueError:
        raise ValidationFailed(details=[{"field": "reveal", "message": "my_number, account_number, all のいずれかを指定してください"}]) \
            from None
    if kinds:
        audit.record(session, action=audit.REVEAL, actor=user, case_id=case.id, target=",".join(sorted(kinds)), client=client)
    out = CaseOut.full(case, missing=cases.missing_answers(defs, case, today=today))
    out.answers = masking.mask_answers(out.answers, reveal=kinds)
    return out


@router.post("", status_code=201, response_model=CaseOut, responses=ERRORS, summary="来庁（案件）を登録し、整理券を発行する")
def create_case(
    session: SessionDep, settings: SettingsDep, defs: DefinitionsDep, user: CounterUser, client: ClientDep,
    answers: Annotated[dict[str, Any], Body(description="回答文書（DESIGN.md 3章）")],
    draft: bool = DRAFT, reveal: list[str] = REVEAL,
) -> CaseOut:
    """Validate the answers document, issue the visit's ticket and store the case."""
    today = local_today(settings)
    case = cases.create_case(session, defs=defs, answers=answers, user=user, office=settings.office_code,
                             today=today, draft=draft, client_date=settings.client_visit_date)
    audit.record(session, action=audit.CASE_CREATED, actor=user, case_id=case.id, client=client)
    return _shown(session, case, defs, today=today, reveal=reveal, user=user, client=client)


@router.get("", response_model=CaseList, responses=ERRORS, summary="本日の来庁一覧")
def list_cases(session: SessionDep, settings: SettingsDep, user: CounterUser) -> CaseList:
    """Today's cases of this office, in ticket order."""
    today = local_today(settings)
    rows = cases.list_cases(session, office=settings.office_code, day=today)
    return CaseList(day=today, cases=[CaseSummary.of(c) for c in rows])


@router.get("/{case_id}", response_model=CaseOut, responses=ERRORS, summary="案件を読む")
def get_case(case_id: str, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
             user: CounterUser, client: ClientDep, reveal: list[str] = REVEAL) -> CaseOut:
    """The case with its answers document (My Numbers and account numbers masked unless revealed)."""
    case = cases.get_case_or_raise(session, case_id)
    audit.record(session, action=audit.CASE_READ, actor=user, case_id=case.id, client=client)
    return _shown(session, case, defs, today=local_today(settings), reveal=reveal, user=user, client=client)


@router.put(
    "/{case_id}/answers", response_model=CaseOut, responses={**ERRORS, 409: {"model": ErrorOut}},
    summary="回答を保存する（版番号つき）",
)
def put_answers(
    case_id: str, body: AnswersUpdate, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
    user: CounterUser, client: ClientDep, draft: bool = DRAFT, reveal: list[str] = REVEAL,
) -> CaseOut:
    """Replace the answers; a stale version gets 409 and the stored answers stay as they were.

    A masked number sent back unchanged (`********9018`) keeps the stored number.
    """
    today = local_today(settings)
    case = cases.update_answers(session, defs=defs, case_id=case_id, answers=body.answers,
                                expected_version=body.version, user=user, today=today, draft=draft,
                                client_date=settings.client_visit_date)
    audit.record(session, action=audit.CASE_UPDATED, actor=user, case_id=case.id, target=f"version {case.version}",
                 client=client)
    return _shown(session, case, defs, today=today, reveal=reveal, user=user, client=client)
