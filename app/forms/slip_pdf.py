"""The routing slip (回付票) as one A4 page: ticket number, the steps in order, check boxes, QR code.

Pure like the rest of app/forms: plain data in, PDF bytes out. The slip carries no personal data
(no name, address or number): it is handed to the resident and may be left on a counter. The QR
code leads to the resident page, which shows no personal data either.

Output is deterministic (reportlab with ``invariant=1``). Everything is fitted onto ONE page:
text shrinks down to a floor and, only if that is not enough, a step's list of applications is
shortened to "ほか n 件" (said on the page, never cut silently).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import segno
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from app.forms.fonts import ROLE_TEXT, FontSet

__all__ = ["SlipDocument", "SlipRow", "render_slip"]

PAGE_W, PAGE_H = 210 * mm, 297 * mm
MARGIN = 14 * mm
QR_SIZE = 34 * mm
QR_BORDER = 2
ASCENT = 0.88
LEADING = 1.25
PAD = 1.6 * mm
HEAD_H = 7 * mm
MIN_ROW_H = 12 * mm
MIN_SCALE = 0.6
# Column widths in mm; the applications column takes what is left of the 182 mm text width.
COLUMNS = (("順番", 12.0), ("段階", 17.0), ("担当課・場所", 50.0), ("手続き", 0.0), ("状態", 23.0), ("確認", 14.0))
LEGEND = ("「いま開始可」の手続きは、ほかの課を待たずにすぐ始まります。「〇〇の完了後」の手続きは、その課の手続きが終わってから"
          "始まります。同じ段階で「並行可」の手続きは同時に進みます。「確認」欄は各課が処理を終えたときに印を付けます。")


@dataclass(frozen=True)
class SlipRow:
    """One department step as printed."""

    position: int
    stage: int
    parallel: bool
    department: str
    place: str
    applications: tuple[str, ...]
    status: str
    done: bool
    can_start: bool = False  # pending, answers confirmed, no hard gate open: starts now
    waiting_for: tuple[str, ...] = ()  # departments (names) it waits for


@dataclass(frozen=True)
class SlipDocument:
    """Everything printed on the slip."""

    city_name: str
    office_name: str
    case_number: str
    ticket_label: str
    visit_date: str
    qr_url: str
    rows: tuple[SlipRow, ...]
    notes: tuple[str, ...] = ()
    generated_label: str = ""
    title: str = "回付票"
    fee_total: int = 0
    # Forms whose deadline has passed, with what follows: printed in a box above the table.
    late: tuple[str, ...] = ()


_NO_START = frozenset("、。，．,.）)」』】〕〉》］]｝}・：；:;！？!?ー…々ぁぃぅぇぉっゃゅょァィゥェォッャュョ")


def _wrap(fonts: FontSet, text: str, size: float, width: float) -> list[str]:
    """Greedy line breaking by measured width (Japanese breaks between any two characters, kinsoku aside)."""
    lines: list[str] = []
    line = ""
    for ch in text:
        if line and fonts.string_width(line + ch, ROLE_TEXT, size) > width:
            if ch in _NO_START and len(line) > 1:
                # A closing bracket or small kana may not start a line: take the previous character along.
                lines.append(line[:-1])
                line = line[-1] + ch
            else:
                lines.append(line)
                line = "" if ch.isspace() else ch
        else:
            line += ch
    if line or not lines:
        lines.append(line)
    return lines


@dataclass(frozen=True)
class _Cell:
    lines: tuple[tuple[str, float], ...]  # (text, font size)

    @property
    def height(self) -> float:
        return sum(size * LEADING for _, size in self.lines)


@dataclass(frozen=True)
class _Layout:
    widths: tuple[float, ...]
    rows: tuple[tuple[_Cell, ...], ...]
    heights: tuple[float, ...]
    notes: tuple[tuple[str, float], ...]

    @property
    def table_height(self) -> float:
        return HEAD_H + sum(self.heights)


class _Painter:
    def __init__(self, doc: SlipDocument, fonts: FontSet) -> None:
        self.doc = doc
        self.fonts = fonts
        self.width = PAGE_W - 2 * MARGIN
        fixed = sum(w for _, w in COLUMNS) * mm
        self.widths = tuple((w * mm if w else self.width - fixed) for _, w in COLUMNS)

    # ---- layout --------------------------------------------------------------------------------------

    def _cells(self, row: SlipRow, scale: float, max_apps: int | None) -> tuple[_Cell, ...]:
        f = self.fonts
        w = [x - 2 * PAD for x in self.widths]
        big, body, small = 12.0 * scale, 10.0 * scale, 8.0 * scale
        stage = [(f"{row.stage}", big)] + ([("並行可", small)] if row.parallel else [])
        dept = [(t, body + 0.5) for t in _wrap(f, row.department, body + 0.5, w[2])]
        dept += [(t, small) for t in _wrap(f, row.place, small, w[2])] if row.place else []
        apps = list(row.applications)
        if max_apps is not None and len(apps) > max_apps:
            rest = len(apps) - max_apps
            apps = [*apps[:max_apps], f"ほか {rest} 件（詳しくは回付票の画面で）"]
        app_lines = [(t, body) for a in apps for t in _wrap(f, f"・{a}", body, w[3])]
        status = [(t, small + 0.5) for t in _wrap(f, row.status, small + 0.5, w[4])]
        if row.can_start:
            status.append(("いま開始可", small + 0.5))
        elif row.waiting_for and not row.done:
            status += [(t, small) for t in _wrap(f, f"{'・'.join(row.waiting_for)}の完了後", small, w[4])]
        return (_Cell(((f"{row.position}", big),)), _Cell(tuple(stage)), _Cell(tuple(dept)),
                _Cell(tuple(app_lines)), _Cell(tuple(status)), _Cell(()))

    def layout(self, table_top: float, bottom: float) -> _Layout:
        """Shrink, then shorten application lists, until the table and notes fit on the page."""
        rows = self.doc.rows
        limits: list[int | None] = [None] * len(rows)
        scale = 1.0
        while True:
            cells = tuple(self._cells(r, scale, limits[i]) for i, r in enumerate(rows))
            heights = tuple(max(MIN_ROW_H * scale, max(c.height for c in row) + 2 * PAD) for row in cells)
            note_size = 7.5 * max(scale, 0.8)
            notes = tuple((t, note_size) for n in (LEGEND, *self.doc.notes)
                          for t in _wrap(self.fonts, f"※ {n}", note_size, self.width))
            out = _Layout(self.widths, cells, heights, notes)
            room = table_top - bottom - 3 * mm - sum(s * LEADING for _, s in notes)
            if out.table_height <= room:
                return out
            if scale > MIN_SCALE + 1e-9:
                scale = round(scale - 0.05, 2)
                continue
            # Still too tall at the smallest type: shorten the longest application list by one.
            counts = [len(r.applications) if limits[i] is None else limits[i] for i, r in enumerate(rows)]
            longest = max(range(len(rows)), key=lambda i: (counts[i], -i), default=None)
            if longest is None or counts[longest] <= 1:
                return out  # nothing left to shorten: print what we have
            limits[longest] = counts[longest] - 1

    # ---- drawing -------------------------------------------------------------------------------------

    def text(self, c: Canvas, x: float, top: float, text: str, size: float, align: str = "left") -> None:
        y = top - size * ASCENT
        draw = {"left": self.fonts.draw_string, "center": self.fonts.draw_centred_string,
                "right": self.fonts.draw_right_string}[align]
        draw(c, x, y, text, role=ROLE_TEXT, size=size)

    def qr(self, c: Canvas, x: float, top: float, size: float, data: str) -> None:
        matrix = tuple(segno.make_qr(data, error="m").matrix)
        module = size / (len(matrix) + 2 * QR_BORDER)
        path = c.beginPath()
        for r, row in enumerate(matrix):
            for col, dark in enumerate(row):
                if dark:
                    path.rect(x + (QR_BORDER + col) * module, top - (QR_BORDER + r + 1) * module, module, module)
        c.setFillGray(0)
        c.drawPath(path, stroke=0, fill=1)

    def draw(self, c: Canvas) -> None:
        doc = self.doc
        left = MARGIN
        right = PAGE_W - MARGIN
        top = PAGE_H - MARGIN
        c.setFillGray(0)
        self.text(c, left, top, f"{doc.city_name}　{doc.office_name}".strip(), 11)
        self.text(c, left, top - 7 * mm, doc.title, 26)
        self.text(c, left + 40 * mm, top - 13 * mm, "（手続きの順番と進み具合）", 10)
        self.qr(c, right - QR_SIZE, top, QR_SIZE, doc.qr_url)
        self.text(c, right - QR_SIZE / 2, top - QR_SIZE - 0.5 * mm, "進み具合はこちら", 7.5, "center")

        # The ticket number is what the resident listens for: big, boxed, on the left.
        box_top = top - 22 * mm
        box_h, box_w = 26 * mm, 62 * mm
        c.setLineWidth(1.2)
        c.setStrokeGray(0)
        c.rect(left, box_top - box_h, box_w, box_h, stroke=1, fill=0)
        self.text(c, left + 2.5 * mm, box_top - 2 * mm, "整理券番号", 9)
        self.text(c, left + box_w / 2, box_top - 7 * mm, doc.ticket_label, 44, "center")
        info_x = left + box_w + 6 * mm
        self.text(c, info_x, box_top - 2 * mm, f"案件番号　{doc.case_number}", 11)
        if doc.visit_date:
            self.text(c, info_x, box_top - 9 * mm, f"来庁日　　{doc.visit_date}", 11)
        stages = len({r.stage for r in doc.rows})
        self.text(c, info_x, box_top - 16 * mm, f"手続き　　{len(doc.rows)} 課（{stages} 段階）", 11)
        if doc.fee_total:
            self.text(c, info_x, box_top - 23 * mm, f"手数料　　合計 {doc.fee_total:,}円", 11)

        url_top = box_top - box_h - 4 * mm
        self.text(c, left, url_top, "スマートフォンで右上の QR コードを読み取ると、順番・進み具合・お越しいただく窓口が分かります。", 8.5)
        for i, line in enumerate(_wrap(self.fonts, doc.qr_url, 8.5, self.width)):
            self.text(c, left, url_top - (5 + 4.2 * i) * mm, line, 8.5)

        table_top = url_top - 14 * mm
        if doc.late:
            table_top = self._late_box(c, left, table_top + 3 * mm) - 4 * mm
        footer_h = 8 * mm
        lay = self.layout(table_top, MARGIN + footer_h)
        self._table(c, lay, left, table_top)

        y = table_top - lay.table_height - 3 * mm
        for line, size in lay.notes:
            self.text(c, left, y, line, size)
            y -= size * LEADING
        c.setLineWidth(0.4)
        c.line(left, MARGIN + 5 * mm, right, MARGIN + 5 * mm)
        self.text(c, left, MARGIN + 3.5 * mm, doc.generated_label, 7)
        self.text(c, right, MARGIN + 3.5 * mm, f"{doc.case_number}　1 / 1", 7, "right")

    def _late_box(self, c: Canvas, left: float, top: float) -> float:
        """The passed deadlines in a thick box; returns the box's bottom."""
        size = 9.5
        lines = [("期限を過ぎた手続きがあります", size + 1)]
        lines += [(t, size) for n in self.doc.late for t in _wrap(self.fonts, f"・{n}", size, self.width - 2 * PAD)]
        height = sum(s * LEADING for _, s in lines) + 2 * PAD
        c.setLineWidth(1.6)
        c.setStrokeGray(0)
        c.rect(left, top - height, self.width, height, stroke=1, fill=0)
        y = top - PAD
        for line, s in lines:
            self.text(c, left + PAD, y, line, s)
            y -= s * LEADING
        return top - height

    def _table(self, c: Canvas, lay: _Layout, left: float, top: float) -> None:
        c.setLineWidth(0.6)
        c.setStrokeGray(0)
        c.setFillGray(0.88)
        c.rect(left, top - HEAD_H, self.width, HEAD_H, stroke=1, fill=1)
        c.setFillGray(0)
        x = left
        for (label, _), w in zip(COLUMNS, lay.widths, strict=True):
            self.text(c, x + w / 2, top - 1.8 * mm, label, 9, "center")
            x += w
        y = top - HEAD_H
        for row, cells, h in zip(self.doc.rows, lay.rows, lay.heights, strict=True):
            x = left
            for index, (cell, w) in enumerate(zip(cells, lay.widths, strict=True)):
                c.setLineWidth(0.6)
                c.rect(x, y - h, w, h, stroke=1, fill=0)
                centred = index in (0, 1, 4)
                line_top = y - PAD
                for text, size in cell.lines:
                    if centred:
                        self.text(c, x + w / 2, line_top, text, size, "center")
                    else:
                        self.text(c, x + PAD, line_top, text, size)
                    line_top -= size * LEADING
                if index == 5:
                    self._check(c, x + w / 2, y - h / 2, row.done)
                x += w
            y -= h

    @staticmethod
    def _check(c: Canvas, cx: float, cy: float, done: bool) -> None:
        side = 6 * mm
        c.setLineWidth(0.8)
        c.rect(cx - side / 2, cy - side / 2, side, side, stroke=1, fill=0)
        if done:
            c.setLineWidth(1.4)
            path = c.beginPath()
            path.moveTo(cx - side * 0.32, cy)
            path.lineTo(cx - side * 0.08, cy - side * 0.28)
            path.lineTo(cx + side * 0.34, cy + side * 0.3)
            c.drawPath(path, stroke=1, fill=0)


def render_slip(doc: SlipDocument, fonts: FontSet) -> bytes:
    """Draw the routing slip on one A4 page and return the PDF bytes (same data, same bytes)."""
    fonts.register()
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=(PAGE_W, PAGE_H), invariant=1, pageCompression=1,
                    initialFontName=fonts.font_name(ROLE_TEXT), lang="ja")
    canvas.setTitle(f"{doc.title} {doc.case_number}")
    canvas.setCreator("kakanai")
    canvas.setAuthor("")
    canvas.setSubject("")
    _Painter(doc, fonts).draw(canvas)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()

