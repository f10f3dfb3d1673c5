"""The layout pass: a resolved form becomes pages of primitives (grid flow, template placements, addendum, headers)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from pypdf import PageObject, PdfReader
from reportlab.lib.units import mm

from app.forms.cells import CellPainter, Overflow, lines_at, text_role, value_size
from app.forms.fonts import ROLE_NAME, ROLE_TEXT
from app.forms.primitives import (
    A4,
    ADDENDUM_TITLE,
    ASCENT,
    BAND_FILL,
    BAND_H,
    CONTINUED,
    HEADER_H,
    HEADER_LABEL_SIZE,
    LABEL_GREY,
    MARGIN_BOTTOM,
    MARGIN_TOP,
    MARGIN_X,
    NAME_SIZE,
    PAD_X,
    PAD_Y,
    PAGE_SIZES,
    QR,
    QR_SIZE,
    RULE,
    TABLE_HEAD_H,
    TEMPLATE_QR_INSET,
    TEMPLATE_QR_SIZE,
    TEXT_SIZE,
    Box,
    Page,
    Prim,
    Rect,
    Text,
)
from app.forms.render_options import RenderOptions
from app.forms.resolved import ResolvedCell, ResolvedForm, ResolvedRow, ResolvedSection, ResolvedTable
from app.forms.schema import FormField, Layout
from app.forms.typeset import Measure, is_short
from app.forms.wareki import format_wareki


def page_size(layout: Layout | None) -> tuple[float, float]:
    if layout is None:
        return A4
    w, h = PAGE_SIZES[layout.page]
    return (h, w) if layout.orientation == "landscape" else (w, h)


def recipient_line(city: str, recipient: str | None) -> str:
    """The addressee line, e.g. "みなと市" + "市長あて" -> "みなと市長　あて"."""
    if not recipient:
        return ""
    if city and city[-1] in "都道府県市区町村" and recipient.startswith(city[-1]):
        recipient = recipient[1:]  # the definitions say 市長あて; the city name already ends in 市
    text = city + recipient
    if text.endswith("あて") and not text[:-2].endswith(("\u3000", " ")):
        text = text[:-2] + "\u3000あて"
    return text


# A short table value (typeset.is_short) gets a column wide enough for it at this size.
SHORT_VALUE_SIZE = 9.0
# A column giving room to another keeps at least this share of its relative width.
MIN_COLUMN_SHARE = 0.55


class Flow:
    """Pages of one page size filled from the top, with a cursor and page breaks."""

    def __init__(self, size: tuple[float, float]) -> None:
        self.size = size
        self.left = MARGIN_X
        self.width = size[0] - 2 * MARGIN_X
        self.top = size[1] - MARGIN_TOP - HEADER_H
        self.bottom = MARGIN_BOTTOM
        self.pages: list[Page] = []
        self.cursor = self.top

    def new_page(self, kind: str) -> None:
        self.pages.append(Page(self.size, kind))
        self.cursor = self.top

    @property
    def at_top(self) -> bool:
        return self.cursor >= self.top - 0.01

    def fits(self, height: float) -> bool:
        return self.cursor - height >= self.bottom - 0.01

    def add(self, prims: Sequence[Prim]) -> None:
        self.pages[-1].prims.extend(prims)


class GridPlanner:
    """Lays out a grid form (form.layout) page by page, then its addendum."""

    def __init__(self, form: ResolvedForm, layout: Layout, painter: CellPainter) -> None:
        self.form = form
        self.layout = layout
        self.painter = painter
        self.measure = painter.measure
        self.flow = Flow(page_size(layout))
        self.row_mm = layout.row_mm * mm
        self._frame_top: float | None = None
        self._widths_cache: dict[int, list[float]] = {}

    def plan(self) -> list[Page]:
        self.flow.new_page("first")
        for section in self.form.sections:
            self._section(section)
        return self.flow.pages

    def _height(self, factor: float) -> float:
        # A row taller than a page could never be placed: clamp it to the content height.
        return min(self.row_mm * factor, self.flow.top - self.flow.bottom - BAND_H - TABLE_HEAD_H)

    def _break(self, height: float, section: ResolvedSection) -> bool:
        """Start a new page unless height fits; return True when it did."""
        if self.flow.fits(height) or self.flow.at_top:
            return False
        self._new_page()
        self._band(section, continued=True)
        return True

    def _new_page(self) -> None:
        self._close_frame()
        self.flow.new_page("continued")

    def _close_frame(self) -> None:
        """Draw the heavier outline of the section part on this page, as printed forms have."""
        flow = self.flow
        if self._frame_top is not None and flow.cursor < self._frame_top:
            flow.add([Rect(Box(flow.left, flow.cursor, flow.width, self._frame_top - flow.cursor), 1.0)])
        self._frame_top = None

    def _section(self, section: ResolvedSection) -> None:
        flow = self.flow
        first = self._height(section.rows[0].height) if section.rows else 0.0
        if section.rows:
            if not flow.fits(BAND_H + first) and not flow.at_top:
                self._new_page()
            self._band(section, continued=False)
            for row in section.rows:
                height = self._height(row.height)
                self._break(height, section)
                self._row(row, height, section)
        if section.table is not None:
            self._table(section, section.table, band=not section.rows)
        self._close_frame()

    def _band(self, section: ResolvedSection, *, continued: bool) -> None:
        flow = self.flow
        if self._frame_top is None:
            self._frame_top = flow.cursor
        box = Box(flow.left, flow.cursor - BAND_H, flow.width, BAND_H)
        title = section.title + (CONTINUED if continued else "")
        prims: list[Prim] = [Rect(box, RULE, BAND_FILL)]
        inner = box.inset(2 * mm, 0)
        title_size = 9.0
        prims += lines_at([title], ROLE_TEXT, title_size, "left", inner)
        if section.note:
            room = inner.w - self.measure.width(title, ROLE_TEXT, title_size) - 6 * mm
            width = self.measure.width(section.note, ROLE_TEXT, 7.0)
            size = 7.0 if width <= room else max(4.5, 7.0 * room / max(width, 1e-6))
            prims += lines_at([section.note], ROLE_TEXT, size, "right", inner, grey=0.25)
        flow.add(prims)
        flow.cursor -= BAND_H

    def _widths(self, specs: Sequence[FormField]) -> list[float]:
        total = sum(spec.width for spec in specs)
        return [self.flow.width * spec.width / total for spec in specs]

    def _table_widths(self, table: ResolvedTable) -> list[float]:
        """Column widths: relative widths, widened so that every short value fits on one line.

        A short value (続柄 世帯主, 性別, a date) never wraps or shrinks below SHORT_VALUE_SIZE: the columns
        that need more room take it from the columns with room to spare, in proportion to that spare room.
        """
        cached = self._widths_cache.get(id(table))
        if cached is not None:
            return cached
        widths = self._widths(table.columns)
        needs = [0.0] * len(widths)
        for cells in table.rows:
            for col, cell in enumerate(cells):
                spec = cell.spec
                if spec.style != "text" or not cell.text or not is_short(cell.text):
                    continue
                size = min(SHORT_VALUE_SIZE, value_size(spec))
                need = self.measure.width(cell.text, text_role(spec, cell.text), size) + 2 * PAD_X + 0.5
                needs[col] = max(needs[col], need)
        deficit = sum(max(0.0, need - w) for need, w in zip(needs, widths, strict=True))
        if deficit > 0:
            spare = [max(0.0, w - max(need, w * MIN_COLUMN_SHARE)) for need, w in zip(needs, widths, strict=True)]
            room = sum(spare)
            if room > 0:
                take = min(1.0, deficit / room)
                widths = [max(need, w) if need > w else w - s * take
                          for need, w, s in zip(needs, widths, spare, strict=True)]
        self._widths_cache[id(table)] = widths
        return widths

    def _column_sizes(self, table: ResolvedTable, widths: Sequence[float], height: float) -> list[float | None]:
        """One size per column: the smallest size any row's value needs, so a column never mixes sizes."""
        caps: list[float | None] = [None] * len(widths)
        for cells in table.rows:
            for col, cell in enumerate(cells):
                if cell.spec.style not in ("text", "multiline") or not cell.text:
                    continue
                area = Box(0, 0, widths[col], height).inset(PAD_X, PAD_Y)
                size = self.painter.text_fit(cell, area).size
                caps[col] = size if caps[col] is None else min(caps[col], size)
        return caps

    def _row(self, row: ResolvedRow, height: float, section: ResolvedSection) -> None:
        flow = self.flow
        x = flow.left
        prims: list[Prim] = []
        for cell, width in zip(row.cells, self._widths([c.spec for c in row.cells]), strict=True):
            box = Box(x, flow.cursor - height, width, height)
            label = cell.spec.label
            prims += self.painter.cell(cell, box, where=label or section.title, label=label)
            x += width
        flow.add(prims)
        flow.cursor -= height

    def _table(self, section: ResolvedSection, table: ResolvedTable, *, band: bool) -> None:
        flow = self.flow
        count = max(len(table.rows), table.min_rows)
        height = self._height(table.row_height)
        need = TABLE_HEAD_H + (height if count else 0.0) + (BAND_H if band else 0.0)
        if not flow.fits(need) and not flow.at_top:
            self._new_page()
            band = True  # a section continuing on a new page gets its title band again
        if band:
            self._band(section, continued=bool(section.rows))
        self._table_head(table)
        widths = self._table_widths(table)
        caps = self._column_sizes(table, widths, height)
        for index in range(count):
            if self._break(height, section):
                self._table_head(table)
            cells = table.rows[index] if index < len(table.rows) else ()
            x = flow.left
            prims: list[Prim] = []
            for col, (spec, width) in enumerate(zip(table.columns, widths, strict=True)):
                cell = cells[col] if col < len(cells) else ResolvedCell(spec)
                box = Box(x, flow.cursor - height, width, height)
                where = f"{spec.label or section.title}（{section.title} {index + 1}行目）"
                prims += self.painter.cell(cell, box, where=where, label=None, centred=True, size_cap=caps[col])
                x += width
            flow.add(prims)
            flow.cursor -= height

    def _table_head(self, table: ResolvedTable) -> None:
        flow = self.flow
        x = flow.left
        prims: list[Prim] = []
        for spec, width in zip(table.columns, self._table_widths(table), strict=True):
            box = Box(x, flow.cursor - TABLE_HEAD_H, width, TABLE_HEAD_H)
            prims.append(Rect(box, RULE, BAND_FILL))
            area = box.inset(0.8 * mm, 0.4 * mm)
            fit = self.measure.fit(spec.label, ROLE_TEXT, area.w, area.h, HEADER_LABEL_SIZE, 4.5, wrap=False,
                                   must_fit=False)
            prims += lines_at(fit.lines, ROLE_TEXT, fit.size, "center", area)
            x += width
        flow.add(prims)
        flow.cursor -= TABLE_HEAD_H


