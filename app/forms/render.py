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

import hashlib
import io
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

import segno
from pypdf import PageObject, PdfReader, PdfWriter, Transformation
from pypdf.generic import ArrayObject, ByteStringObject
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen.canvas import Canvas

from app.forms.fonts import ROLE_NAME, ROLE_TEXT, FontSet, is_variation_selector
from app.forms.resolved import ResolvedCell, ResolvedForm, ResolvedRow, ResolvedSection, ResolvedTable
from app.forms.schema import Choice, FormField, Layout
from app.forms.wareki import format_wareki

__all__ = ["RenderOptions", "RenderResult", "render_bundle", "render_form"]

# Japanese forms use JIS B sizes (B4 257x364, B5 182x257), not reportlab's ISO B sizes.
PAGE_SIZES: dict[str, tuple[float, float]] = {
    "A4": (210 * mm, 297 * mm),
    "A3": (297 * mm, 420 * mm),
    "B4": (257 * mm, 364 * mm),
    "B5": (182 * mm, 257 * mm),
}
A4 = PAGE_SIZES["A4"]

MARGIN_X = 12 * mm
MARGIN_TOP = 10 * mm
MARGIN_BOTTOM = 12 * mm
HEADER_H = 22 * mm
BAND_H = 6 * mm
TABLE_HEAD_H = 6 * mm
QR_SIZE = 16 * mm
TEMPLATE_QR_SIZE = 12 * mm
TEMPLATE_QR_INSET = 4 * mm
QR_BORDER = 2  # quiet zone in modules

RULE = 0.5
BAND_FILL = 0.88
BLANK_FILL = 0.93
LABEL_GREY = 0.35
LABEL_SIZE = 6.5
HEADER_LABEL_SIZE = 7.0
TEXT_SIZE = 10.5
NAME_SIZE = 11.5
OPTION_SIZE = 8.5
CHECK_SQUARE = 3 * mm
COMB_MAX_W = 7 * mm
COMB_MIN_H = 4 * mm
PAD_X = 1.2 * mm
PAD_Y = 0.6 * mm
LABEL_BAND = 0.7 * mm + LABEL_SIZE + 0.4 * mm  # label line height at the top of a cell
# The em box of the IPA fonts spans 0.88 em above and 0.12 em below the baseline.
ASCENT = 0.88
LEADING = 1.2
ADDENDUM_TITLE = "別紙（記入しきれなかった内容）"
CONTINUED = "（続き）"

# Characters that must not start a line (kinsoku) and ones that must not end it.
_NO_START = frozenset("、。，．,.）)」』】〕〉》］]｝}・：；:;！？!?ー…‥々ゝゞぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ")
_NO_END = frozenset("（(「『【〔〈《［[｛{")
_SPACES = frozenset(" \u3000")


@dataclass(frozen=True)
class RenderOptions:
    """How to render: fonts, the QR payload, the resident's signature and footer texts."""

    fonts: FontSet
    qr_url: str | None = None
    signature_png: bytes | None = None
    city_name: str = ""
    generated_label: str = ""
    min_font_size: float = 6.0


@dataclass(frozen=True)
class RenderResult:
    """A rendered form: the PDF, its page count and the labels of cells continued on the addendum.

    `overflowed` holds one entry per ※ marker, in order: the cell label, for table cells with the
    section and row, e.g. "氏名（異動した人 3行目）".
    """

    pdf: bytes
    pages: int
    overflowed: tuple[str, ...]


# ---------------------------------------------------------------------------------------------
# Drawing primitives (points, origin bottom-left, as reportlab draws)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def top(self) -> float:
        return self.y + self.h

    @property
    def right(self) -> float:
        return self.x + self.w

    def inset(self, dx: float, dy: float) -> _Box:
        return _Box(self.x + dx, self.y + dy, max(0.0, self.w - 2 * dx), max(0.0, self.h - 2 * dy))


@dataclass(frozen=True)
class _Rect:
    box: _Box
    stroke: float = 0.0  # line width; 0 draws no outline
    fill: float | None = None  # grey level


@dataclass(frozen=True)
class _Poly:
    points: tuple[tuple[float, float], ...]
    width: float


@dataclass(frozen=True)
class _Text:
    x: float
    y: float  # baseline
    text: str
    role: str
    size: float
    align: str = "left"
    grey: float = 0.0


@dataclass(frozen=True)
class _Image:
    box: _Box


@dataclass(frozen=True)
class _QR:
    box: _Box  # the whole square, quiet zone included
    data: str


_Prim = _Rect | _Poly | _Text | _Image | _QR


@dataclass
class _Page:
    size: tuple[float, float]
    kind: str  # first | continued | addendum | template | cover
    prims: list[_Prim] = field(default_factory=list)


@dataclass(frozen=True)
class _Overflow:
    number: int
    label: str
    text: str
    role: str


@dataclass(frozen=True)
class _Fit:
    lines: tuple[str, ...]
    size: float
    complete: bool  # False: lines hold only what fits and the rest must go to the addendum


