"""Small server-side SVG charts for the dashboard (no JavaScript; every text is escaped).

A few bar charts are all the dashboard needs, so they are drawn here directly rather than through a
plotting library: the output is a few kilobytes of plain SVG that a counter tablet renders at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH = 560
HEIGHT = 240
MARGIN_LEFT = 56
MARGIN_RIGHT = 16
MARGIN_TOP = 28
MARGIN_BOTTOM = 44
BAR = "#2f6f9f"
SECOND = "#9cc3e0"
MARK = "#c0392b"
GRID = "#d9d9d9"
TEXT = "#222"


@dataclass(frozen=True)
class Bar:
    """One bar: its label, its value, and optionally a second value drawn as a tick (e.g. p90)."""

    label: str
    value: float | None
    tick: float | None = None
    note: str = ""


def _t(value: object) -> str:
    return escape(str(value), quote=True)


def _fmt(x: float) -> str:
    return f"{x:.0f}" if abs(x - round(x)) < 0.05 or abs(x) >= 100 else f"{x:.1f}"


def nice_max(value: float) -> float:
    """A round axis maximum at or above the value (1, 2, 2.5, 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def _frame(chart_id: str, title: str, body: list[str], *, desc: str) -> Markup:
    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{_t(chart_id)}" role="img" '
        f'aria-labelledby="{_t(chart_id)}-title {_t(chart_id)}-desc" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" preserveAspectRatio="xMidYMid meet" '
        f'font-family="sans-serif" font-size="12" fill="{TEXT}">',
        f'<title id="{_t(chart_id)}-title">{_t(title)}</title>',
        f'<desc id="{_t(chart_id)}-desc">{_t(desc)}</desc>',
        f'<text x="{MARGIN_LEFT}" y="18" font-size="14" font-weight="bold">{_t(title)}</text>',
        *body,
        "</svg>",
    ]
    return Markup("".join(svg))  # noqa: S704 - every interpolated text above went through escape()