def plan_addendum(flow: Flow, measure: Measure, overflows: Sequence[Overflow], heading: str) -> None:
    """Append addendum pages listing every overflowed cell's full text."""
    if not overflows:
        return
    flow.new_page("addendum")
    intro = f"「{heading}」の欄に記入しきれなかった内容です。番号（※）は様式の欄の番号と対応しています。"
    for line in measure.wrap(intro, ROLE_TEXT, 8.0, flow.width):
        flow.add([Text(flow.left, flow.cursor - 8.0 * ASCENT, line, ROLE_TEXT, 8.0, grey=LABEL_GREY)])
        flow.cursor -= 8.0 * 1.5
    flow.cursor -= 3 * mm
    indent = 6 * mm
    for item in overflows:
        head = f"※{item.number} 〈{item.label}〉:"
        head_size = 9.5
        size = NAME_SIZE if item.role == ROLE_NAME else TEXT_SIZE
        line_h = size * 1.45
        head_w = measure.width(head, ROLE_TEXT, head_size) + 1.5 * mm
        first_w = flow.width - head_w if head_w < flow.width * 0.6 else 0.0
        lines = measure.wrap(item.text, item.role, size, flow.width - indent, first_w=first_w)
        if not flow.fits(line_h * 2) and not flow.at_top:
            flow.new_page("addendum")
        flow.add([Text(flow.left, flow.cursor - size * ASCENT, head, ROLE_TEXT, head_size)])
        for index, line in enumerate(lines):
            if not flow.fits(line_h):
                flow.new_page("addendum")
            x = flow.left + head_w if index == 0 else flow.left + indent
            flow.add([Text(x, flow.cursor - size * ASCENT, line, item.role, size)])
            flow.cursor -= line_h
        flow.cursor -= 2.5 * mm


