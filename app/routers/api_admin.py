"""Administrators' API: search and export the audit log, reload the form definitions."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from app.deps import AdminUser, ClientDep, SessionDep, SettingsDep
from app.errors import ValidationFailed
from app.forms.loader import DefinitionError
from app.routers.api_cases import ERRORS
from app.schemas import ErrorOut
from app.services import audit
from app.services.definitions import DefinitionRegistry
from app.settings import Settings

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


class AuditEntryOut(BaseModel):
    """One audit log entry."""

    id: int
    at: dt.datetime
    actor: str
    actor_id: int | None
    action: str
    case_id: str | None
    target: str
    outcome: str
    ip: str
    user_agent: str


class AuditPage(BaseModel):
    """A page of entries, newest first; pass `next_cursor` as `cursor` for the next page."""

    entries: list[AuditEntryOut]
    next_cursor: int | None


class ReloadOut(BaseModel):
    """The definitions now in use."""

    status: str
    fingerprint: str
    applications: int
    departments: int


class DefinitionsRejected(ValidationFailed):
    """A broken definition set: every problem is listed and the previous set stays in use."""

    code = "definitions_invalid"
    message = "様式定義に問題があるため読み込みませんでした。以前の定義をそのまま使っています"
    keep_changes = True  # the audit entry of the refused reload is kept

    def __init__(self, report: str, details: list[dict[str, Any]]):
        super().__init__(details=details)
        self.report = report

    def body(self) -> dict[str, Any]:
        """The JSON body, with the report exactly as `kakanai check` prints it."""
        return {**super().body(), "report": self.report}


def _when(value: dt.datetime | None, settings: Settings) -> dt.datetime | None:
    # A time typed without a zone is the city's local time (staff think in JST, the log stores UTC).
    if value is None:
        return None
    if not 1900 <= value.year <= 2100:  # 0001-01-01 or 9999-12-31 would overflow in the zone conversion
        raise ValidationFailed(details=[{"field": "since/until", "message": "日時は1900年から2100年までで指定してください"}])
    return (value.replace(tzinfo=settings.tz) if value.tzinfo is None else value).astimezone(dt.UTC)


def _filter(settings: Settings, actor: str | None, action: str | None, case_id: str | None,
            since: dt.datetime | None, until: dt.datetime | None) -> audit.AuditFilter:
    return audit.AuditFilter(actor=actor, action=action, case_id=case_id, since=_when(since, settings),
                             until=_when(until, settings))


ActorQ = Annotated[str | None, Query(max_length=64, description="職員のユーザー名（ログイン失敗は入力された名前）")]
ActionQ = Annotated[str | None, Query(max_length=40, description="操作: " + ", ".join(audit.ACTIONS))]
CaseQ = Annotated[str | None, Query(max_length=32, description="案件ID")]
SinceQ = Annotated[dt.datetime | None, Query(description="この日時以降（タイムゾーンなしは市の現地時刻）")]
UntilQ = Annotated[dt.datetime | None, Query(description="この日時より前")]


@router.get("/audit", response_model=AuditPage, responses=ERRORS, summary="監査ログを検索する")
def search_audit(
    session: SessionDep, settings: SettingsDep, user: AdminUser, actor: ActorQ = None, action: ActionQ = None,
    case_id: CaseQ = None, since: SinceQ = None, until: UntilQ = None,
    cursor: Annotated[int | None, Query(ge=1, le=2**62, description="前のページの next_cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_PAGE)] = 100,
) -> AuditPage:
    """Entries newest first, filtered by who, what, which case and when."""
    flt = _filter(settings, actor, action, case_id, since, until)
    rows = audit.search(session, flt=flt, cursor=cursor, limit=limit)
    return AuditPage(entries=[AuditEntryOut.model_validate(audit.as_dict(r)) for r in rows],
                     next_cursor=rows[-1].id if len(rows) == limit else None)


@router.get("/audit.csv", response_class=Response, summary="監査ログをCSVで書き出す",
            responses={**ERRORS, 200: {"content": {"text/csv": {}}}})
def export_audit(
    session: SessionDep, settings: SettingsDep, user: AdminUser, client: ClientDep, actor: ActorQ = None,
    action: ActionQ = None, case_id: CaseQ = None, since: SinceQ = None, until: UntilQ = None,
) -> Response:
    """Every matching entry as CSV, oldest first (with a local-time column); the export itself is logged."""
    flt = _filter(settings, actor, action, case_id, since, until)
    body = audit.export_csv(session, flt=flt, tz=settings.tz)  # `at` in UTC plus `at_local` in the city's time
    audit.record(session, action=audit.EXPORT, actor=user, target="audit.csv", client=client)
    return Response(body, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": 'attachment; filename="audit_log.csv"', "Cache-Control": "no-store"})


@router.post("/definitions/reload", response_model=ReloadOut,
             responses={**ERRORS, 422: {"model": ErrorOut, "description": "定義の誤り（全件）。以前の定義を使い続ける"}},
             summary="様式定義を読み込み直す")
def reload_definitions(request: Request, session: SessionDep, user: AdminUser, client: ClientDep) -> ReloadOut:
    """Load form_definitions/ again; a broken set is refused with every problem and the last good set stays."""
    registry: DefinitionRegistry = request.app.state.definitions
    try:
        defs = registry.load()
    except DefinitionError as exc:
        audit.record(session, action=audit.DEFINITIONS_RELOAD, actor=user, outcome="rejected",
                     target=f"{len(exc.problems)} problems", client=client)
        details: list[dict[str, Any]] = [
            {"field": f"{p.file}:{p.line}: {p.path or '(root)'}", "message": p.message} for p in exc.problems]
        raise DefinitionsRejected(str(exc), details) from None
    audit.record(session, action=audit.DEFINITIONS_RELOAD, actor=user, target=defs.fingerprint[:16], client=client)
    return ReloadOut(status="ok", fingerprint=defs.fingerprint, applications=len(defs.applications),
                     departments=len(defs.departments))
