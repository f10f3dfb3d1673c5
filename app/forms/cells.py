"""The inside of one cell: label, text, comb boxes, check boxes, signature; overflow numbering."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader

from app.forms.fonts import ROLE_NAME, ROLE_TEXT, is_variation_selector
from app.forms.primitives import (
    ASCENT,
    BLANK_FILL,
    CHECK_SQUARE,
    COMB_MAX_W,
    COMB_MIN_H,
    LABEL_BAND,
    LABEL_GREY,
    LABEL_SIZE,
    LEADING,
    NAME_SIZE,
    OPTION_SIZE,
    PAD_X,
    PAD_Y,
    RULE,
    TEXT_SIZE,
    Box,
    Image,
    Poly,
    Prim,
    Rect,
    Text,
)
from app.forms.render_options import RenderOptions
from app.forms.resolved import ResolvedCell
from app.forms.schema import Choice, FormField
from app.forms.typeset import Fit, Measure, block_height, clusters, is_short


@dataclass(frozen=True)
class Overflow:
    number: int
    label: str
    text: str
    role: str





# Values that are one unit for a reader: a name, its kana, a date, a phone number never break across lines.
KEEP_WHOLE_KINDS = frozenset({"name", "kana", "birth_date", "date", "phone", "postal_code", "my_number"})


def cell_role(spec: FormField) -> str:
    if spec.font is not None:
        return ROLE_NAME if spec.font == "name" else ROLE_TEXT
    return ROLE_NAME if spec.kind == "name" else ROLE_TEXT


def text_role(spec: FormField, text: str) -> str:
    """The role a cell's text is set in: a whole name in one typeface, the name font when any character needs it."""
    role = cell_role(spec)
    if role == ROLE_TEXT and any(is_variation_selector(ch) or ord(ch) > 0xFFFF for ch in text):
        return ROLE_NAME
    return role


def value_size(spec: FormField) -> float:
    if spec.size is not None:
        return spec.size
    return NAME_SIZE if cell_role(spec) == ROLE_NAME else TEXT_SIZE


def lines_at(lines: Sequence[str], role: str, size: float, align: str, area: Box, grey: float = 0.0) -> list[Prim]:
    """Text lines vertically centred in area, aligned left / center / right."""
    top = area.y + (area.h + block_height(len(lines), size)) / 2
    x = {"left": area.x, "center": area.x + area.w / 2, "right": area.right}[align]
    return [
        Text(x, top - size * ASCENT - i * size * LEADING, line, role, size, align, grey)
        for i, line in enumerate(lines)
    ]


def signature_size(png: bytes) -> tuple[float, float]:
    """A signature PNG's pixel size (its aspect decides how it fits the box)."""
    try:
        width, height = ImageReader(io.BytesIO(png)).getSize()
    except Exception as exc:
        raise ValueError("signature_png is not a readable image") from exc
    return float(width), float(height)


