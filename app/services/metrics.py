"""Visit-time metrics from the database: load event logs, compute figures (app.metrics), aggregate, export.

Figures come ONLY from stored rows: CaseEvent (every timestamp), RoutingStep (open steps for
operators), QueueTicket (the wait we announced vs the wait that happened) and SatisfactionResponse.
The writing figures come from the case's forms (the same engine as the PDFs).
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import io
import threading
from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import events as ev
from app.errors import ValidationFailed
from app.forms.loader import DefinitionSet
from app.forms.mapping import resolve_all
from app.metrics import stats
from app.metrics.baseline import COMPARISON_ROWS, SURVEY_BASELINE
from app.metrics.visit import STAGES, Event, OfficeHours, VisitFigures, visit_figures
from app.metrics.writing import HEADINGS, handwriting
from app.models import Case, CaseEvent, QueueTicket, RoutingStep, SatisfactionResponse, utcnow
from app.services import documents, signatures
from app.services.cases import get_case_or_raise
from app.services.clock import local_today
from app.settings import Settings

MAX_PERIOD_DAYS = 366
HISTOGRAM_WIDTH = 15.0
HISTOGRAM_UPTO = 180.0
OPEN_STEP_STATUSES = ("pending", "in_progress", "needs_resident")
PERCENTILE_METHOD = "linear interpolation between closest ranks (numpy default, Excel PERCENTILE.INC)"
HEADING_LABELS = {"name": "氏名", "address": "住所", "birth_date": "生年月日", "phone": "電話番号"}
MEASURE_LABELS = dict(stats.MEASURES)
STAGE_LABELS = dict(STAGES)


def office_hours(settings: Settings) -> OfficeHours:
    """The office hours and lunch break from the settings."""
    return OfficeHours.parse(settings.office_hours, settings.lunch_break, settings.tz)


def to_event(row: CaseEvent) -> Event:
    """A stored event as the metrics see it."""
    return Event(row.kind, row.at, row.actor_id, dict(row.data or {}))


def _case_events(session: Session, case_ids: Sequence[str]) -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = {cid: [] for cid in case_ids}
    for i in range(0, len(case_ids), 500):
        chunk = case_ids[i:i + 500]
        rows = session.execute(
            select(CaseEvent.case_id, CaseEvent.kind, CaseEvent.at, CaseEvent.actor_id, CaseEvent.data)
            .where(CaseEvent.case_id.in_(chunk)).order_by(CaseEvent.case_id, CaseEvent.at, CaseEvent.id))
        for case_id, kind, at, actor_id, data in rows:
            out[case_id].append(Event(kind, at, actor_id, dict(data or {})))
    return out


# Writing counts per (case, answers version, definitions, signed): resolving a visit's forms takes a few
# milliseconds, too much to repeat for every visit of a month on each dashboard load. Counts only, no
# personal data; bounded, oldest entries dropped first.
_WRITING_CACHE: OrderedDict[tuple[Any, ...], dict[str, dict[str, int]]] = OrderedDict()
_WRITING_CACHE_SIZE = 20_000
_writing_lock = threading.Lock()


def writing_of(defs: DefinitionSet, case: Case,
               signed: Mapping[str, frozenset[str]] | None = None) -> dict[str, dict[str, int]] | None:
    """Pre-filled and handwritten counts of the case's forms; None once its personal data was purged.

    `signed`: form instance id → the people whose tablet signature is on it (signatures.tablet_signed); None
    for a case with no signed-form rows (signed, if at all, with one signature for every form).
    """
    if case.purged_at is not None or not case.answers:
        return None
    signed_forms = None if signed is None else tuple(sorted((k, tuple(sorted(v))) for k, v in signed.items()))
    key = (case.id, case.version, defs.fingerprint, case.signed_at is not None, signed_forms)
    with _writing_lock:
        cached = _WRITING_CACHE.get(key)
    if cached is not None:
        return copy.deepcopy(cached)
    instances = documents.list_applications(defs, case)
    forms = resolve_all(defs, instances, case_number=case.case_number)
    on_tablet: dict[str, Collection[str]] | None = None
    if case.signed_at is not None:
        # Signed before each signer's forms were recorded (one signature placed on every form): every
        # form counts as signed on the tablet by its own signers.
        on_tablet = dict(signed) if signed is not None else {
            i.instance_id: {s.person_id for s in i.signing_slots if s.person_id} for i in instances}
    counts = handwriting(forms, tablet_signed=on_tablet)
    with _writing_lock:
        _WRITING_CACHE[key] = counts
        while len(_WRITING_CACHE) > _WRITING_CACHE_SIZE:
            _WRITING_CACHE.popitem(last=False)
    return copy.deepcopy(counts)


def comparison(figures: dict[str, Any], writing: dict[str, dict[str, int]] | None) -> list[dict[str, Any]]:
    """The survey's old-way figures beside this visit's."""
    after: dict[str, Any] = dict(figures)
    for heading in HEADINGS:
        after[f"{heading}_written"] = writing[heading]["by_hand"] if writing else None
    return [{"key": key, "label": label, "before": SURVEY_BASELINE[key], "after": after.get(ours)}
            for key, label, ours in COMPARISON_ROWS]


def visit_report(session: Session, *, defs: DefinitionSet, settings: Settings, case_id: str,
                 now: dt.datetime | None = None) -> dict[str, Any]:
    """One visit's figures, its writing counts and the comparison with the survey."""
    case = get_case_or_raise(session, case_id)
    events = _case_events(session, [case.id])[case.id]
    figures = visit_figures(events, now=now or utcnow(), hours=office_hours(settings))
    writing = writing_of(defs, case, signatures.tablet_signed(session, [case.id]).get(case.id))
    data = figures.as_dict()
    return {
        "case_id": case.id, "case_number": case.case_number, "status": case.status,
        "life_events": list((case.answers or {}).get("life_events") or []),
        **data, "writing": writing, "comparison": comparison(data, writing),
    }