# ---------------------------------------------------------------------------------------------
# Text measurement and wrapping
# ---------------------------------------------------------------------------------------------


def _clusters(text: str) -> list[str]:
    """Split text into units that must stay together: base + selectors / combining marks, surrogate pairs."""
    out: list[str] = []
    for ch in text:
        cp = ord(ch)
        if out and ch != "\n" and out[-1] != "\n" and (
            is_variation_selector(ch)
            or unicodedata.category(ch) in ("Mn", "Me")
            or ch == "\u200d"
            or out[-1].endswith("\u200d")
            or (0xDC00 <= cp <= 0xDFFF and 0xD800 <= ord(out[-1][-1]) <= 0xDBFF)
        ):
            out[-1] += ch
        else:
            out.append(ch)
    return out


def _block_height(lines: int, size: float) -> float:
    return size * (1 + (lines - 1) * LEADING) if lines else 0.0


class _Measure:
    """Measures and wraps text with the FontSet, caching widths per cluster at 1 pt."""

    def __init__(self, fonts: FontSet) -> None:
        self.fonts = fonts
        self._cache: dict[tuple[str, str], float] = {}

    def width(self, text: str, role: str, size: float) -> float:
        return self.fonts.string_width(text, role, size)

    def units(self, text: str, role: str) -> list[tuple[str, float]]:
        out = []
        for cluster in _clusters(text):
            key = (cluster, role)
            width = self._cache.get(key)
            if width is None:
                width = self._cache[key] = 0.0 if cluster == "\n" else self.fonts.string_width(cluster, role, 1.0)
            out.append((cluster, width))
        return out

    def wrap(self, text: str, role: str, size: float, max_w: float, first_w: float | None = None) -> list[str]:
        """Break text into lines no wider than max_w (the first line first_w), between any two clusters."""
        lines: list[list[tuple[str, float]]] = []
        cur: list[tuple[str, float]] = []
        cur_w = 0.0
        limit = max_w if first_w is None else first_w
        for cluster, unit in self.units(text, role):
            if cluster == "\n":
                lines.append(cur)
                cur, cur_w, limit = [], 0.0, max_w
                continue
            w = unit * size
            if cur and cur_w + w > limit + 1e-6:
                carry = _carry(cur, cluster, unit, size, max_w)
                lines.append(cur[: len(cur) - carry])
                cur = cur[len(cur) - carry :]
                cur_w = sum(u * size for _, u in cur)
                limit = max_w
                if not cur and cluster in _SPACES:
                    continue  # a space that caused the break would only indent the next line
            elif not cur and first_w is not None and limit < w and not lines:
                # Not even one cluster fits after the addendum heading: start on the next line.
                lines.append([])
                limit = max_w
            cur.append((cluster, unit))
            cur_w += w
        lines.append(cur)
        return ["".join(c for c, _ in line) for line in lines]

    def fit(
        self, text: str, role: str, box_w: float, box_h: float, size: float, floor: float, *, wrap: bool,
        must_fit: bool = True,
    ) -> _Fit:
        """Shrink (one line) then wrap text into a box; report whether all of it fits."""
        if not text:
            return _Fit((), size, True)
        floor = min(floor, size)
        cap = max(floor, min(size, box_h))  # one line needs about 1 em of height
        total = sum(u for _, u in self.units(text, role))
        if not wrap and "\n" not in text and total > 0:
            if total * cap <= box_w + 1e-6:
                return _Fit((text,), cap, True)
            # Sizes are truncated to 0.1 pt so that the line is never wider than the box.
            shrunk = int(box_w / total * 10) / 10
            if shrunk >= floor:
                return _Fit((text,), shrunk, True)
        s = cap
        while True:
            lines = self.wrap(text, role, s, box_w)
            if _block_height(len(lines), s) <= box_h + 0.01:
                return _Fit(tuple(lines), s, True)
            if s <= floor:
                break
            s = max(floor, s - 0.5)
        if not must_fit:
            return _Fit(tuple(lines), floor, True)
        room = max(1, int((box_h / floor - 1) / LEADING + 1 + 1e-6))
        return _Fit(tuple(lines[:room]), floor, False)

    def with_marker(self, lines: Sequence[str], marker: str, role: str, size: float, box_w: float) -> list[str]:
        """Cut the last line so that the overflow marker fits after it."""
        out = list(lines) or [""]
        units = self.units(out[-1], role)
        room = box_w - self.width(marker, role, size)
        while units and sum(u for _, u in units) * size > room:
            units.pop()
        out[-1] = "".join(c for c, _ in units) + marker
        return out


def _is_word(cluster: str) -> bool:
    return cluster.isascii() and cluster.isalnum()


def _carry(line: list[tuple[str, float]], nxt: str, nxt_unit: float, size: float, max_w: float) -> int:
    """How many clusters at the end of a full line to move to the next one (kinsoku, Latin words)."""
    if len(line) < 2:
        return 0
    if nxt in _NO_START or line[-1][0] in _NO_END:
        return 1
    if _is_word(nxt):
        # Keep Latin words and numbers (alphabet names, 202号室, 018) whole when they can move as a unit.
        begin = len(line)
        while begin > 0 and _is_word(line[begin - 1][0]):
            begin -= 1
        moved = line[begin:]
        fits = (sum(u for _, u in moved) + nxt_unit) * size < max_w
        if begin > 0 and len(moved) <= 16 and fits:
            return len(moved)
    return 0