class CellPainter:
    """Lays out the inside of cells for one form and numbers what overflows to the addendum."""

    def __init__(self, options: RenderOptions, measure: Measure, signatures: Mapping[str, bytes] | None = None) -> None:
        self.options = options
        self.measure = measure
        self.signatures = dict(signatures or {})  # box name (a cell's signs_as, "" unmarked) → PNG
        self.overflows: list[Overflow] = []

    def overflow(self, label: str, text: str, role: str) -> str:
        number = len(self.overflows) + 1
        self.overflows.append(Overflow(number, label, text, role))
        return f"※{number}"

    def cell(
        self, cell: ResolvedCell, box: Box, *, where: str, label: str | None, border: bool = True,
        centred: bool = False, pad: tuple[float, float] = (PAD_X, PAD_Y), size_cap: float | None = None,
    ) -> list[Prim]:
        """The prims of one cell: border, small label, then the value by style."""
        spec = cell.spec
        prims: list[Prim] = []
        if border or spec.style == "blank":
            fill = BLANK_FILL if spec.style == "blank" else None
            prims.append(Rect(box, RULE if border else 0.0, fill))
        area = box.inset(*pad)
        beside = None
        if label:
            size = LABEL_SIZE
            width = self.measure.width(label, ROLE_TEXT, size)
            if width > area.w > 0:
                size = max(4.0, size * area.w / width)
                width = self.measure.width(label, ROLE_TEXT, size)
            prims.append(Text(area.x, box.top - 0.7 * mm - LABEL_SIZE * ASCENT, label, ROLE_TEXT, size,
                               grey=LABEL_GREY))
            beside_x = area.x + width + 1.5 * mm
            beside = Box(beside_x, area.y, max(0.0, area.right - beside_x), area.h)
            area = Box(area.x, area.y, area.w, max(0.0, box.top - LABEL_BAND - area.y))
        style = spec.style
        if style == "blank":
            return prims
        if style == "signature":
            return prims + self._signature(area, self.signatures.get(spec.signs_as or ""))
        if style == "check":
            return prims + self._check(cell, area, box, where)
        if style == "comb":
            if beside is not None and area.h < COMB_MIN_H and beside.w > area.w / 2:
                area = beside  # a short row: put the boxes right of the label instead of below it
            return prims + self._comb(cell, area, box, where, centred)
        return prims + self._text(cell, area, where, size_cap)

    def text_fit(self, cell: ResolvedCell, area: Box, size_cap: float | None = None) -> Fit:
        """How a text cell's value fits its area (lines and size), wrapping before shrinking."""
        spec = cell.spec
        role = text_role(spec, cell.text)
        size = value_size(spec) if size_cap is None else min(value_size(spec), size_cap)
        return self.measure.fit(cell.text, role, area.w, area.h, size, self.options.min_font_size,
                                wrap=spec.style == "multiline",
                                keep_whole=role == ROLE_NAME or spec.kind in KEEP_WHOLE_KINDS or is_short(cell.text))

    def _text(self, cell: ResolvedCell, area: Box, where: str, size_cap: float | None) -> list[Prim]:
        if not cell.text:
            return []
        spec = cell.spec
        role = text_role(spec, cell.text)
        fit = self.text_fit(cell, area, size_cap)
        lines = list(fit.lines)
        if not fit.complete:
            marker = "…" + self.overflow(where, cell.text, role)
            lines = self.measure.with_marker(lines, marker, role, fit.size, area.w)
        return lines_at(lines, role, fit.size, spec.align, area)

    def _marker(self, box: Box, marker: str) -> Text:
        # Comb and check cells have no free text line: the marker goes to the cell's top-right corner.
        return Text(box.right - 0.8 * mm, box.top - 0.7 * mm - LABEL_SIZE * ASCENT, marker, ROLE_TEXT,
                     LABEL_SIZE, "right")

    def _comb(self, cell: ResolvedCell, area: Box, box: Box, where: str, centred: bool) -> list[Prim]:
        spec = cell.spec
        boxes = spec.boxes or 1
        role = cell_role(spec)
        box_w = min(COMB_MAX_W, area.w / boxes)
        box_h = min(area.h, max(COMB_MIN_H, box_w * 1.3))
        total = box_w * boxes
        align = "center" if centred else spec.align
        x0 = {"left": area.x, "center": area.x + (area.w - total) / 2, "right": area.right - total}[align]
        y0 = area.y + (area.h - box_h) / 2
        prims: list[Prim] = [Rect(Box(x0, y0, total, box_h), RULE)]
        prims += [Poly(((x0 + i * box_w, y0), (x0 + i * box_w, y0 + box_h)), 0.3) for i in range(1, boxes)]
        chars = [c for c in clusters(cell.text) if c != "\n"]
        size = min(value_size(spec), box_h * 0.75, box_w * 0.9)
        for i, char in enumerate(chars[:boxes]):
            prims.append(Text(x0 + (i + 0.5) * box_w, y0 + box_h / 2 - size * 0.38, char, role, size, "center"))
        if len(chars) > boxes:
            prims.append(self._marker(box, self.overflow(where, cell.text, role)))
        return prims

    def _check(self, cell: ResolvedCell, area: Box, box: Box, where: str) -> list[Prim]:
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
        prims: list[Prim] = []
        top = area.y + (area.h + min(block, shown * line_h - 1.2 * mm)) / 2
        drawn: set[str] = set()
        for r, row in enumerate(rows[:shown]):
            centre_y = top - r * line_h - max(square, size) / 2
            x = area.x
            for option, width in row:
                value, text = option.value, option.label
                sq = Box(x, centre_y - square / 2, square, square)
                prims.append(Rect(sq, 0.6))
                if value in selected:
                    drawn.add(value)
                    prims.append(Poly(((sq.x + 0.18 * square, sq.y + 0.55 * square),
                                        (sq.x + 0.42 * square, sq.y + 0.2 * square),
                                        (sq.x + 0.9 * square, sq.y + 0.95 * square)), 1.2))
                prims.append(Text(x + square + 1 * mm, centre_y - size * 0.38, text, ROLE_TEXT, size))
                x += width + 3 * mm
        missing = [v for v in cell.selected if v not in drawn]
        if missing:
            labels = {o.value: o.label for o in options}
            text = "、".join(labels.get(v, v) for v in missing)
            prims.append(self._marker(box, self.overflow(where, f"選択: {text}", ROLE_TEXT)))
        return prims

    def _signature(self, area: Box, png: bytes | None) -> list[Prim]:
        if png is None or area.w <= 0 or area.h <= 0:
            return []
        iw, ih = signature_size(png)
        scale = min(area.w / iw, area.h / ih)
        w, h = iw * scale, ih * scale
        return [Image(Box(area.x + (area.w - w) / 2, area.y + (area.h - h) / 2, w, h), png)]