@dataclass(frozen=True)
class VisitRow:
    """A visit of the period with the context the aggregates group by."""

    case_id: str
    case_number: str
    day: dt.date
    life_events: tuple[str, ...]
    figures: VisitFigures
    writing: dict[str, dict[str, int]] | None
    satisfaction: int | None


def parse_period(start: str | None, end: str | None, *, today: dt.date, default_days: int = 1) -> tuple[dt.date, dt.date]:
    """The period from query parameters (ISO dates, inclusive); field-level errors in Japanese."""
    errors = []
    parsed: dict[str, dt.date | None] = {}
    for name, value in (("from", start), ("to", end)):
        try:
            parsed[name] = dt.date.fromisoformat(value) if value else None
            if parsed[name] is not None and not 1900 <= parsed[name].year <= 2100:
                raise ValueError(value)  # 0001-01-01 / 9999-12-31 overflow the period arithmetic
        except ValueError:
            parsed[name] = None
            errors.append({"field": name, "message": "日付は 2026-04-06 の形（1900年〜2100年）で入力してください"})
    if errors:
        raise ValidationFailed(details=errors)
    to = parsed["to"] or today
    frm = parsed["from"] or (to - dt.timedelta(days=default_days - 1))
    if frm > to:
        raise ValidationFailed(details=[{"field": "from", "message": "開始日は終了日より前にしてください"}])
    if (to - frm).days + 1 > MAX_PERIOD_DAYS:
        raise ValidationFailed(details=[{"field": "from", "message": f"期間は{MAX_PERIOD_DAYS}日以内にしてください"}])
    return frm, to