def _filed_text(day: object) -> str:
    """The filing date in 和暦; an odd stored value prints as it is rather than failing the form."""
    try:
        return format_wareki(day)  # type: ignore[arg-type]
    except (ValueError, TypeError, AttributeError):
        return str(day)


def qr_payload(form: ResolvedForm, options: RenderOptions) -> str:
    return options.qr_url or form.case_number or form.instance_id


def decorate(pages: list[Page], form: ResolvedForm, options: RenderOptions, measure: Measure) -> None:
    """Add headers (heading, recipient, QR, case number) and footers now that the page count is known."""
    total = len(pages)
    payload = qr_payload(form, options)
    case = f"案件番号 {form.case_number}" if form.case_number else ""
    for number, page in enumerate(pages, start=1):
        width, height = page.size
        if page.kind == "template":
            if not form.values_only:  # nothing of ours goes onto the official paper but the values
                page.prims.extend(template_corner(page.size, payload, case))
            continue
        top = height - MARGIN_TOP
        prims: list[Prim] = []
        if payload:
            prims.append(QR(Box(width - MARGIN_X - QR_SIZE, top - QR_SIZE, QR_SIZE, QR_SIZE), payload))
        if case:
            prims.append(Text(width - MARGIN_X, top - QR_SIZE - 2.8 * mm, case, ROLE_TEXT, 7.0, "right"))
        if page.kind == "addendum":
            heading, sub = ADDENDUM_TITLE, f"（{form.heading}）"
        elif page.kind == "continued":
            heading, sub = form.heading + CONTINUED, ""
        else:
            heading = form.heading
            sub = f"届出日　{_filed_text(form.filed_on)}" if form.filed_on else ""
        room = width - 2 * (MARGIN_X + QR_SIZE + 4 * mm)
        size = min(16.0, 16.0 * room / max(measure.width(heading, ROLE_TEXT, 16.0), 1e-6))
        prims.append(Text(width / 2, top - 9 * mm, heading, ROLE_TEXT, size, "center"))
        if sub:
            prims.append(Text(width / 2, top - 15 * mm, sub, ROLE_TEXT, 9.0, "center"))
        recipient = recipient_line(options.city_name, form.recipient) if page.kind == "first" else ""
        if recipient:
            prims.append(Text(MARGIN_X, top - 19.5 * mm, recipient, ROLE_TEXT, 11.0))
        prims += footer(page.size, measure, options.generated_label, f"{case}　page {number} / {total}".strip())
        page.prims[:0] = prims


