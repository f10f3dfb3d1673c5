"""Estimated wait of a queue ticket, and how wrong the estimates turned out to be.

estimate = median of the last N service durations today in that queue (service_started →
service_ended events), falling back to a configured default per queue, × tickets ahead ÷ counters
open (distinct counters that called or served someone in that queue in the last 30 minutes, else the
queue's configured number). Durations come from the event log, so a ticket transferred between
queues contributes one service to each.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import events
from app.forms.loader import DefinitionSet
from app.models import Case, CaseEvent, QueueTicket
from app.settings import Settings

SERVICE_KINDS = (events.SERVICE_STARTED, events.SERVICE_ENDED)
COUNTER_KINDS = (events.TICKET_CALLED, events.TICKET_RECALLED, events.SERVICE_STARTED)


@dataclass(frozen=True)
class WaitDefaults:
    """Defaults used when today's data is too thin to estimate from."""

    service_minutes: Mapping[str, float] = field(default_factory=dict)
    open_counters: Mapping[str, int] = field(default_factory=dict)
    fallback_minutes: float = 15.0
    fallback_counters: int = 1
    window: int = 10
    min_samples: int = 3
    active_minutes: int = 30

    def minutes_for(self, queue: str) -> float:
        """The default service minutes of a queue."""
        return float(self.service_minutes.get(queue, self.fallback_minutes))

    def counters_for(self, queue: str) -> int:
        """The default number of open counters of a queue."""
        return max(1, int(self.open_counters.get(queue, self.fallback_counters)))


def wait_defaults(settings: Settings, defs: DefinitionSet) -> WaitDefaults:
    """Defaults from the settings (one-stop counter) and departments.yaml (department queues)."""
    minutes: dict[str, float] = {dep.id: float(dep.service_minutes) for dep in defs.departments.values()}
    minutes.update(settings.queue_service_minutes)
    counters: dict[str, int] = {dep.id: max(1, len(dep.counters)) for dep in defs.departments.values()}
    counters[""] = settings.queue_default_open_counters
    return WaitDefaults(service_minutes=minutes, open_counters=counters, window=settings.queue_estimate_window)


@dataclass(frozen=True)
class ServiceStats:
    """What one queue's estimates are made of."""

    queue: str
    median_service_minutes: float
    samples: int
    open_counters: int
    from_default: bool

    def estimate(self, ahead: int) -> float:
        """Minutes until a ticket with `ahead` tickets before it is called."""
        return round(self.median_service_minutes * max(0, ahead) / self.open_counters, 1)


def _day_events(session: Session, *, office: str, day: dt.date, kinds: Sequence[str]) -> list[Any]:
    return list(session.execute(
        select(CaseEvent.case_id, CaseEvent.kind, CaseEvent.at, CaseEvent.data)
        .join(Case, Case.id == CaseEvent.case_id)
        .where(Case.office == office, Case.ticket_day == day, CaseEvent.kind.in_(kinds))
        .order_by(CaseEvent.id)
    ))


def _queue_of(data: Any) -> str:
    return str(data.get("queue") or "") if isinstance(data, dict) else ""


def _durations(rows: Sequence[Any], queue: str, now: dt.datetime | None = None) -> list[float]:
    open_starts: dict[str, tuple[dt.datetime, str]] = {}
    durations: list[tuple[dt.datetime, float]] = []
    for row in rows:
        if now is not None and row.at > now:
            continue  # replaying a past moment: what had not happened yet does not count
        if row.kind == events.SERVICE_STARTED:
            open_starts[row.case_id] = (row.at, _queue_of(row.data))
        elif row.kind == events.SERVICE_ENDED:
            started = open_starts.pop(row.case_id, None)
            if started is not None and started[1] == queue and _queue_of(row.data) == queue:
                durations.append((row.at, (row.at - started[0]).total_seconds() / 60))
    durations.sort(key=lambda d: d[0])
    return [minutes for _end, minutes in durations]


def _counters(rows: Sequence[Any], queue: str, now: dt.datetime, minutes: int) -> int:
    since = now - dt.timedelta(minutes=minutes)
    counters = {
        str(row.data.get("counter") or "")
        for row in rows
        if row.kind in COUNTER_KINDS and isinstance(row.data, dict) and _queue_of(row.data) == queue
        and since <= row.at <= now
    }
    counters.discard("")
    return len(counters)


def service_durations(session: Session, *, office: str, day: dt.date, queue: str) -> list[float]:
    """Today's finished service durations in a queue (minutes), ordered by end time."""
    return _durations(_day_events(session, office=office, day=day, kinds=SERVICE_KINDS), queue)


def service_stats(
    session: Session, *, office: str, day: dt.date, queue: str, now: dt.datetime, defaults: WaitDefaults,
) -> ServiceStats:
    """The median service time and the open counters of a queue right now."""
    rows = _day_events(session, office=office, day=day, kinds=(*SERVICE_KINDS, *COUNTER_KINDS))
    recent = _durations(rows, queue, now)[-defaults.window:]
    enough = len(recent) >= defaults.min_samples
    median = statistics.median(recent) if enough else defaults.minutes_for(queue)
    counters = _counters(rows, queue, now, defaults.active_minutes)
    return ServiceStats(queue=queue, median_service_minutes=round(median, 2), samples=len(recent),
                        open_counters=counters or defaults.counters_for(queue), from_default=not enough)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Linear-interpolated percentile (numpy's default method) of a non-empty sequence."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def estimate_error_report(session: Session, *, office: str, day: dt.date) -> dict[str, Any]:
    """For every ticket that was called: actual wait (first call − issue) minus the estimate given at issue.

    Positive errors mean residents waited longer than they were told.
    """
    first_called: dict[str, dt.datetime] = {}
    for row in _day_events(session, office=office, day=day, kinds=(events.TICKET_CALLED,)):
        first_called.setdefault(row.case_id, row.at)
    tickets = session.execute(
        select(QueueTicket.case_id, QueueTicket.issued_at, QueueTicket.estimated_wait_minutes)
        .where(QueueTicket.office == office, QueueTicket.day == day, QueueTicket.estimated_wait_minutes.is_not(None))
    )
    errors: list[float] = []
    for case_id, issued_at, estimate in tickets:
        called = first_called.get(case_id)
        if called is None:
            continue
        actual = (called - issued_at).total_seconds() / 60
        errors.append(actual - float(estimate))
    report: dict[str, Any] = {"office": office, "day": day.isoformat(), "count": len(errors)}
    if not errors:
        return {**report, "mean_error_minutes": None, "mean_absolute_error_minutes": None,
                "p50_error_minutes": None, "p90_error_minutes": None,
                "p50_absolute_error_minutes": None, "p90_absolute_error_minutes": None}
    absolute = [abs(e) for e in errors]
    return {
        **report,
        "mean_error_minutes": round(statistics.fmean(errors), 2),
        "mean_absolute_error_minutes": round(statistics.fmean(absolute), 2),
        "p50_error_minutes": round(percentile(errors, 0.5), 2),
        "p90_error_minutes": round(percentile(errors, 0.9), 2),
        "p50_absolute_error_minutes": round(percentile(absolute, 0.5), 2),
        "p90_absolute_error_minutes": round(percentile(absolute, 0.9), 2),
    }
