"""Department API v1: a department lists, claims and finishes its own routing-slip steps.

Authentication: `Authorization: Bearer <token>` from `kakanai departments token create DEPT` (or a
department clerk's own login). Scope rules are in app/services/departments.py: another department's
path is 403, another department's step id under one's own path is 404.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Response

from app.deps import ClientDep, CurrentUser, DefinitionsDep, SessionDep, SettingsDep
from app.forms.schema import Department
from app.models import User
from app.routers.api_cases import ERRORS
from app.schemas import (
    DepartmentStepDetail,
    DepartmentStepList,
    DepartmentStepOut,
    ErrorOut,
    NeedsResidentIn,
    StepActionIn,
)
from app.services import audit, departments, documents, routing

StepId = Annotated[int, Path(ge=1, le=2**31 - 1, description="手続き（ステップ）の番号")]

router = APIRouter(prefix="/api/v1/departments/{department}", tags=["departments"])
CONFLICT: dict[int | str, dict[str, Any]] = {**ERRORS, 409: {"model": ErrorOut}}
PDF_RESPONSE: dict[int | str, dict[str, Any]] = {**ERRORS, 200: {"content": {"application/pdf": {}}}}


def department_scope(department: str, user: CurrentUser, defs: DefinitionsDep) -> Department:
    """The department of the path, if the caller may act for it (403 otherwise)."""
    return departments.authorize(defs, user=user, department_id=department)


DepartmentDep = Annotated[Department, Depends(department_scope)]
OptionalAction = Annotated[StepActionIn | None, Body()]
STATUS_HELP = "状態で絞る（カンマ区切り: pending,in_progress,needs_resident,done,cancelled）"
SINCE_HELP = "この時刻以降（その時刻を含む）に変わった手続きだけ（ISO 8601。タイムゾーン省略時はUTC。+ は %2B と書く）"


def _step_out(session: SessionDep, defs: DefinitionsDep, department: str, step_id: StepId) -> dict[str, Any]:
    # Transition responses carry the step, not the answers: the caller fetched what it needs before.
    return routing.department_step_detail(session, defs=defs, department_id=department, step_id=step_id,
                                          with_answers=False)


def _audit_step(session: SessionDep, user: User, step: dict[str, Any], action: str, client: ClientDep) -> None:
    audit.record(session, action=audit.STEP_UPDATED, actor=user, case_id=step["case_id"],
                 target=f"step:{step['department']}:{step['id']}:{action}", client=client)


@router.get("/steps", response_model=DepartmentStepList, responses=ERRORS, summary="この課の手続き一覧（カーソル・since で差分取得）")
def list_steps(
    department: str, dep: DepartmentDep, session: SessionDep, defs: DefinitionsDep, user: CurrentUser, client: ClientDep,
    status: Annotated[str | None, Query(description=STATUS_HELP)] = None,
    since: Annotated[dt.datetime | None, Query(description=SINCE_HELP)] = None,
    cursor: Annotated[str | None, Query(description="前の応答の next_cursor", max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=routing.MAX_LIMIT, description="1ページの件数")] = routing.DEFAULT_LIMIT,
    ready: Annotated[bool | None, Query(description="true: 先に必要な手続きが全部終わったものだけ")] = None,
) -> dict[str, Any]:
    """The department's steps ordered by (updated_at, id); poll with `next_cursor` to get only what changed since."""
    page = routing.list_department_steps(session, defs=defs, department_id=department,
                                         statuses=routing.parse_statuses(status), since=since, cursor=cursor,
                                         limit=limit, ready=ready)
    audit.record(session, action=audit.DEPARTMENT_FETCH, actor=user, target=f"steps:{department}:{len(page['steps'])}",
                 client=client)
    return page


@router.get("/steps/{step_id}", response_model=DepartmentStepDetail, responses=ERRORS, summary="手続きの詳細と必要な回答")
def get_step(department: str, step_id: StepId, dep: DepartmentDep, session: SessionDep, defs: DefinitionsDep,
             user: CurrentUser, client: ClientDep) -> dict[str, Any]:
    """The step, the visit's numbers and only the answers its applications use (My Numbers masked unless needed)."""
    step = routing.department_step_detail(session, defs=defs, department_id=department, step_id=step_id)
    target = f"step:{department}:{step_id}" + (f":unmasked={','.join(step['unmasked'])}" if step["unmasked"] else "")
    audit.record(session, action=audit.DEPARTMENT_FETCH, actor=user, case_id=step["case_id"], target=target,
                 client=client)
    return step