def footer(size: tuple[float, float], measure: Measure, left: str, right: str) -> list[Prim]:
    width = size[0]
    y = MARGIN_BOTTOM - 6.5 * mm
    prims: list[Prim] = [Text(width - MARGIN_X, y, right, ROLE_TEXT, 7.0, "right", 0.2)]
    if left:
        room = width - 2 * MARGIN_X - measure.width(right, ROLE_TEXT, 7.0) - 5 * mm
        font = min(6.5, 6.5 * room / max(measure.width(left, ROLE_TEXT, 6.5), 1e-6))
        prims.append(Text(MARGIN_X, y, left, ROLE_TEXT, font, "left", 0.2))
    return prims


def template_corner(size: tuple[float, float], payload: str, case: str) -> list[Prim]:
    """QR code and case number in the top-right margin of a city's own template page."""
    width, height = size
    box = Box(width - TEMPLATE_QR_INSET - TEMPLATE_QR_SIZE, height - TEMPLATE_QR_INSET - TEMPLATE_QR_SIZE,
               TEMPLATE_QR_SIZE, TEMPLATE_QR_SIZE)
    prims: list[Prim] = [QR(box, payload)] if payload else []
    if case:
        prims.append(Text(box.x - 1.5 * mm, box.top - 2 * mm - 6.5 * ASCENT, case, ROLE_TEXT, 6.5, "right"))
    return prims



@dataclass
class FormPlan:
    form: ResolvedForm
    pages: list[Page]
    template: PdfReader | None  # pages[:len(template.pages)] are overlays for the template
    overflowed: tuple[str, ...]


def plan_form(form: ResolvedForm, options: RenderOptions, measure: Measure) -> FormPlan:
    # Each signer's own signature in their own box; the options' one signature (scripts) only in the first.
    painter = CellPainter(options, measure, form.box_signatures(options.signature_png))
    template: PdfReader | None = None
    if form.template is not None:
        template = PdfReader(io.BytesIO(form.template))
        pages = [Page(media_size(page), "template") for page in template.pages]
        for index, (place, cell) in enumerate(form.placed):
            if place.page > len(pages):
                raise ValueError(f"{form.instance_id}: field {index + 1} is placed on page {place.page}, "
                                 f"but the template has {len(pages)} page(s)")
            page = pages[place.page - 1]
            # The printer's offset is corrected only where values go onto paper already printed.
            dx, dy = options.printer_offset_mm if form.values_only else (0.0, 0.0)
            box = Box((place.x - dx) * mm, page.size[1] - (place.y - dy + place.h) * mm, place.w * mm, place.h * mm)
            where = cell.spec.label or f"欄{index + 1}"
            page.prims += painter.cell(cell, box, where=where, label=None, border=False, pad=(0.8 * mm, 0.3 * mm))
        flow = Flow(A4)
    elif form.layout is not None:
        planner = GridPlanner(form, form.layout, painter)
        pages = planner.plan()
        flow = planner.flow
    else:
        raise ValueError(f"{form.instance_id}: the form has neither a layout nor a template")
    flow.pages = pages
    plan_addendum(flow, measure, painter.overflows, form.heading)
    decorate(pages, form, options, measure)
    return FormPlan(form, pages, template, tuple(o.label for o in painter.overflows))


def media_size(page: PageObject) -> tuple[float, float]:
    box = page.mediabox
    return float(box.width), float(box.height)

