"""Department work screen (tablet or PC): the day's steps, claim / done / needs-resident, call the resident.

Server-rendered like the counter pages (cookie session, CSRF); every action goes through the same
services as the department API (app/services/routing.py) and is audited the same way.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from app.deps import ClientDep, DefinitionsDep, PageDepartmentUser, SessionDep, SettingsDep
from app.errors import AppError, NotFound
from app.forms.schema import Department
from app.models import User
from app.services import audit, department_desk, departments, documents, routing
from app.services.clock import local_today
from app.templating import get_templates, staff_page

router = APIRouter(include_in_schema=False)
NO_STORE = {"Cache-Control": "no-store"}


def _scope(defs: Any, user: User, department: str) -> Department:
    return departments.authorize(defs, user=user, department_id=department)


def _desk(request: Request, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep, department: str) -> dict[str, Any]:
    return department_desk.desk_view(session, defs=defs, department_id=department, day=local_today(settings),
                                     tz=settings.tz)


_render = staff_page  # the signed-in user, CSRF token and idle timeout; never cached


@router.get("/department", response_class=HTMLResponse)
def department_home(request: Request, defs: DefinitionsDep, user: PageDepartmentUser) -> Response:
    """A clerk goes to their own department's screen; an administrator picks one."""
    if user.role == "department" and user.department_id:
        return RedirectResponse(f"/department/{user.department_id}", status_code=303)
    return _render(request, "department/choose.html", {"departments": list(defs.departments.values())})


@router.get("/department/{department}", response_class=HTMLResponse)
def desk_page(request: Request, department: str, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
              user: PageDepartmentUser, client: ClientDep) -> HTMLResponse:
    """Ready / in progress / waiting for the resident / later / done today, refreshed while open."""
    _scope(defs, user, department)
    desk = _desk(request, session, settings, defs, department)
    audit.record(session, action=audit.DEPARTMENT_FETCH, actor=user, target=f"desk:{department}", client=client)
    message = request.query_params.get("m", "")
    return _render(request, "department/desk.html", {
        "desk": desk, "reasons": department_desk.RESIDENT_REASONS,
        "message": department_desk_messages.get(message, ""), "city_name": settings.city_name})


department_desk_messages = {
    "claim": "受け付けました（処理中）", "done": "完了にしました", "needs-resident": "本人に来ていただくよう表示しました",
    "resume": "処理を再開しました", "call": "呼び出しました（待合室の表示板と住民の画面に出ています）",
    "arrived": "来庁を受け付けました",
}


@router.get("/department/{department}/desk.json")
def desk_json(request: Request, department: str, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
              user: PageDepartmentUser) -> JSONResponse:
    """The columns as HTML for the screen's periodic refresh (only when the version changed)."""
    _scope(defs, user, department)
    desk = _desk(request, session, settings, defs, department)
    if request.query_params.get("v") == desk["version"]:
        return JSONResponse({"version": desk["version"]}, headers=NO_STORE)
    row = getattr(request.state, "staff_session", None)
    html = get_templates().get_template("department/_columns.html").render(
        desk=desk, reasons=department_desk.RESIDENT_REASONS, csrf_token=row.csrf_token if row else "")
    return JSONResponse({"version": desk["version"], "html": html}, headers=NO_STORE)


@router.post("/department/{department}/steps/{step_id}/{action}")
def step_action(
    request: Request, department: str, step_id: int, action: str, session: SessionDep, settings: SettingsDep,
    defs: DefinitionsDep, user: PageDepartmentUser, client: ClientDep,
    version: Annotated[int | None, Form()] = None, reason_choice: Annotated[str, Form(max_length=200)] = "",
    reason_detail: Annotated[str, Form(max_length=500)] = "", counter: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """One button of the screen; a refusal (another clerk was first, a field error) comes back on the page."""
    _scope(defs, user, department)
    if action not in department_desk.ACTIONS or not 1 <= step_id <= 2**31 - 1:
        raise NotFound("この操作はありません")
    try:
        # A savepoint: a refused action leaves nothing half-done, and the page can still be read and shown.
        with session.begin_nested():
            step = department_desk.act(session, defs=defs, department_id=department, step_id=step_id,
                                       action=action, actor=user, version=version,
                                       reason=department_desk.clean_reason(reason_choice, reason_detail),
                                       counter=counter)
    except AppError as exc:
        desk = _desk(request, session, settings, defs, department)
        details = exc.details if isinstance(exc.details, list) else []
        return _render(request, "department/desk.html", {
            "desk": desk, "reasons": department_desk.RESIDENT_REASONS, "error": exc.message, "details": details,
            "city_name": settings.city_name}, status=exc.status)
    audit.record(session, action=audit.STEP_UPDATED, actor=user, case_id=step.case_id,
                 target=f"step:{department}:{step_id}:{action}", client=client)
    return RedirectResponse(f"/department/{department}?m={action}#step-{step_id}", status_code=303)


@router.get("/department/{department}/steps/{step_id}/applications/{instance_id}.pdf")
def step_pdf(department: str, step_id: int, instance_id: str, session: SessionDep, settings: SettingsDep,
             defs: DefinitionsDep, user: PageDepartmentUser, client: ClientDep) -> Response:
    """One pre-filled form of the step, inline for printing (the same check as the API)."""
    _scope(defs, user, department)
    _, case_id = routing.step_application_pdf(session, defs=defs, department_id=department, step_id=step_id,
                                              instance_id=instance_id)
    pdf = documents.render_instance_pdf(session, defs=defs, case_id=case_id, instance_id=instance_id,
                                        city_name=settings.city_name, actor=user)
    audit.record(session, action=audit.PDF_DOWNLOAD, actor=user, case_id=case_id, target=pdf.filename, client=client)
    return Response(pdf.content, media_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{pdf.filename}"', "Cache-Control": "no-store"})
