"""A printer calibration page for the overlay print mode: crosses at known distances from the paper's edges.

The clerk prints it on the same paper size, measures where the crosses landed and sets the printer's offset
(KAKANAI_PRINTER_OFFSETS): a cross printed 1.5 mm too far right and 1 mm too low is an offset of (1.5, 1).
The page is drawn with the offset already applied, so printing it again shows the crosses in place.
"""

from __future__ import annotations

import io

from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from app.forms.fonts import ROLE_TEXT, FontSet

MARK_MM = 20.0  # crosses sit this far from the edges
ARM_MM = 6.0


def calibration_marks(size_mm: tuple[float, float]) -> list[tuple[float, float]]:
    """Where the crosses should land, in mm from the top-left corner (four corners and the centre)."""
    w, h = size_mm
    return [(MARK_MM, MARK_MM), (w - MARK_MM, MARK_MM), (MARK_MM, h - MARK_MM), (w - MARK_MM, h - MARK_MM),
            (w / 2, h / 2)]


def render_calibration(fonts: FontSet, *, size_mm: tuple[float, float], offset_mm: tuple[float, float],
                       printer: str) -> bytes:
    """The calibration page as PDF bytes (deterministic)."""
    fonts.register()
    w, h = size_mm
    buf = io.BytesIO()
    canvas = Canvas(buf, pagesize=(w * mm, h * mm), invariant=1, initialFontName=fonts.font_name(ROLE_TEXT))
    canvas.setTitle("プリンタ位置合わせ")
    dx, dy = offset_mm
    canvas.setLineWidth(0.3)
    for x, y in calibration_marks(size_mm):
        px, py = (x - dx) * mm, (h - (y - dy)) * mm
        canvas.line(px - ARM_MM * mm, py, px + ARM_MM * mm, py)
        canvas.line(px, py - ARM_MM * mm, px, py + ARM_MM * mm)
        canvas.circle(px, py, 2 * mm)
        fonts.draw_string(canvas, px + 2.5 * mm, py + 2.5 * mm, f"左から{x:g}mm・上から{y:g}mm", role=ROLE_TEXT, size=7)
    lines = [
        f"プリンタ位置合わせ（{printer or '既定のプリンタ'}）　現在のずれ補正: 右へ {dx:+g}mm・下へ {dy:+g}mm",
        "1. この用紙を、届書と同じ大きさ・向きで印刷します。",
        "2. 十字の中心が、用紙の端から書かれた位置にあるか定規で測ります。",
        "3. 右にずれていれば右へのずれ（mm）を、下にずれていれば下へのずれ（mm）を、KAKANAI_PRINTER_OFFSETS に加えます。",
        "4. もう一度印刷して、十字が正しい位置に来たことを確かめます。",
    ]
    for index, text in enumerate(lines):
        fonts.draw_string(canvas, (MARK_MM + 12) * mm, (h - MARK_MM - 16 - index * 7) * mm, text, role=ROLE_TEXT,
                          size=10 if index == 0 else 9)
    canvas.showPage()
    canvas.save()
    return buf.getvalue()
