"""The administrators' dashboard: today's and a period's visit figures beside the survey, SVG charts,
and the same figures as JSON and CSV."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.deps import ClientDep, DefinitionsDep, SessionDep, SettingsDep, page_admin
from app.models import StaffSession, User
from app.routers.api_metrics import csv_response
from app.services import audit, charts, metrics
from app.services.clock import local_today
from app.templating import get_templates

router = APIRouter(include_in_schema=False)

# Who may open the dashboard. The page and its exports use the counter pages' cookie session
# (administrators only). To protect them with the API's bearer token instead, change this one line to
# `DashboardUser = AdminUser` (from app.deps).
DashboardUser = Annotated[User, Depends(page_admin)]

FromQuery = Annotated[str | None, Query(alias="from", max_length=20)]
ToQuery = Annotated[str | None, Query(alias="to", max_length=20)]
DEFAULT_DAYS = 30


def _report(session: Any, settings: Any, defs: Any, start: str | None, end: str | None) -> dict[str, Any]:
    frm, to = metrics.parse_period(start, end, today=local_today(settings), default_days=DEFAULT_DAYS)
    return metrics.period_report(session, defs=defs, settings=settings, start=frm, end=to)


def _life_event_labels(defs: Any) -> dict[str, str]:
    info = defs.fields.get("life_events")
    return {c.value: c.label for c in (info.field.choices or [])} if info else {}


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
              user: DashboardUser, start: FromQuery = None, end: ToQuery = None) -> HTMLResponse:
    """The dashboard page (default period: the last 30 days)."""
    report = _report(session, settings, defs, start, end)
    row: StaffSession | None = getattr(request.state, "staff_session", None)
    context = {
        "user": user, "csrf_token": row.csrf_token if row else "", "report": report,
        "charts": charts.dashboard_charts(report, baseline_minutes=report["baseline"]["total_minutes"]),
        "measures": metrics.MEASURE_LABELS, "stages": metrics.STAGE_LABELS, "headings": metrics.HEADING_LABELS,
        "departments": {d.id: d.name for d in defs.departments.values()},
        "life_events": _life_event_labels(defs),
        "query": f"from={report['from']}&to={report['to']}",
    }
    response = get_templates().TemplateResponse(request, "dashboard/index.html", context)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/dashboard/export.json")
def export_json(session: SessionDep, settings: SettingsDep, defs: DefinitionsDep, user: DashboardUser,
                client: ClientDep, start: FromQuery = None, end: ToQuery = None) -> Response:
    """The dashboard's figures as JSON (a download)."""
    report = _report(session, settings, defs, start, end)
    audit.record(session, action=audit.EXPORT, actor=user, target=f"dashboard.json {report['from']}..{report['to']}",
                 client=client)
    body = json.dumps(report, ensure_ascii=False, indent=1)
    return Response(body, media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="metrics_{report["from"]}_{report["to"]}.json"',
        "Cache-Control": "no-store"})


@router.get("/dashboard/export.csv")
def export_csv(session: SessionDep, settings: SettingsDep, defs: DefinitionsDep, user: DashboardUser,
               client: ClientDep, start: FromQuery = None, end: ToQuery = None) -> Response:
    """The dashboard's figures as CSV (long form: section, group, measure, count, median, p90, ...)."""
    report = _report(session, settings, defs, start, end)
    audit.record(session, action=audit.EXPORT, actor=user, target=f"dashboard.csv {report['from']}..{report['to']}",
                 client=client)
    return csv_response(metrics.report_csv(report), f"metrics_{report['from']}_{report['to']}.csv")