def load_visits(session: Session, *, defs: DefinitionSet, settings: Settings, start: dt.date, end: dt.date,
                now: dt.datetime | None = None, with_writing: bool = True) -> list[VisitRow]:
    """The office's visits whose ticket day is in [start, end], with their figures."""
    now = now or utcnow()
    hours = office_hours(settings)
    cases = list(session.scalars(
        select(Case).where(Case.office == settings.office_code, Case.ticket_day >= start, Case.ticket_day <= end,
                           Case.status != "cancelled")
        .order_by(Case.ticket_day, Case.ticket_number)))
    ids = [c.id for c in cases]
    events = _case_events(session, ids)
    scores: dict[str, int] = {}
    for i in range(0, len(ids), 500):
        scores.update(session.execute(select(SatisfactionResponse.case_id, SatisfactionResponse.score)
                                      .where(SatisfactionResponse.case_id.in_(ids[i:i + 500]))).all())
    signed = signatures.tablet_signed(session, ids) if with_writing else {}
    rows = []
    for case in cases:
        if not events[case.id]:
            continue
        rows.append(VisitRow(
            case_id=case.id, case_number=case.case_number, day=case.ticket_day,
            life_events=tuple((case.answers or {}).get("life_events") or ()) or ("unknown",),
            figures=visit_figures(events[case.id], now=now, hours=hours),
            writing=writing_of(defs, case, signed.get(case.id)) if with_writing else None,
            satisfaction=scores.get(case.id),
        ))
    return rows


def estimate_samples(session: Session, *, office: str, start: dt.date, end: dt.date) -> list[stats.EstimateSample]:
    """Announced vs actual wait of every called ticket (first `ticket_called` − issue time), as
    app.services.wait_estimate.estimate_error_report defines it, over a period."""
    tickets = list(session.execute(
        select(QueueTicket.case_id, QueueTicket.issued_at, QueueTicket.estimated_wait_minutes)
        .where(QueueTicket.office == office, QueueTicket.day >= start, QueueTicket.day <= end,
               QueueTicket.estimated_wait_minutes.is_not(None))))
    if not tickets:
        return []
    first_called: dict[str, dt.datetime] = {}
    ids = [t[0] for t in tickets]
    for i in range(0, len(ids), 500):
        for case_id, at in session.execute(
                select(CaseEvent.case_id, func.min(CaseEvent.at))
                .where(CaseEvent.case_id.in_(ids[i:i + 500]), CaseEvent.kind == ev.TICKET_CALLED)
                .group_by(CaseEvent.case_id)):
            first_called[case_id] = at
    out = []
    for case_id, issued_at, estimate in tickets:
        called = first_called.get(case_id)
        if called is not None:
            out.append(stats.EstimateSample(float(estimate), (called - issued_at).total_seconds() / 60))
    return out


def _median_of(values: Iterable[float | int | None]) -> float | None:
    xs = [float(v) for v in values if v is not None]
    return stats.percentile(xs, 50)


def _block(rows: Sequence[VisitRow]) -> dict[str, Any]:
    """The figures the dashboard shows for a set of visits (today, or the period)."""
    closed = [r for r in rows if not r.figures.open]
    figures = [r.figures for r in closed]
    writing = [r.writing for r in closed if r.writing is not None]
    after: dict[str, float | None] = {
        "counters_visited": _median_of(len(f.counters) for f in figures),
        "tickets": _median_of(f.tickets for f in figures),
        "staff": _median_of(f.staff for f in figures),
        "pamphlets": _median_of(f.pamphlets for f in figures),
        "total_minutes": _median_of(f.total_minutes for f in figures),
    }
    for h in HEADINGS:
        after[f"{h}_written"] = _median_of(w[h]["by_hand"] for w in writing)
    comparison_rows = [{"key": key, "label": label, "before": SURVEY_BASELINE[key],
                        "after_median": None if after[ours] is None else round(after[ours], 1)}
                       for key, label, ours in COMPARISON_ROWS]
    return {
        "visits": len(rows), "closed": len(closed), "open": len(rows) - len(closed),
        "summary": stats.as_dicts(stats.summarise(figures)),
        "comparison": comparison_rows,
        "writing": {h: {"prefilled_total": sum(w[h]["prefilled"] for w in writing),
                        "by_hand_total": sum(w[h]["by_hand"] for w in writing)} for h in HEADINGS},
    }


def _writing_saved(rows: Iterable[VisitRow]) -> dict[str, int]:
    """Fields printed for the residents instead of written by hand, by heading, and their sum (per life event)."""
    totals = {h: 0 for h in HEADINGS}
    for r in rows:
        if r.writing is not None:
            for h in HEADINGS:
                totals[h] += r.writing[h]["prefilled"]
    return {**totals, "total": sum(totals.values())}


