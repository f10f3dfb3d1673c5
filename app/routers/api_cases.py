"""Staff API v1 for cases: create from an answers document, read, autosave with a version, list today's."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from app.deps import CounterUser, DefinitionsDep, SessionDep, SettingsDep
from app.schemas import AnswersUpdate, CaseList, CaseOut, CaseSummary, ErrorOut
from app.services import cases
from app.services.clock import local_today

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut}, 422: {"model": ErrorOut},
}
DRAFT = Query(False, description="true なら未入力の必須項目があっても保存する（聞き取り途中の自動保存）")


@router.post("", status_code=201, response_model=CaseOut, responses=ERRORS, summary="来庁（案件）を登録し、整理券を発行する")
def create_case(
    session: SessionDep, settings: SettingsDep, defs: DefinitionsDep, user: CounterUser,
    answers: Annotated[dict[str, Any], Body(description="回答文書（DESIGN.md 3章）")],
    draft: bool = DRAFT,
) -> CaseOut:
    """Validate the answers document, issue the visit's ticket and store the case."""
    today = local_today(settings)
    case = cases.create_case(session, defs=defs, answers=answers, user=user, office=settings.office_code,
                             today=today, draft=draft)
    return CaseOut.full(case, missing=cases.missing_answers(defs, case, today=today))


@router.get("", response_model=CaseList, responses=ERRORS, summary="本日の来庁一覧")
def list_cases(session: SessionDep, settings: SettingsDep, user: CounterUser) -> CaseList:
    """Today's cases of this office, in ticket order."""
    today = local_today(settings)
    rows = cases.list_cases(session, office=settings.office_code, day=today)
    return CaseList(day=today, cases=[CaseSummary.of(c) for c in rows])


@router.get("/{case_id}", response_model=CaseOut, responses=ERRORS, summary="案件を読む")
def get_case(case_id: str, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
             user: CounterUser) -> CaseOut:
    """The case with its answers document."""
    case = cases.get_case_or_raise(session, case_id)
    return CaseOut.full(case, missing=cases.missing_answers(defs, case, today=local_today(settings)))


@router.put(
    "/{case_id}/answers", response_model=CaseOut, responses={**ERRORS, 409: {"model": ErrorOut}},
    summary="回答を保存する（版番号つき）",
)
def put_answers(
    case_id: str, body: AnswersUpdate, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
    user: CounterUser, draft: bool = DRAFT,
) -> CaseOut:
    """Replace the answers; a stale version gets 409 and the stored answers stay as they were."""
    today = local_today(settings)
    case = cases.update_answers(session, defs=defs, case_id=case_id, answers=body.answers,
                                expected_version=body.version, user=user, today=today, draft=draft)
    return CaseOut.full(case, missing=cases.missing_answers(defs, case, today=today))
