"""Draw resolved forms as PDF: ruled grid forms, values over a city's blank PDF, and case bundles.

Two passes. The layout pass turns a ResolvedForm into pages of drawing primitives (ruled
boxes, text lines with their final font size, QR codes, images): it decides page breaks,
how far text shrinks or wraps, and what moves to the addendum page. The drawing pass
replays the primitives on a reportlab canvas. Knowing every page before drawing is what
lets footers say "page n / N" and the bundle cover list page ranges.

Template mode draws the values onto an overlay of the same page size and merges it onto the
city's blank PDF with pypdf; placements are millimetres from the top-left corner of the media
box of an unrotated page.

Output is deterministic (same input, same bytes): reportlab runs with ``invariant=1`` and
pypdf output gets a content-derived /ID. Never log cell text: it is personal data.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.forms.bundle import render_bundle
from app.forms.drawing import finish_plan
from app.forms.layout import plan_form
from app.forms.render_options import RenderOptions
from app.forms.resolved import ResolvedForm
from app.forms.typeset import Measure

__all__ = ["RenderOptions", "RenderResult", "render_bundle", "render_form"]


@dataclass(frozen=True)
class RenderResult:
    """A rendered form: the PDF, its page count and the labels of cells continued on the addendum.

    `overflowed` holds one entry per ※ marker, in order: the cell label, for table cells with the
    section and row, e.g. "氏名（異動した人 3行目）".
    """

    pdf: bytes
    pages: int
    overflowed: tuple[str, ...]


def render_form(form: ResolvedForm, options: RenderOptions) -> RenderResult:
    """Render one application form to PDF (grid layout or values over the city's template)."""
    plan = plan_form(form, options, Measure(options.fonts))
    return RenderResult(finish_plan(plan, options), len(plan.pages), plan.overflowed)