def period_report(session: Session, *, defs: DefinitionSet, settings: Settings, start: dt.date, end: dt.date,
                  now: dt.datetime | None = None) -> dict[str, Any]:
    """Everything the dashboard shows (and exports) for a period, with today's block beside it."""
    now = now or utcnow()
    tz = settings.tz
    today = local_today(settings)
    rows = load_visits(session, defs=defs, settings=settings, start=start, end=end, now=now)
    today_rows = rows if start == end == today else load_visits(
        session, defs=defs, settings=settings, start=today, end=today, now=now)
    closed = [r.figures for r in rows if not r.figures.open]
    per_life: dict[str, list[VisitFigures]] = stats.group(((r.figures, r) for r in rows if not r.figures.open),
                                                          lambda _v, r: r.life_events)
    samples = estimate_samples(session, office=settings.office_code, start=start, end=end)
    return {
        "office": settings.office_code, "from": start.isoformat(), "to": end.isoformat(),
        "generated_at": now.isoformat(timespec="seconds"),
        "definitions": {
            "percentiles": PERCENTILE_METHOD,
            "aggregates": "closed visits only; open visits are counted under `open`",
            "office_hours": settings.office_hours, "lunch_break": settings.lunch_break,
            "lunch": "not excluded from waiting or total; excluded from back-office time",
            "source": "app/metrics/visit.py",
        },
        "baseline": SURVEY_BASELINE,
        "today": {"day": today.isoformat(), **_block(today_rows)},
        "period": _block(rows),
        "per_day": {d.isoformat(): {"visits": len(vs), **stats.as_dicts(stats.summarise(vs))}
                    for d, vs in stats.by_day(closed, tz).items()},
        "per_life_event": {k: {"visits": len(vs), **stats.as_dicts(stats.summarise(vs)),
                               "writing_saved": _writing_saved(r for r in rows if k in r.life_events and not r.figures.open)}
                           for k, vs in per_life.items()},
        "per_department": stats.by_department(r.figures for r in rows),
        "stages": stats.as_dicts(stats.stage_summary(closed)),
        "wait_by_hour": {str(h): s.as_dict() for h, s in stats.wait_by_hour((r.figures for r in rows), tz).items()},
        "visit_time_histogram": [{"from": a, "to": b, "count": c} for a, b, c in stats.histogram(
            (f.total_minutes for f in closed), width=HISTOGRAM_WIDTH, upto=HISTOGRAM_UPTO)],
        "wait_estimate": {**stats.estimate_error(samples),
                          "errors": [round(s.error, 1) for s in samples]},
        "satisfaction": stats.satisfaction(r.satisfaction for r in rows if r.satisfaction is not None),
    }


def visits_json(rows: Sequence[VisitRow], *, start: dt.date, end: dt.date) -> dict[str, Any]:
    """Per-visit figures of a period, with the period's summary."""
    closed = [r.figures for r in rows if not r.figures.open]
    return {
        "from": start.isoformat(), "to": end.isoformat(), "percentiles": PERCENTILE_METHOD,
        "summary": stats.as_dicts(stats.summarise(closed)),
        "visits": [{"case_id": r.case_id, "case_number": r.case_number, "day": r.day.isoformat(),
                    "life_events": list(r.life_events), "satisfaction": r.satisfaction, "writing": r.writing,
                    **r.figures.as_dict()} for r in rows],
    }


VISIT_COLUMNS = (
    "case_number", "day", "life_events", "open", "arrival_at", "end_at", "total_minutes", "waiting_minutes",
    "service_minutes", "wait_first_minutes", "wait_between_minutes", "wait_tail_minutes", "lunch_minutes",
    "back_office_total_minutes", "counters_visited", "tickets", "staff", "pamphlets",
)


