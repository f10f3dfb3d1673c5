"""Aggregates over visits: count, median, 90th percentile (pure; no database).

Percentiles use linear interpolation between closest ranks (the "inclusive" method: numpy's default,
Excel's PERCENTILE.INC, R type 7): for sorted values x[0..n-1] the p-th percentile sits at position
h = (n - 1) * p / 100, between x[floor(h)] and x[ceil(h)]. The median is the 50th percentile, so it
is the mean of the two middle values for an even count. One value is its own median and p90; no
values give None.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from app.metrics.visit import STAGES, VisitFigures

MEASURES: tuple[tuple[str, str], ...] = (
    ("total", "滞在時間"),
    ("waiting", "待ち時間"),
    ("service", "対応時間"),
    ("back_office", "各課の処理時間"),
)


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile (0-100) by linear interpolation; None for no values."""
    if not values:
        return None
    if not 0 <= p <= 100:
        raise ValueError("p must be between 0 and 100")
    xs = sorted(values)
    h = (len(xs) - 1) * p / 100.0
    lo, hi = math.floor(h), math.ceil(h)
    return xs[lo] + (xs[hi] - xs[lo]) * (h - lo)


@dataclass(frozen=True)
class Summary:
    """Count, median, 90th percentile, mean, min and max of some minutes."""

    count: int
    median: float | None
    p90: float | None
    mean: float | None
    min: float | None
    max: float | None

    @classmethod
    def of(cls, values: Iterable[float]) -> Summary:
        """Summarise the values."""
        xs = [float(v) for v in values]
        if not xs:
            return cls(0, None, None, None, None, None)
        return cls(len(xs), percentile(xs, 50), percentile(xs, 90), sum(xs) / len(xs), min(xs), max(xs))

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly, rounded to 0.1 minute."""
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 1)
        return {"count": self.count, "median": r(self.median), "p90": r(self.p90), "mean": r(self.mean),
                "min": r(self.min), "max": r(self.max)}


def measure(v: VisitFigures, key: str) -> float:
    """One of the MEASURES of a visit, in minutes."""
    return {"total": v.total_minutes, "waiting": v.waiting_minutes, "service": v.service_minutes,
            "back_office": v.back_office_total}[key]


def summarise(visits: Sequence[VisitFigures]) -> dict[str, Summary]:
    """The four measures summarised over visits."""
    return {key: Summary.of(measure(v, key) for v in visits) for key, _ in MEASURES}


def group(visits: Iterable[tuple[VisitFigures, Any]], key: Callable[[VisitFigures, Any], Iterable[str]]
          ) -> dict[str, list[VisitFigures]]:
    """Group visits (with their context, e.g. life events) under every key the function returns."""
    out: dict[str, list[VisitFigures]] = {}
    for v, ctx in visits:
        for k in key(v, ctx):
            out.setdefault(k, []).append(v)
    return dict(sorted(out.items()))


def by_department(visits: Iterable[VisitFigures]) -> dict[str, dict[str, Any]]:
    """Back-office minutes per department over its finished steps, with step counts."""
    minutes: dict[str, list[float]] = {}
    counts: dict[str, dict[str, int]] = {}
    for v in visits:
        for step in v.steps.values():
            c = counts.setdefault(step.department, {"steps": 0, "done": 0, "cancelled": 0, "needed_resident": 0})
            c["steps"] += 1
            c[step.status] = c.get(step.status, 0) + 1
            c["needed_resident"] += int(step.needed_resident)
            if step.status == "done":
                minutes.setdefault(step.department, []).append(step.minutes)
    return {d: {**counts[d], "back_office": Summary.of(minutes.get(d, [])).as_dict()} for d in sorted(counts)}


def stage_summary(visits: Iterable[VisitFigures]) -> dict[str, Summary]:
    """Minutes per stage of the visit (stages a visit did not reach are left out)."""
    values: dict[str, list[float]] = {k: [] for k, _ in STAGES}
    for v in visits:
        for k, m in v.stages.items():
            if m is not None:
                values[k].append(m)
    return {k: Summary.of(values[k]) for k, _ in STAGES}


def wait_by_hour(visits: Iterable[VisitFigures], tz: ZoneInfo) -> dict[int, Summary]:
    """Waiting before the first staff contact, by the local hour of arrival."""
    values: dict[int, list[float]] = {}
    for v in visits:
        values.setdefault(v.arrival_at.astimezone(tz).hour, []).append(v.wait_first_minutes)
    return {h: Summary.of(values[h]) for h in sorted(values)}


def histogram(values: Iterable[float], *, width: float, upto: float) -> list[tuple[float, float, int]]:
    """Counts in bins [a, a + width); the last bin also takes everything at or above `upto`."""
    if width <= 0 or upto <= 0:
        raise ValueError("width and upto must be positive")
    n = max(1, math.ceil(upto / width))
    bins = [0] * n
    for x in values:
        i = min(n - 1, max(0, int(x // width)))
        bins[i] += 1
    return [(i * width, (i + 1) * width, c) for i, c in enumerate(bins)]


@dataclass(frozen=True)
class EstimateSample:
    """One queue ticket: the wait we announced and the wait that happened (minutes)."""

    estimated: float
    actual: float

    @property
    def error(self) -> float:
        """Actual minus estimated: positive when the resident waited longer than told."""
        return self.actual - self.estimated


def estimate_error(samples: Sequence[EstimateSample]) -> dict[str, Any]:
    """How far the announced waits were from the real ones."""
    errors = [s.error for s in samples]
    absolute = Summary.of(abs(e) for e in errors)
    return {
        "count": len(samples),
        "error": Summary.of(errors).as_dict(),
        "absolute_error": absolute.as_dict(),
        "within_5_minutes": sum(1 for e in errors if abs(e) <= 5),
    }


def satisfaction(scores: Iterable[int]) -> dict[str, Any]:
    """Distribution of 1-5 answers, with the mean."""
    dist = dict.fromkeys(range(1, 6), 0)
    for s in scores:
        if s in dist:
            dist[s] += 1
    n = sum(dist.values())
    mean = sum(k * c for k, c in dist.items()) / n if n else None
    return {"count": n, "distribution": {str(k): c for k, c in dist.items()},
            "mean": None if mean is None else round(mean, 2)}


def by_day(visits: Iterable[VisitFigures], tz: ZoneInfo) -> dict[dt.date, list[VisitFigures]]:
    """Visits grouped by their local day."""
    out: dict[dt.date, list[VisitFigures]] = {}
    for v in visits:
        out.setdefault(v.local_day(tz), []).append(v)
    return dict(sorted(out.items()))


def as_dicts(summaries: Mapping[str, Summary]) -> dict[str, dict[str, Any]]:
    """Summaries as JSON-friendly dicts."""
    return {k: s.as_dict() for k, s in summaries.items()}