# ---------------------------------------------------------------------------------------------
# Cells
# ---------------------------------------------------------------------------------------------


def _role(spec: FormField) -> str:
    if spec.font is not None:
        return ROLE_NAME if spec.font == "name" else ROLE_TEXT
    return ROLE_NAME if spec.kind == "name" else ROLE_TEXT


def _value_size(spec: FormField) -> float:
    if spec.size is not None:
        return spec.size
    return NAME_SIZE if _role(spec) == ROLE_NAME else TEXT_SIZE


def _lines_at(lines: Sequence[str], role: str, size: float, align: str, area: _Box, grey: float = 0.0) -> list[_Prim]:
    """Text lines vertically centred in area, aligned left / center / right."""
    top = area.y + (area.h + _block_height(len(lines), size)) / 2
    x = {"left": area.x, "center": area.x + area.w / 2, "right": area.right}[align]
    return [
        _Text(x, top - size * ASCENT - i * size * LEADING, line, role, size, align, grey)
        for i, line in enumerate(lines)
    ]


class _CellPainter:
    """Lays out the inside of cells for one form and numbers what overflows to the addendum."""

    def __init__(self, options: RenderOptions, measure: _Measure, signature: tuple[float, float] | None) -> None:
        self.options = options
        self.measure = measure
        self.signature = signature
        self.overflows: list[_Overflow] = []

    def overflow(self, label: str, text: str, role: str) -> str:
        number = len(self.overflows) + 1
        self.overflows.append(_Overflow(number, label, text, role))
        return f"※{number}"

    def cell(
        self, cell: ResolvedCell, box: _Box, *, where: str, label: str | None, border: bool = True,
        centred: bool = False, pad: tuple[float, float] = (PAD_X, PAD_Y),
    ) -> list[_Prim]:
        """The prims of one cell: border, small label, then the value by style."""
        spec = cell.spec
        prims: list[_Prim] = []
        if border or spec.style == "blank":
            fill = BLANK_FILL if spec.style == "blank" else None
            prims.append(_Rect(box, RULE if border else 0.0, fill))
        area = box.inset(*pad)
        beside = None
        if label:
            size = LABEL_SIZE
            width = self.measure.width(label, ROLE_TEXT, size)
            if width > area.w > 0:
                size = max(4.0, size * area.w / width)
                width = self.measure.width(label, ROLE_TEXT, size)
            prims.append(_Text(area.x, box.top - 0.7 * mm - LABEL_SIZE * ASCENT, label, ROLE_TEXT, size,
                               grey=LABEL_GREY))
            beside_x = area.x + width + 1.5 * mm
            beside = _Box(beside_x, area.y, max(0.0, area.right - beside_x), area.h)
            area = _Box(area.x, area.y, area.w, max(0.0, box.top - LABEL_BAND - area.y))
        style = spec.style
        if style == "blank":
            return prims
        if style == "signature":
            return prims + self._signature(area)
        if style == "check":
            return prims + self._check(cell, area, box, where)
        if style == "comb":
            if beside is not None and area.h < COMB_MIN_H and beside.w > area.w / 2:
                area = beside  # a short row: put the boxes right of the label instead of below it
            return prims + self._comb(cell, area, box, where, centred)
        return prims + self._text(cell, area, where)

    def _text(self, cell: ResolvedCell, area: _Box, where: str) -> list[_Prim]:
        if not cell.text:
            return []
        spec = cell.spec
        role = _role(spec)
        fit = self.measure.fit(cell.text, role, area.w, area.h, _value_size(spec), self.options.min_font_size,
                               wrap=spec.style == "multiline")
        lines = list(fit.lines)
        if not fit.complete:
            marker = "…" + self.overflow(where, cell.text, role)
            lines = self.measure.with_marker(lines, marker, role, fit.size, area.w)
        return _lines_at(lines, role, fit.size, spec.align, area)

    def _marker(self, box: _Box, marker: str) -> _Text:
        # Comb and check cells have no free text line: the marker goes to the cell's top-right corner.
        return _Text(box.right - 0.8 * mm, box.top - 0.7 * mm - LABEL_SIZE * ASCENT, marker, ROLE_TEXT,
                     LABEL_SIZE, "right")

    def _comb(self, cell: ResolvedCell, area: _Box, box: _Box, where: str, centred: bool) -> list[_Prim]:
        spec = cell.spec
        boxes = spec.boxes or 1
        role = _role(spec)
        box_w = min(COMB_MAX_W, area.w / boxes)
        box_h = min(area.h, max(COMB_MIN_H, box_w * 1.3))
        total = box_w * boxes
        align = "center" if centred else spec.align
        x0 = {"left": area.x, "center": area.x + (area.w - total) / 2, "right": area.right - total}[align]
        y0 = area.y + (area.h - box_h) / 2
        prims: list[_Prim] = [_Rect(_Box(x0, y0, total, box_h), RULE)]
        prims += [_Poly(((x0 + i * box_w, y0), (x0 + i * box_w, y0 + box_h)), 0.3) for i in range(1, boxes)]
        chars = [c for c in _clusters(cell.text) if c != "\n"]
        size = min(_value_size(spec), box_h * 0.75, box_w * 0.9)
        for i, char in enumerate(chars[:boxes]):
            prims.append(_Text(x0 + (i + 0.5) * box_w, y0 + box_h / 2 - size * 0.38, char, role, size, "center"))
        if len(chars) > boxes:
            prims.append(self._marker(box, self.overflow(where, cell.text, role)))
        return prims

    def _check(self, cell: ResolvedCell, area: _Box, box: _Box, where: str) -> list[_Prim]:
        options = list(cell.spec.options or [])
        selected = set(cell.selected)
        floor = min(self.options.min_font_size, OPTION_SIZE)
        sizes = sorted({OPTION_SIZE, 7.5, 6.5, floor}, reverse=True)
        sizes = [s for s in sizes if s >= floor]
        for size in sizes:
            square = CHECK_SQUARE * size / OPTION_SIZE
            line_h = max(square, size) + 1.2 * mm
            items = [(o, square + 1 * mm + self.measure.width(o.label, ROLE_TEXT, size)) for o in options]
            rows: list[list[tuple[Choice, float]]] = [[]]
            used = 0.0
            for item in items:
                gap = 3 * mm if rows[-1] else 0.0
                if rows[-1] and used + gap + item[1] > area.w:
                    rows.append([])
                    used, gap = 0.0, 0.0
                rows[-1].append(item)
                used += gap + item[1]
            block = len(rows) * line_h - 1.2 * mm
            if block <= area.h + 0.01:
                break
        shown = max(1, int((area.h + 1.2 * mm + 0.01) // line_h))
        prims: list[_Prim] = []
        top = area.y + (area.h + min(block, shown * line_h - 1.2 * mm)) / 2
        drawn: set[str] = set()
        for r, row in enumerate(rows[:shown]):
            centre_y = top - r * line_h - max(square, size) / 2
            x = area.x
            for option, width in row:
                value, text = option.value, option.label
                sq = _Box(x, centre_y - square / 2, square, square)
                prims.append(_Rect(sq, 0.6))
                if value in selected:
                    drawn.add(value)
                    prims.append(_Poly(((sq.x + 0.18 * square, sq.y + 0.55 * square),
                                        (sq.x + 0.42 * square, sq.y + 0.2 * square),
                                        (sq.x + 0.9 * square, sq.y + 0.95 * square)), 1.2))
                prims.append(_Text(x + square + 1 * mm, centre_y - size * 0.38, text, ROLE_TEXT, size))
                x += width + 3 * mm
        missing = [v for v in cell.selected if v not in drawn]
        if missing:
            labels = {o.value: o.label for o in options}
            text = "、".join(labels.get(v, v) for v in missing)
            prims.append(self._marker(box, self.overflow(where, f"選択: {text}", ROLE_TEXT)))
        return prims

    def _signature(self, area: _Box) -> list[_Prim]:
        if self.signature is None or area.w <= 0 or area.h <= 0:
            return []
        iw, ih = self.signature
        scale = min(area.w / iw, area.h / ih)
        w, h = iw * scale, ih * scale
        return [_Image(_Box(area.x + (area.w - w) / 2, area.y + (area.h - h) / 2, w, h))]


# ---------------------------------------------------------------------------------------------
# Page flow
# ---------------------------------------------------------------------------------------------


def _page_size(layout: Layout | None) -> tuple[float, float]:
    if layout is None:
        return A4
    w, h = PAGE_SIZES[layout.page]
    return (h, w) if layout.orientation == "landscape" else (w, h)


def _recipient(city: str, recipient: str | None) -> str:
    """The addressee line, e.g. "みなと市" + "市長あて" -> "みなと市長　あて"."""
    if not recipient:
        return ""
    if city and city[-1] in "都道府県市区町村" and recipient.startswith(city[-1]):
        recipient = recipient[1:]  # the definitions say 市長あて; the city name already ends in 市
    text = city + recipient
    if text.endswith("あて") and not text[:-2].endswith(("\u3000", " ")):
        text = text[:-2] + "\u3000あて"
    return text


class _Flow:
    """Pages of one page size filled from the top, with a cursor and page breaks."""

    def __init__(self, size: tuple[float, float]) -> None:
        self.size = size
        self.left = MARGIN_X
        self.width = size[0] - 2 * MARGIN_X
        self.top = size[1] - MARGIN_TOP - HEADER_H
        self.bottom = MARGIN_BOTTOM
        self.pages: list[_Page] = []
        self.cursor = self.top

    def new_page(self, kind: str) -> None:
        self.pages.append(_Page(self.size, kind))
        self.cursor = self.top

    @property
    def at_top(self) -> bool:
        return self.cursor >= self.top - 0.01

    def fits(self, height: float) -> bool:
        return self.cursor - height >= self.bottom - 0.01

    def add(self, prims: Sequence[_Prim]) -> None:
        self.pages[-1].prims.extend(prims)


class _GridPlanner:
    """Lays out a grid form (form.layout) page by page, then its addendum."""

    def __init__(self, form: ResolvedForm, layout: Layout, painter: _CellPainter) -> None:
        self.form = form
        self.layout = layout
        self.painter = painter
        self.measure = painter.measure
        self.flow = _Flow(_page_size(layout))
        self.row_mm = layout.row_mm * mm
        self._frame_top: float | None = None

    def plan(self) -> list[_Page]:
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
            flow.add([_Rect(_Box(flow.left, flow.cursor, flow.width, self._frame_top - flow.cursor), 1.0)])
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
        box = _Box(flow.left, flow.cursor - BAND_H, flow.width, BAND_H)
        title = section.title + (CONTINUED if continued else "")
        prims: list[_Prim] = [_Rect(box, RULE, BAND_FILL)]
        inner = box.inset(2 * mm, 0)
        title_size = 9.0
        prims += _lines_at([title], ROLE_TEXT, title_size, "left", inner)
        if section.note:
            room = inner.w - self.measure.width(title, ROLE_TEXT, title_size) - 6 * mm
            width = self.measure.width(section.note, ROLE_TEXT, 7.0)
            size = 7.0 if width <= room else max(4.5, 7.0 * room / max(width, 1e-6))
            prims += _lines_at([section.note], ROLE_TEXT, size, "right", inner, grey=0.25)
        flow.add(prims)
        flow.cursor -= BAND_H

    def _widths(self, specs: Sequence[FormField]) -> list[float]:
        total = sum(spec.width for spec in specs)
        return [self.flow.width * spec.width / total for spec in specs]

    def _row(self, row: ResolvedRow, height: float, section: ResolvedSection) -> None:
        flow = self.flow
        x = flow.left
        prims: list[_Prim] = []
        for cell, width in zip(row.cells, self._widths([c.spec for c in row.cells]), strict=True):
            box = _Box(x, flow.cursor - height, width, height)
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
        widths = self._widths(table.columns)
        for index in range(count):
            if self._break(height, section):
                self._table_head(table)
            cells = table.rows[index] if index < len(table.rows) else ()
            x = flow.left
            prims: list[_Prim] = []
            for col, (spec, width) in enumerate(zip(table.columns, widths, strict=True)):
                cell = cells[col] if col < len(cells) else ResolvedCell(spec)
                box = _Box(x, flow.cursor - height, width, height)
                where = f"{spec.label or section.title}（{section.title} {index + 1}行目）"
                prims += self.painter.cell(cell, box, where=where, label=None, centred=True)
                x += width
            flow.add(prims)
            flow.cursor -= height

    def _table_head(self, table: ResolvedTable) -> None:
        flow = self.flow
        x = flow.left
        prims: list[_Prim] = []
        for spec, width in zip(table.columns, self._widths(table.columns), strict=True):
            box = _Box(x, flow.cursor - TABLE_HEAD_H, width, TABLE_HEAD_H)
            prims.append(_Rect(box, RULE, BAND_FILL))
            area = box.inset(0.8 * mm, 0.4 * mm)
            fit = self.measure.fit(spec.label, ROLE_TEXT, area.w, area.h, HEADER_LABEL_SIZE, 4.5, wrap=False,
                                   must_fit=False)
            prims += _lines_at(fit.lines, ROLE_TEXT, fit.size, "center", area)
            x += width
        flow.add(prims)
        flow.cursor -= TABLE_HEAD_H


def _plan_addendum(flow: _Flow, measure: _Measure, overflows: Sequence[_Overflow], heading: str) -> None:
    """Append addendum pages listing every overflowed cell's full text."""
    if not overflows:
        return
    flow.new_page("addendum")
    intro = f"「{heading}」の欄に記入しきれなかった内容です。番号（※）は様式の欄の番号と対応しています。"
    for line in measure.wrap(intro, ROLE_TEXT, 8.0, flow.width):
        flow.add([_Text(flow.left, flow.cursor - 8.0 * ASCENT, line, ROLE_TEXT, 8.0, grey=LABEL_GREY)])
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
        flow.add([_Text(flow.left, flow.cursor - size * ASCENT, head, ROLE_TEXT, head_size)])
        for index, line in enumerate(lines):
            if not flow.fits(line_h):
                flow.new_page("addendum")
            x = flow.left + head_w if index == 0 else flow.left + indent
            flow.add([_Text(x, flow.cursor - size * ASCENT, line, item.role, size)])
            flow.cursor -= line_h
        flow.cursor -= 2.5 * mm


def _filed_text(day: object) -> str:
    try:
        return format_wareki(day)  # type: ignore[arg-type]
    except (ValueError, TypeError, AttributeError):
        return str(day)


def _qr_payload(form: ResolvedForm, options: RenderOptions) -> str:
    return options.qr_url or form.case_number or form.instance_id


def _decorate(pages: list[_Page], form: ResolvedForm, options: RenderOptions, measure: _Measure) -> None:
    """Add headers (heading, recipient, QR, case number) and footers now that the page count is known."""
    total = len(pages)
    payload = _qr_payload(form, options)
    case = f"案件番号 {form.case_number}" if form.case_number else ""
    for number, page in enumerate(pages, start=1):
        width, height = page.size
        if page.kind == "template":
            page.prims.extend(_template_corner(page.size, payload, case))
            continue
        top = height - MARGIN_TOP
        prims: list[_Prim] = []
        if payload:
            prims.append(_QR(_Box(width - MARGIN_X - QR_SIZE, top - QR_SIZE, QR_SIZE, QR_SIZE), payload))
        if case:
            prims.append(_Text(width - MARGIN_X, top - QR_SIZE - 2.8 * mm, case, ROLE_TEXT, 7.0, "right"))
        if page.kind == "addendum":
            heading, sub = ADDENDUM_TITLE, f"（{form.heading}）"
        elif page.kind == "continued":
            heading, sub = form.heading + CONTINUED, ""
        else:
            heading = form.heading
            sub = f"届出日　{_filed_text(form.filed_on)}" if form.filed_on else ""
        room = width - 2 * (MARGIN_X + QR_SIZE + 4 * mm)
        size = min(16.0, 16.0 * room / max(measure.width(heading, ROLE_TEXT, 16.0), 1e-6))
        prims.append(_Text(width / 2, top - 9 * mm, heading, ROLE_TEXT, size, "center"))
        if sub:
            prims.append(_Text(width / 2, top - 15 * mm, sub, ROLE_TEXT, 9.0, "center"))
        recipient = _recipient(options.city_name, form.recipient) if page.kind == "first" else ""
        if recipient:
            prims.append(_Text(MARGIN_X, top - 19.5 * mm, recipient, ROLE_TEXT, 11.0))
        prims += _footer(page.size, measure, options.generated_label, f"{case}　page {number} / {total}".strip())
        page.prims[:0] = prims


def _footer(size: tuple[float, float], measure: _Measure, left: str, right: str) -> list[_Prim]:
    width = size[0]
    y = MARGIN_BOTTOM - 6.5 * mm
    prims: list[_Prim] = [_Text(width - MARGIN_X, y, right, ROLE_TEXT, 7.0, "right", 0.2)]
    if left:
        room = width - 2 * MARGIN_X - measure.width(right, ROLE_TEXT, 7.0) - 5 * mm
        font = min(6.5, 6.5 * room / max(measure.width(left, ROLE_TEXT, 6.5), 1e-6))
        prims.append(_Text(MARGIN_X, y, left, ROLE_TEXT, font, "left", 0.2))
    return prims


def _template_corner(size: tuple[float, float], payload: str, case: str) -> list[_Prim]:
    """QR code and case number in the top-right margin of a city's own template page."""
    width, height = size
    box = _Box(width - TEMPLATE_QR_INSET - TEMPLATE_QR_SIZE, height - TEMPLATE_QR_INSET - TEMPLATE_QR_SIZE,
               TEMPLATE_QR_SIZE, TEMPLATE_QR_SIZE)
    prims: list[_Prim] = [_QR(box, payload)] if payload else []
    if case:
        prims.append(_Text(box.x - 1.5 * mm, box.top - 2 * mm - 6.5 * ASCENT, case, ROLE_TEXT, 6.5, "right"))
    return prims


# ---------------------------------------------------------------------------------------------
# Planning a whole form
# ---------------------------------------------------------------------------------------------


@dataclass
class _FormPlan:
    form: ResolvedForm
    pages: list[_Page]
    template: PdfReader | None  # pages[:len(template.pages)] are overlays for the template
    overflowed: tuple[str, ...]


def _signature_size(options: RenderOptions) -> tuple[float, float] | None:
    if options.signature_png is None:
        return None
    try:
        width, height = ImageReader(io.BytesIO(options.signature_png)).getSize()
    except Exception as exc:
        raise ValueError("signature_png is not a readable image") from exc
    return float(width), float(height)


def _plan_form(form: ResolvedForm, options: RenderOptions, measure: _Measure) -> _FormPlan:
    painter = _CellPainter(options, measure, _signature_size(options))
    template: PdfReader | None = None
    if form.template is not None:
        template = PdfReader(io.BytesIO(form.template))
        pages = [_Page(_media_size(page), "template") for page in template.pages]
        for index, (place, cell) in enumerate(form.placed):
            if place.page > len(pages):
                raise ValueError(f"{form.instance_id}: field {index + 1} is placed on page {place.page}, "
                                 f"but the template has {len(pages)} page(s)")
            page = pages[place.page - 1]
            box = _Box(place.x * mm, page.size[1] - (place.y + place.h) * mm, place.w * mm, place.h * mm)
            where = cell.spec.label or f"欄{index + 1}"
            page.prims += painter.cell(cell, box, where=where, label=None, border=False, pad=(0.8 * mm, 0.3 * mm))
        flow = _Flow(A4)
    elif form.layout is not None:
        planner = _GridPlanner(form, form.layout, painter)
        pages = planner.plan()
        flow = planner.flow
    else:
        raise ValueError(f"{form.instance_id}: the form has neither a layout nor a template")
    flow.pages = pages
    _plan_addendum(flow, measure, painter.overflows, form.heading)
    _decorate(pages, form, options, measure)
    return _FormPlan(form, pages, template, tuple(o.label for o in painter.overflows))


def _media_size(page: PageObject) -> tuple[float, float]:
    box = page.mediabox
    return float(box.width), float(box.height)


# ---------------------------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------------------------


class _Drawer:
    """Replays page prims on one reportlab canvas."""

    def __init__(self, options: RenderOptions, first_size: tuple[float, float], title: str) -> None:
        self.fonts = options.fonts
        self.fonts.register()
        self.buffer = io.BytesIO()
        # initialFontName: a TrueType initial font keeps reportlab from declaring an
        # unembedded Helvetica in every page preamble.
        self.canvas = Canvas(self.buffer, pagesize=first_size, invariant=1, pageCompression=1,
                             initialFontName=self.fonts.font_name(ROLE_TEXT), lang="ja")
        self.canvas.setTitle(title)
        self.canvas.setCreator("kakanai")
        self.canvas.setAuthor("")
        self.canvas.setSubject("")
        # One ImageReader for every signature cell: reportlab then embeds one image XObject.
        png = options.signature_png
        self.signature = ImageReader(io.BytesIO(png)) if png is not None else None
        self._qr: dict[str, tuple[bytearray, ...]] = {}

    def draw(self, pages: Sequence[_Page]) -> None:
        for page in pages:
            self.canvas.setPageSize(page.size)
            for prim in page.prims:
                self._prim(prim)
            self.canvas.showPage()

    def finish(self) -> bytes:
        self.canvas.save()
        return self.buffer.getvalue()

    def _prim(self, prim: _Prim) -> None:
        c = self.canvas
        if isinstance(prim, _Text):
            c.setFillGray(prim.grey)
            draw = {"left": self.fonts.draw_string, "center": self.fonts.draw_centred_string,
                    "right": self.fonts.draw_right_string}[prim.align]
            draw(c, prim.x, prim.y, prim.text, role=prim.role, size=prim.size)
        elif isinstance(prim, _Rect):
            b = prim.box
            if prim.fill is not None:
                c.setFillGray(prim.fill)
            c.setStrokeGray(0)
            c.setLineWidth(prim.stroke or RULE)
            c.rect(b.x, b.y, b.w, b.h, stroke=1 if prim.stroke else 0, fill=1 if prim.fill is not None else 0)
        elif isinstance(prim, _Poly):
            c.setStrokeGray(0)
            c.setLineWidth(prim.width)
            c.setLineJoin(1)
            c.setLineCap(1)
            path = c.beginPath()
            path.moveTo(*prim.points[0])
            for point in prim.points[1:]:
                path.lineTo(*point)
            c.drawPath(path, stroke=1, fill=0)
            c.setLineJoin(0)
            c.setLineCap(0)
        elif isinstance(prim, _Image):
            if self.signature is not None:
                b = prim.box
                c.drawImage(self.signature, b.x, b.y, b.w, b.h, mask="auto")
        elif isinstance(prim, _QR):
            self._draw_qr(prim)

    def _draw_qr(self, prim: _QR) -> None:
        matrix = self._qr.get(prim.data)
        if matrix is None:
            matrix = self._qr[prim.data] = tuple(segno.make_qr(prim.data, error="m").matrix)
        c = self.canvas
        b = prim.box
        module = b.w / (len(matrix) + 2 * QR_BORDER)
        # White ground first: on a template page the corner may not be empty.
        c.setFillGray(1)
        c.rect(b.x, b.y, b.w, b.h, stroke=0, fill=1)
        path = c.beginPath()
        for r, row in enumerate(matrix):
            for col, dark in enumerate(row):
                if dark:
                    path.rect(b.x + (QR_BORDER + col) * module, b.top - (QR_BORDER + r + 1) * module, module, module)
        c.setFillGray(0)
        c.drawPath(path, stroke=0, fill=1)


def _write(writer: PdfWriter, title: str, seed: bytes) -> bytes:
    """Serialise a pypdf writer deterministically (content-derived /ID, fixed metadata)."""
    writer.add_metadata({"/Title": title, "/Creator": "kakanai", "/Producer": "kakanai (reportlab, pypdf)"})
    digest = ByteStringObject(hashlib.sha256(seed).digest()[:16])
    # pypdf has no public setter; without an /ID it would not write one, with encryption a random one.
    writer._ID = ArrayObject([digest, digest])
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _finish_plan(plan: _FormPlan, options: RenderOptions) -> bytes:
    """Draw one planned form; merge the overlay onto its template when it has one."""
    drawer = _Drawer(options, plan.pages[0].size, plan.form.title)
    drawer.draw(plan.pages)
    overlay = drawer.finish()
    if plan.template is None:
        return overlay
    assert plan.form.template is not None
    overlay_reader = PdfReader(io.BytesIO(overlay))
    writer = PdfWriter()
    count = len(plan.template.pages)
    for index, template_page in enumerate(plan.template.pages):
        page = writer.add_page(template_page)
        box = template_page.mediabox
        # Overlay pages start at (0, 0); a template's media box need not.
        page.merge_transformed_page(overlay_reader.pages[index],
                                    Transformation().translate(float(box.left), float(box.bottom)))
        page.compress_content_streams()
    for extra in overlay_reader.pages[count:]:
        writer.add_page(extra)
    return _write(writer, plan.form.title, plan.form.template + overlay)


def render_form(form: ResolvedForm, options: RenderOptions) -> RenderResult:
    """Render one application form to PDF (grid layout or values over the city's template)."""
    plan = _plan_form(form, options, _Measure(options.fonts))
    return RenderResult(_finish_plan(plan, options), len(plan.pages), plan.overflowed)


# ---------------------------------------------------------------------------------------------
# Bundle
# ---------------------------------------------------------------------------------------------


def _plan_cover(
    plans: Sequence[_FormPlan], options: RenderOptions, measure: _Measure, title: str,
    lines: Sequence[tuple[str, str]], cover_pages: int,
) -> list[_Page]:
    """Cover pages: the title, the case facts and a table of contents with page ranges."""
    flow = _Flow(A4)
    flow.new_page("cover")
    row_h = 8 * mm
    label_w = 45 * mm

    def rows(cells: Sequence[tuple[str, float, float, str, float | None]], min_h: float) -> None:
        # Each cell: (text, width, font size, align, fill); the row grows with wrapped text.
        fits = [measure.fit(text, ROLE_TEXT, w - 2 * PAD_X, 1e9, size, size, wrap=True)
                for text, w, size, _, _ in cells]
        height = max([min_h] + [_block_height(len(f.lines), f.size) + 2 * 2 * mm for f in fits])
        if not flow.fits(height):
            flow.new_page("cover")
        x = flow.left
        for (_, w, _, align, fill), fit in zip(cells, fits, strict=True):
            box = _Box(x, flow.cursor - height, w, height)
            flow.add([_Rect(box, RULE, fill)])
            flow.add(_lines_at(fit.lines, ROLE_TEXT, fit.size, align, box.inset(PAD_X, 2 * mm)))
            x += w
        flow.cursor -= height

    for label, value in lines:
        rows([(label, label_w, 9.0, "left", BAND_FILL), (value, flow.width - label_w, 11.0, "left", None)], row_h)
    flow.cursor -= 8 * mm
    flow.add([_Text(flow.left, flow.cursor - 12 * ASCENT, "提出書類一覧（目次）", ROLE_TEXT, 12.0)])
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
        prims: list[_Prim] = []
        if payload:
            prims.append(_QR(_Box(width - MARGIN_X - QR_SIZE, top - QR_SIZE, QR_SIZE, QR_SIZE), payload))
        if case:
            prims.append(_Text(width - MARGIN_X, top - QR_SIZE - 2.8 * mm, f"案件番号 {case}", ROLE_TEXT, 7.0,
                               "right"))
        room = width - 2 * (MARGIN_X + QR_SIZE + 4 * mm)
        size = min(18.0, 18.0 * room / max(measure.width(title, ROLE_TEXT, 18.0), 1e-6))
        heading = title if number == 1 else title + CONTINUED
        prims.append(_Text(width / 2, top - 11 * mm, heading, ROLE_TEXT, size, "center"))
        prims += _footer(page.size, measure, options.generated_label, f"表紙 {number} / {len(flow.pages)}")
        page.prims[:0] = prims
    return flow.pages


def render_bundle(
    forms: Sequence[ResolvedForm], options: RenderOptions, *, cover_title: str,
    cover_lines: Sequence[tuple[str, str]],
) -> bytes:
    """Render a cover page with a table of contents followed by every form, as one PDF."""
    measure = _Measure(options.fonts)
    plans = [_plan_form(form, options, measure) for form in forms]
    # The page ranges depend on how many cover pages there are: plan once to count them.
    cover = _plan_cover(plans, options, measure, cover_title, cover_lines, 1)
    cover = _plan_cover(plans, options, measure, cover_title, cover_lines, len(cover))
    if all(plan.template is None for plan in plans):
        drawer = _Drawer(options, cover[0].size, cover_title)
        drawer.draw(cover)
        for plan in plans:
            drawer.draw(plan.pages)
        return drawer.finish()
    drawer = _Drawer(options, cover[0].size, cover_title)
    drawer.draw(cover)
    parts = [drawer.finish()] + [_finish_plan(plan, options) for plan in plans]
    writer = PdfWriter()
    for part in parts:
        for page in PdfReader(io.BytesIO(part)).pages:
            writer.add_page(page)
    return _write(writer, cover_title, b"".join(parts))