def _empty(chart_id: str, title: str) -> Markup:
    return _frame(chart_id, title, [
        f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="#666">データがありません</text>'],
        desc="データがありません")


def vertical_bars(chart_id: str, title: str, bars: Sequence[Bar], *, unit: str, marker: float | None = None,
                  marker_label: str = "", x_marker: float | None = None, integer: bool = False) -> Markup:
    """Vertical bars (with optional p90 ticks) and an optional reference line: `marker` is a value on
    the y axis, `x_marker` a position on the x axis counted in bars (2.5 = the middle of the third).
    `integer` (counts) keeps the axis on whole numbers."""
    values = [b.value for b in bars if b.value is not None] + [b.tick for b in bars if b.tick is not None]
    if not bars or not any(values):
        return _empty(chart_id, title)
    highest = max([*values, marker or 0])
    top = float(max(4, math.ceil(highest / 4) * 4)) if integer else nice_max(highest)
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    base_y = MARGIN_TOP + plot_h

    def y(v: float) -> float:
        return base_y - plot_h * min(v, top) / top

    body = []
    for i in range(5):
        v = top * i / 4
        body.append(f'<line x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                    f'stroke="{GRID}" stroke-width="1"/>')
        body.append(f'<text x="{MARGIN_LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{_t(_fmt(v))}</text>')
    body.append(f'<text x="8" y="{MARGIN_TOP - 8}" font-size="11">{_t(unit)}</text>')
    slot = plot_w / len(bars)
    width = max(2.0, slot * 0.7)
    label_every = max(1, math.ceil(len(bars) / 12))
    for i, b in enumerate(bars):
        x = MARGIN_LEFT + slot * i + (slot - width) / 2
        if b.value is not None:
            h = base_y - y(b.value)
            tip = f"{b.label}: {_fmt(b.value)}{unit}" + (f"（{b.note}）" if b.note else "")
            body.append(f'<rect class="bar" x="{x:.1f}" y="{y(b.value):.1f}" width="{width:.1f}" height="{h:.1f}" '
                        f'fill="{BAR}"><title>{_t(tip)}</title></rect>')
        if b.tick is not None:
            body.append(f'<line class="tick" x1="{x:.1f}" x2="{x + width:.1f}" y1="{y(b.tick):.1f}" '
                        f'y2="{y(b.tick):.1f}" stroke="{MARK}" stroke-width="2"><title>{_t(f"{b.label}: 90%点 {_fmt(b.tick)}{unit}")}'
                        f'</title></line>')
        if i % label_every == 0:
            body.append(f'<text x="{x + width / 2:.1f}" y="{base_y + 16}" text-anchor="middle" font-size="11">'
                        f'{_t(b.label)}</text>')
    if marker is not None:
        body.append(f'<line class="marker" x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{y(marker):.1f}" '
                    f'y2="{y(marker):.1f}" stroke="{MARK}" stroke-dasharray="6 4" stroke-width="1.5"/>')
        body.append(f'<text x="{WIDTH - MARGIN_RIGHT}" y="{y(marker) - 4:.1f}" text-anchor="end" fill="{MARK}">'
                    f'{_t(marker_label)}</text>')
    if x_marker is not None:
        mx = MARGIN_LEFT + slot * min(max(x_marker, 0), len(bars))
        body.append(f'<line class="marker" x1="{mx:.1f}" x2="{mx:.1f}" y1="{MARGIN_TOP}" y2="{base_y}" '
                    f'stroke="{MARK}" stroke-dasharray="6 4" stroke-width="1.5"/>')
        body.append(f'<text x="{mx - 4:.1f}" y="{MARGIN_TOP + 12}" text-anchor="end" fill="{MARK}">{_t(marker_label)}</text>')
    if any(b.tick is not None for b in bars):
        body.append(_legend())
    desc = "、".join(f"{b.label} {_fmt(b.value)}{unit}" for b in bars if b.value is not None)
    return _frame(chart_id, title, body, desc=desc)


def horizontal_bars(chart_id: str, title: str, bars: Sequence[Bar], *, unit: str) -> Markup:
    """Horizontal bars with labels on the left (stages, departments), p90 as a tick."""
    values = [b.value for b in bars if b.value is not None] + [b.tick for b in bars if b.tick is not None]
    if not bars or not any(values):
        return _empty(chart_id, title)
    left = 120
    top = nice_max(max(values))
    plot_w = WIDTH - left - MARGIN_RIGHT - 40
    row = (HEIGHT - MARGIN_TOP - MARGIN_BOTTOM) / len(bars)
    height = max(4.0, row * 0.6)

    def x(v: float) -> float:
        return left + plot_w * min(v, top) / top

    body = []
    for i in range(5):
        v = top * i / 4
        body.append(f'<line x1="{x(v):.1f}" x2="{x(v):.1f}" y1="{MARGIN_TOP}" y2="{HEIGHT - MARGIN_BOTTOM}" '
                    f'stroke="{GRID}"/>')
        body.append(f'<text x="{x(v):.1f}" y="{HEIGHT - MARGIN_BOTTOM + 16}" text-anchor="middle">{_t(_fmt(v))}</text>')
    body.append(f'<text x="{WIDTH - MARGIN_RIGHT}" y="{HEIGHT - MARGIN_BOTTOM + 32}" text-anchor="end" '
                f'font-size="11">{_t(unit)}</text>')
    for i, b in enumerate(bars):
        y0 = MARGIN_TOP + row * i + (row - height) / 2
        body.append(f'<text x="{left - 8}" y="{y0 + height / 2 + 4:.1f}" text-anchor="end">{_t(b.label)}</text>')
        if b.value is not None:
            body.append(f'<rect class="bar" x="{left}" y="{y0:.1f}" width="{max(1.0, x(b.value) - left):.1f}" '
                        f'height="{height:.1f}" fill="{BAR}"><title>{_t(f"{b.label}: 中央値 {_fmt(b.value)}{unit}")}'
                        f'</title></rect>')
            body.append(f'<text x="{x(b.value) + 4:.1f}" y="{y0 + height / 2 + 4:.1f}">{_t(_fmt(b.value))}</text>')
        if b.tick is not None:
            body.append(f'<line class="tick" x1="{x(b.tick):.1f}" x2="{x(b.tick):.1f}" y1="{y0 - 2:.1f}" '
                        f'y2="{y0 + height + 2:.1f}" stroke="{MARK}" stroke-width="2"/>')
    if any(b.tick is not None for b in bars):
        body.append(_legend())
    desc = "、".join(f"{b.label} {_fmt(b.value)}{unit}" for b in bars if b.value is not None)
    return _frame(chart_id, title, body, desc=desc)


def _legend() -> str:
    x = WIDTH - MARGIN_RIGHT - 170
    return (f'<rect x="{x}" y="8" width="12" height="10" fill="{BAR}"/>'
            f'<text x="{x + 16}" y="17" font-size="11">中央値</text>'
            f'<line x1="{x + 70}" x2="{x + 84}" y1="13" y2="13" stroke="{MARK}" stroke-width="2"/>'
            f'<text x="{x + 88}" y="17" font-size="11">90%点</text>')


def dashboard_charts(report: dict[str, object], *, baseline_minutes: float) -> dict[str, Markup]:
    """The dashboard's five charts from a metrics report (app.services.metrics.period_report)."""
    from app.metrics.visit import STAGES

    stages = report["stages"]  # type: ignore[index]
    hist = report["visit_time_histogram"]  # type: ignore[index]
    hours = report["wait_by_hour"]  # type: ignore[index]
    estimate = report["wait_estimate"]  # type: ignore[index]
    sat = report["satisfaction"]  # type: ignore[index]
    stage_bars = [Bar(label, stages[key]["median"], stages[key]["p90"]) for key, label in STAGES]
    last = len(hist) - 1
    hist_bars = [Bar(f"{b['from']:g}" + ("+" if i == last else ""), b["count"]) for i, b in enumerate(hist)]
    # Opening hours, widened to any hour with arrivals (early appointments, evening openings).
    seen = [int(h) for h in hours]
    first, last_hour = min([8, *seen]), max([17, *seen])
    hour_bars = [Bar(f"{h}時", hours[str(h)]["median"] if str(h) in hours else None,
                     hours[str(h)]["p90"] if str(h) in hours else None) for h in range(first, last_hour + 1)]
    errors = list(estimate["errors"])
    error_bins = []
    for lo in range(-30, 30, 5):
        n = sum(1 for e in errors if (lo <= e < lo + 5) or (lo == -30 and e < -30) or (lo == 25 and e >= 30))
        error_bins.append(Bar(f"{lo:+d}" if lo else "0", n))
    sat_bars = [Bar(f"{k}", v) for k, v in sat["distribution"].items()]
    return {
        "stages": horizontal_bars("chart-stages", "段階ごとの時間（中央値と90%点）", stage_bars, unit="分"),
        "visit_times": vertical_bars("chart-visit-times", "滞在時間の分布（15分ごと）", hist_bars, unit="件", integer=True,
                                     x_marker=baseline_minutes / float(hist[0]["to"] - hist[0]["from"]) if hist else None,
                                     marker_label=f"調査（従来）{baseline_minutes:g}分"),
        "wait_by_hour": vertical_bars("chart-wait-by-hour", "到着時刻別の待ち時間（中央値と90%点）", hour_bars, unit="分"),
        "wait_estimate": vertical_bars("chart-wait-estimate", "待ち時間の予測誤差（実際−予測、5分ごと）", error_bins,
                                       unit="件", integer=True),
        "satisfaction": vertical_bars("chart-satisfaction", "手続きの満足度（1〜5）", sat_bars, unit="件", integer=True),
    }
