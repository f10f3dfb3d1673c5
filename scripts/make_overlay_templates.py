"""Draw the blank official-like 出生届 sheet (A3 landscape) that the overlay print mode is checked against.

The left half has a box for each value the overlay prints, at the positions shussei.yaml gives; the right
half is the 出生証明書 the doctor or midwife fills in. A city replaces the file with a scan of its own
sheet. Run from the repository root: `.venv/bin/python scripts/make_overlay_templates.py`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.forms.fonts import ROLE_TEXT, load_fonts  # noqa: E402
from app.forms.loader import load_definitions  # noqa: E402

WIDTH, HEIGHT = 420 * mm, 297 * mm
DOCTOR_BOXES = ["子の氏名", "男女の別", "生まれたとき", "出生したところ及びその種別", "体重及び身長", "単胎・多胎の別",
                "母の氏名", "妊娠週数", "この母の出産した子の数", "医師・助産師その他の立会者の住所・氏名"]


def main() -> None:
    defs = load_definitions(ROOT / "form_definitions")
    overlay = defs.applications["shussei"].overlay
    assert overlay is not None
    fonts = load_fonts()
    fonts.register()
    target = ROOT / "form_definitions" / overlay.template
    canvas = Canvas(str(target), pagesize=(WIDTH, HEIGHT), invariant=1, initialFontName=fonts.font_name(ROLE_TEXT))
    canvas.setTitle("出生届（見本用紙）")
    canvas.setStrokeColorRGB(0.55, 0.25, 0.1)  # the brownish ink of the official sheet
    canvas.setFillColorRGB(0.55, 0.25, 0.1)
    fonts.draw_centred_string(canvas, 105 * mm, HEIGHT - 12 * mm, "出　生　届", role=ROLE_TEXT, size=20)
    fonts.draw_centred_string(canvas, 315 * mm, HEIGHT - 12 * mm, "出　生　証　明　書", role=ROLE_TEXT, size=18)
    canvas.setLineWidth(1.2)
    canvas.rect(10 * mm, 10 * mm, 190 * mm, HEIGHT - 26 * mm)
    canvas.rect(220 * mm, 10 * mm, 190 * mm, HEIGHT - 26 * mm)
    canvas.setLineWidth(0.4)
    for field in overlay.fields:
        place = field.place
        assert place is not None
        x, y = place.x * mm, HEIGHT - (place.y + place.h) * mm
        canvas.rect(x, y, place.w * mm, place.h * mm)
        # The label sits left of (or above) its box, as on the official sheet.
        fonts.draw_right_string(canvas, x - 1.5 * mm, y + place.h * mm / 2 - 2, field.label, role=ROLE_TEXT, size=6.5)
    top = 30.0
    for label in DOCTOR_BOXES:
        canvas.rect(225 * mm, HEIGHT - (top + 22) * mm, 180 * mm, 22 * mm)
        fonts.draw_string(canvas, 227 * mm, HEIGHT - (top + 4) * mm, label, role=ROLE_TEXT, size=7)
        top += 24
    canvas.showPage()
    canvas.save()
    print(target.relative_to(ROOT))


if __name__ == "__main__":
    main()
