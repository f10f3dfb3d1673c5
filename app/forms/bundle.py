"""The case bundle: a cover with a table of contents, then every form, as one PDF."""

from __future__ import annotations

import io
from collections.abc import Sequence

from pypdf import PdfReader, PdfWriter
from reportlab.lib.units import mm

from app.forms.drawing import Drawer, finish_plan, write_pdf
from app.forms.fonts import ROLE_TEXT
from app.forms.layout import Flow, FormPlan, footer, lines_at, plan_form
from app.forms.primitives import (
    A4,
    ASCENT,
    BAND_FILL,
    CONTINUED,
    MARGIN_TOP,
    MARGIN_X,
    PAD_X,
    QR,
    QR_SIZE,
    RULE,
    Box,
    Page,
    Prim,
    Rect,
    Text,
)
from app.forms.render_options import RenderOptions
from app.forms.resolved import ResolvedForm
from app.forms.typeset import Measure, block_height


def plan_cover(
    plans: Sequence[FormPlan], options: RenderOptions, measure: Measure, title: str,
    lines: Sequence[tuple[str, str]], cover_pages: int,
) -> list[Page]:
    """Cover pages: the title, the case facts and a table of contents with page ranges."""
    flow = Flow(A4)
    flow.new_page("cover")
    row_h = 8 * mm
    label_w = 45 * mm

    def rows(cells: Sequence[tuple[str, float, float, str, float | None]], min_h: float) -> None:
        # Each cell: (text, width, font size, align, fill); the row grows with wrapped text.
        fits = [measure.fit(text, ROLE_TEXT, w - 2 * PAD_X, 1e9, size, size, wrap=True)
                for text, w, size, _, _ in cells]
        height = max([min_h] + [block_height(len(f.lines), f.size) + 2 * 2 * mm for f in fits])
        if not flow.fits(height):
            flow.new_page("cover")
        x = flow.left
        for (_, w, _, align, fill), fit in zip(cells, fits, strict=True):
            box = Box(x, flow.cursor - height, w, height)
            flow.add([Rect(box, RULE, fill)])
            flow.add(lines_at(fit.lines, ROLE_TEXT, fit.size, align, box.inset(PAD_X, 2 * mm)))
            x += w
        flow.cursor -= height

    for label, value in lines:
        rows([(label, label_w, 9.0, "left", BAND_FILL), (value, flow.width - label_w, 11.0, "left", None)], row_h)
    flow.cursor -= 8 * mm
    flow.add([Text(flow.left, flow.cursor - 12 * ASCENT, "提出書類一覧（目次）", ROLE_TEXT, 12.0)])
    flow.cursor -= 12 + 3 * mm
    widths = (12 * mm, flow.width - 12 * mm - 55 * mm - 28 * mm, 55 * mm, 28 * mm)
    head = ("No.", "書類", "担当課", "ページ")
    rows([(h, w, 8.0, "center", BAND_FILL) for h, w in zip(head, widths, strict=True)], 6 * mm)
    start = cover_pages + 1
    for number, plan in enumerate(plans, start=1):
        end = start + len(plan.pages) - 1
        span = f"{start}" if end == start else f"{start}〜{end}"
        values = (str(number), plan.form.title, plan.form.department_name, span)
        aligns = ("center", "left", "left", "center")
        rows([(v, w, 10.0, a, None) for v, w, a in zip(values, widths, aligns, strict=True)], row_h)
        start = end + 1
    payload = options.qr_url or next((p.form.case_number for p in plans if p.form.case_number), "")
    case = next((p.form.case_number for p in plans if p.form.case_number), "")
    for number, page in enumerate(flow.pages, start=1):
        width, height = page.size
        top = height - MARGIN_TOP
        prims: list[Prim] = []
        if payload:
            prims.append(QR(Box(width - MARGIN_X - QR_SIZE, top - QR_SIZE, QR_SIZE, QR_SIZE), payload))
        if case:
            prims.append(Text(width - MARGIN_X, top - QR_SIZE - 2.8 * mm, f"案件番号 {case}", ROLE_TEXT, 7.0,
                               "right"))
        room = width - 2 * (MARGIN_X + QR_SIZE + 4 * mm)
        size = min(18.0, 18.0 * room / max(measure.width(title, ROLE_TEXT, 18.0), 1e-6))
        heading = title if number == 1 else title + CONTINUED
        prims.append(Text(width / 2, top - 11 * mm, heading, ROLE_TEXT, size, "center"))
        prims += footer(page.size, measure, options.generated_label, f"表紙 {number} / {len(flow.pages)}")
        page.prims[:0] = prims
    return flow.pages


def render_bundle(
    forms: Sequence[ResolvedForm], options: RenderOptions, *, cover_title: str,
    cover_lines: Sequence[tuple[str, str]],
) -> bytes:
    """Render a cover page with a table of contents followed by every form, as one PDF."""
    measure = Measure(options.fonts)
    plans = [plan_form(form, options, measure) for form in forms]
    # The page ranges depend on how many cover pages there are: plan once to count them.
    cover = plan_cover(plans, options, measure, cover_title, cover_lines, 1)
    cover = plan_cover(plans, options, measure, cover_title, cover_lines, len(cover))
    if all(plan.template is None for plan in plans):
        drawer = Drawer(options, cover[0].size, cover_title)
        drawer.draw(cover)
        for plan in plans:
            drawer.draw(plan.pages)
        return drawer.finish()
    drawer = Drawer(options, cover[0].size, cover_title)
    drawer.draw(cover)
    parts = [drawer.finish()] + [finish_plan(plan, options) for plan in plans]
    writer = PdfWriter()
    for part in parts:
        for page in PdfReader(io.BytesIO(part)).pages:
            writer.add_page(page)
    return write_pdf(writer, cover_title, b"".join(parts))