def visits_csv(rows: Sequence[VisitRow], departments: Sequence[str]) -> str:
    """One line per visit: the same figures as the JSON export (no personal data)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*VISIT_COLUMNS, *(f"back_office_{d}_minutes" for d in departments),
                     *(f"{h}_prefilled" for h in HEADINGS), *(f"{h}_by_hand" for h in HEADINGS), "satisfaction"])
    for r in rows:
        d = r.figures.as_dict()
        base = {"case_number": r.case_number, "day": r.day.isoformat(), "life_events": "+".join(r.life_events),
                "open": int(r.figures.open)}
        writer.writerow([
            *(base[c] if c in base else d[c] for c in VISIT_COLUMNS),
            *(d["back_office_minutes"].get(dep, "") for dep in departments),
            *((r.writing[h]["prefilled"] if r.writing else "") for h in HEADINGS),
            *((r.writing[h]["by_hand"] if r.writing else "") for h in HEADINGS),
            "" if r.satisfaction is None else r.satisfaction,
        ])
    return out.getvalue()


def report_csv(report: dict[str, Any]) -> str:
    """The dashboard's figures in long form: section, group, measure, then the numbers."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    fields = ("count", "median", "p90", "mean", "min", "max")
    writer.writerow(["section", "group", "measure", *fields])

    def summary_rows(section: str, group: str, summaries: dict[str, dict[str, Any]]) -> None:
        for measure, s in summaries.items():
            writer.writerow([section, group, measure, *(s.get(f, "") if s.get(f) is not None else "" for f in fields)])

    for block in ("today", "period"):
        summary_rows(block, report[block].get("day", f"{report['from']}..{report['to']}"), report[block]["summary"])
        for row in report[block]["comparison"]:
            writer.writerow([f"{block}_vs_survey", row["key"], "before", "", row["before"], "", "", "", ""])
            writer.writerow([f"{block}_vs_survey", row["key"], "after_median", "",
                             "" if row["after_median"] is None else row["after_median"], "", "", "", ""])
    for day, block in report["per_day"].items():
        summary_rows("per_day", day, {k: v for k, v in block.items() if k != "visits"})
    for life, block in report["per_life_event"].items():
        summary_rows("per_life_event", life, {k: v for k, v in block.items() if k not in ("visits", "writing_saved")})
        for heading, n in block["writing_saved"].items():
            writer.writerow(["per_life_event_writing_saved", life, heading, n, "", "", "", "", ""])
    for dep, block in report["per_department"].items():
        summary_rows("per_department", dep, {"back_office": block["back_office"]})
    summary_rows("stages", "all", report["stages"])
    for hour, s in report["wait_by_hour"].items():
        summary_rows("wait_by_hour", hour, {"wait_first": s})
    for b in report["visit_time_histogram"]:
        writer.writerow(["visit_time_histogram", f"{b['from']:g}-{b['to']:g}", "visits", b["count"], "", "", "", "", ""])
    summary_rows("wait_estimate", "all", {"error": report["wait_estimate"]["error"],
                                          "absolute_error": report["wait_estimate"]["absolute_error"]})
    for score, n in report["satisfaction"]["distribution"].items():
        writer.writerow(["satisfaction", score, "responses", n, "", "", "", "", ""])
    return out.getvalue()


def operator_gauges(session: Session, *, settings: Settings) -> dict[str, Any]:
    """Numbers for the operators' /metrics: today's visits, open steps, tickets waiting."""
    today = local_today(settings)
    office = settings.office_code
    visits = dict(session.execute(
        select(Case.status, func.count()).where(Case.office == office, Case.ticket_day == today)
        .group_by(Case.status)).all())
    steps = session.execute(
        select(RoutingStep.department_id, RoutingStep.status, func.count())
        .where(RoutingStep.status.in_(OPEN_STEP_STATUSES))
        .group_by(RoutingStep.department_id, RoutingStep.status)).all()
    waiting = session.execute(
        select(QueueTicket.queue, func.count())
        .where(QueueTicket.office == office, QueueTicket.day == today, QueueTicket.status == "waiting")
        .group_by(QueueTicket.queue)).all()
    return {"office": office, "visits_today": visits, "open_steps": [tuple(r) for r in steps],
            "queue_waiting": [tuple(r) for r in waiting]}
