"""Visit-time metrics over the API (JSON, CSV) and the operators' Prometheus endpoint `/metrics`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from app.deps import AdminUser, ClientDep, CounterUser, DefinitionsDep, SessionDep, SettingsDep
from app.routers.api_cases import ERRORS
from app.services import audit, metrics
from app.services.clock import local_today

router = APIRouter(tags=["metrics"])

FromQuery = Annotated[str | None, Query(alias="from", description="開始日（YYYY-MM-DD、含む）。省略時は終了日と同じ日")]
ToQuery = Annotated[str | None, Query(alias="to", description="終了日（YYYY-MM-DD、含む）。省略時は今日")]
# Excel (what city offices open CSV files with) needs the BOM to read UTF-8 Japanese text.
BOM = "\ufeff"


@router.get("/api/v1/metrics/visits", responses=ERRORS, summary="来庁ごとの所要時間（期間指定）")
def visits(session: SessionDep, settings: SettingsDep, defs: DefinitionsDep, user: AdminUser,
           start: FromQuery = None, end: ToQuery = None) -> dict[str, Any]:
    """Per-visit figures of the period (ticket days, inclusive) and their summary."""
    frm, to = metrics.parse_period(start, end, today=local_today(settings))
    rows = metrics.load_visits(session, defs=defs, settings=settings, start=frm, end=to)
    return metrics.visits_json(rows, start=frm, end=to)


@router.get("/api/v1/metrics/visits.csv", responses={**ERRORS, 200: {"content": {"text/csv": {}}}},
            response_class=Response, summary="来庁ごとの所要時間（CSV）")
def visits_csv(session: SessionDep, settings: SettingsDep, defs: DefinitionsDep, user: AdminUser, client: ClientDep,
               start: FromQuery = None, end: ToQuery = None) -> Response:
    """The same per-visit figures as CSV (UTF-8 with BOM), one line per visit."""
    frm, to = metrics.parse_period(start, end, today=local_today(settings))
    rows = metrics.load_visits(session, defs=defs, settings=settings, start=frm, end=to)
    audit.record(session, action=audit.EXPORT, actor=user, target=f"metrics/visits.csv {frm}..{to}", client=client)
    return csv_response(metrics.visits_csv(rows, sorted(defs.departments)), f"visits_{frm}_{to}.csv")


@router.get("/api/v1/metrics/report", responses=ERRORS, summary="ダッシュボードの集計（期間指定）")
def report(session: SessionDep, settings: SettingsDep, defs: DefinitionsDep, user: AdminUser,
           start: FromQuery = None, end: ToQuery = None) -> dict[str, Any]:
    """Everything the dashboard shows: medians and 90th percentiles per day, department, life event."""
    frm, to = metrics.parse_period(start, end, today=local_today(settings))
    return metrics.period_report(session, defs=defs, settings=settings, start=frm, end=to)


@router.get("/api/v1/cases/{case_id}/metrics", responses=ERRORS, summary="この来庁の所要時間と書かずに済んだ記入")
def case_metrics(case_id: str, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
                 user: CounterUser) -> dict[str, Any]:
    """One visit's waiting, service, total and back-office minutes, counters, tickets, staff, writing."""
    return metrics.visit_report(session, defs=defs, settings=settings, case_id=case_id)


def csv_response(text: str, filename: str) -> Response:
    """A CSV download."""
    return Response(BOM + text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


class _Gauges(Collector):
    """Reads the numbers from the database at scrape time, so every worker reports the same values."""

    def __init__(self, values: dict[str, Any]):
        self.values = values

    def collect(self) -> Iterator[GaugeMetricFamily]:
        office = self.values["office"]
        visits = GaugeMetricFamily("kakanai_visits_today", "Visits (cases) opened today, by status",
                                   labels=["office", "status"])
        for status, n in sorted(self.values["visits_today"].items()):
            visits.add_metric([office, status], n)
        yield visits
        total = GaugeMetricFamily("kakanai_visits_today_total", "Visits opened today", labels=["office"])
        total.add_metric([office], sum(self.values["visits_today"].values()))
        yield total
        steps = GaugeMetricFamily("kakanai_routing_steps_open", "Routing-slip steps not finished, by department and status",
                                  labels=["department", "status"])
        for department, status, n in sorted(self.values["open_steps"]):
            steps.add_metric([department, status], n)
        yield steps
        waiting = GaugeMetricFamily("kakanai_queue_waiting", "Queue tickets waiting to be called today, by queue",
                                    labels=["office", "queue"])
        for queue, n in sorted(self.values["queue_waiting"]):
            waiting.add_metric([office, queue or "onestop"], n)
        yield waiting


@router.get("/metrics", response_class=Response, include_in_schema=False)
def prometheus(session: SessionDep, settings: SettingsDep) -> Response:
    """Prometheus text format for operators: counts only, no personal data (restrict it at the proxy)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Gauges(metrics.operator_gauges(session, settings=settings)))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