@router.get("/steps/{step_id}/applications/{instance_id}.pdf", response_class=Response, responses=PDF_RESPONSE,
            summary="この手続きの申請書（PDF）")
def step_application_pdf(department: str, step_id: StepId, instance_id: str, dep: DepartmentDep, session: SessionDep,
                         defs: DefinitionsDep, settings: SettingsDep, user: CurrentUser, client: ClientDep) -> Response:
    """One pre-filled form of this step (only the step's own applications)."""
    _, case_id = routing.step_application_pdf(session, defs=defs, department_id=department, step_id=step_id,
                                              instance_id=instance_id)
    pdf = documents.render_instance_pdf(session, defs=defs, case_id=case_id, instance_id=instance_id,
                                        city_name=settings.city_name, actor=user)
    audit.record(session, action=audit.PDF_DOWNLOAD, actor=user, case_id=case_id, target=pdf.filename, client=client)
    return Response(pdf.content, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{pdf.filename}"', "Cache-Control": "no-store",
        "X-Definitions-Fingerprint": defs.fingerprint})


@router.post("/steps/{step_id}/claim", response_model=DepartmentStepOut, responses=CONFLICT, summary="手続きを受け付ける（処理中にする）")
def claim(department: str, step_id: StepId, dep: DepartmentDep, session: SessionDep, defs: DefinitionsDep,
          user: CurrentUser, client: ClientDep, body: OptionalAction = None) -> dict[str, Any]:
    """pending → in_progress. 409 when another clerk claimed it first or a prerequisite step is not done yet."""
    routing.claim_step(session, defs=defs, department_id=department, step_id=step_id, actor=user,
                       expected_version=body.version if body else None)
    step = _step_out(session, defs, department, step_id)
    _audit_step(session, user, step, "claim", client)
    return step


@router.post("/steps/{step_id}/done", response_model=DepartmentStepOut, responses=CONFLICT, summary="手続きを完了にする")
def done(department: str, step_id: StepId, dep: DepartmentDep, session: SessionDep, defs: DefinitionsDep,
         user: CurrentUser, client: ClientDep, body: OptionalAction = None) -> dict[str, Any]:
    """in_progress → done (final)."""
    routing.complete_step(session, department_id=department, step_id=step_id, actor=user,
                          expected_version=body.version if body else None)
    step = _step_out(session, defs, department, step_id)
    _audit_step(session, user, step, "done", client)
    return step


@router.post("/steps/{step_id}/needs-resident", response_model=DepartmentStepOut, responses=CONFLICT,
             summary="本人の来庁が必要にする（理由と窓口）")
def needs_resident(department: str, step_id: StepId, body: NeedsResidentIn, dep: DepartmentDep, session: SessionDep,
                   defs: DefinitionsDep, user: CurrentUser, client: ClientDep) -> dict[str, Any]:
    """in_progress → needs_resident; the reason (plain Japanese) and counter are shown on the resident's phone."""
    routing.needs_resident(session, defs=defs, department_id=department, step_id=step_id, actor=user,
                           reason=body.reason, counter=body.counter, expected_version=body.version)
    step = _step_out(session, defs, department, step_id)
    _audit_step(session, user, step, "needs_resident", client)
    return step


@router.post("/steps/{step_id}/resume", response_model=DepartmentStepOut, responses=CONFLICT,
             summary="本人が来庁したので処理を再開する")
def resume(department: str, step_id: StepId, dep: DepartmentDep, session: SessionDep, defs: DefinitionsDep,
           user: CurrentUser, client: ClientDep, body: OptionalAction = None) -> dict[str, Any]:
    """needs_resident → in_progress."""
    routing.resume_step(session, department_id=department, step_id=step_id, actor=user,
                        expected_version=body.version if body else None)
    step = _step_out(session, defs, department, step_id)
    _audit_step(session, user, step, "resume", client)
    return step
