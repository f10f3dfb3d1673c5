"""Draw the blank official-like A3 landscape sheets the overlay print mode is checked against.

出生届, 婚姻届 and 離婚届 are brought to the counter on the official A3 landscape sheet, part of it already
written by someone else (the doctor's 出生証明書, the witnesses). Each blank has a box for every value the
overlay prints, at the positions the definition gives, plus the boxes the service never fills (signatures
written with a pen, witnesses, the doctor's half). A city replaces a file with a scan of its own sheet.
Run from the repository root: `.venv/bin/python scripts/make_overlay_templates.py [application id ...]`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from app.forms.fonts import ROLE_TEXT, FontSet, load_fonts  # noqa: E402
from app.forms.schema import Application  # noqa: E402

WIDTH, HEIGHT = 420 * mm, 297 * mm
Box = tuple[str, float, float, float, float]  # label, x, y, w, h in mm from the top-left corner


@dataclass(frozen=True)
class Sheet:
    """What one official sheet shows besides the overlay's own boxes."""

    title: str
    left_title: str
    right_title: str
    # "left": labels right-aligned left of each box (出生届); "above": a small label over each box.
    labels: str = "above"
    headings: tuple[tuple[str, float, float], ...] = ()  # column headings: text, centre x, baseline y (mm)
    extra: tuple[Box, ...] = ()  # boxes written by hand (signatures, witnesses, what the interview does not ask)
    right_stack: tuple[str, ...] = ()  # the 出生届's doctor half: boxes stacked down the right half
    right_note: str = ""


def _witnesses(top: float) -> tuple[Box, ...]:
    out: list[Box] = []
    for n, x in ((1, 226.0), (2, 318.0)):
        out += [(f"証人{n} 署名", x, top, 87, 14), (f"証人{n} 生年月日", x, top + 18, 87, 8),
                (f"証人{n} 住所", x, top + 30, 87, 14), (f"証人{n} 本籍", x, top + 48, 87, 14)]
    return tuple(out)


_COLUMNS = (("夫になる人", 78.0, 34.0), ("妻になる人", 160.0, 34.0))
SHEETS: dict[str, Sheet] = {
    "shussei": Sheet(
        title="出生届（見本用紙）", left_title="出　生　届", right_title="出　生　証　明　書", labels="left",
        right_stack=("子の氏名", "男女の別", "生まれたとき", "出生したところ及びその種別", "体重及び身長", "単胎・多胎の別",
                     "母の氏名", "妊娠週数", "この母の出産した子の数", "医師・助産師その他の立会者の住所・氏名")),
    "konin_todoke": Sheet(
        title="婚姻届（見本用紙）", left_title="婚　姻　届", right_title="証　　人", headings=_COLUMNS,
        extra=(("夫 父母の氏名・続き柄", 40, 122, 76, 12), ("妻 父母の氏名・続き柄", 122, 122, 76, 12),
               ("同居を始めたとき", 40, 162, 76, 8), ("初婚・再婚の別", 122, 162, 76, 8),
               ("同居を始める前の夫妻のそれぞれの世帯のおもな仕事", 40, 173, 158, 14),
               ("夫妻の職業（国勢調査の年だけ）", 40, 190, 158, 8), ("その他", 40, 201, 158, 10),
               ("届出人 署名（夫になる人）", 40, 216, 76, 12), ("届出人 署名（妻になる人）", 122, 216, 76, 12),
               *_witnesses(40.0)),
        right_note="証人は成年の方2人が、それぞれ自分で署名します。"),
    "rikon_todoke": Sheet(
        title="離婚届（見本用紙）", left_title="離　婚　届", right_title="証　　人（協議離婚のときだけ）",
        headings=(("夫", 78.0, 34.0), ("妻", 160.0, 34.0)),
        extra=(("婚姻前の氏にもどる者の本籍", 40, 135, 158, 10),
               ("未成年の子の氏名 夫が親権を行う子", 40, 148, 76, 14), ("未成年の子の氏名 妻が親権を行う子", 122, 148, 76, 14),
               ("同居の期間", 40, 166, 158, 8), ("別居する前の住所", 40, 177, 158, 9),
               ("別居する前の世帯のおもな仕事・夫妻の職業", 40, 189, 158, 10), ("その他", 40, 202, 158, 10),
               ("届出人 署名（夫）", 40, 216, 76, 12), ("届出人 署名（妻）", 122, 216, 76, 12),
               *_witnesses(40.0), ("面会交流・養育費の分担の取決め（未成年の子がいるとき）", 226, 116, 179, 20)),
        right_note="協議離婚のときは、成年の方2人が証人として、それぞれ自分で署名します。"),
}


def draw(app_id: str, fields: list[tuple[str, float, float, float, float]], target: Path, fonts: FontSet) -> None:
    """One blank sheet: the frame, titles, a box for each overlay value and the boxes written by hand."""
    sheet = SHEETS[app_id]
    canvas = Canvas(str(target), pagesize=(WIDTH, HEIGHT), invariant=1, initialFontName=fonts.font_name(ROLE_TEXT))
    canvas.setTitle(sheet.title)
    canvas.setStrokeColorRGB(0.55, 0.25, 0.1)  # the brownish ink of the official sheet
    canvas.setFillColorRGB(0.55, 0.25, 0.1)
    fonts.draw_centred_string(canvas, 105 * mm, HEIGHT - 12 * mm, sheet.left_title, role=ROLE_TEXT, size=20)
    fonts.draw_centred_string(canvas, 315 * mm, HEIGHT - 12 * mm, sheet.right_title, role=ROLE_TEXT, size=18)
    canvas.setLineWidth(1.2)
    canvas.rect(10 * mm, 10 * mm, 190 * mm, HEIGHT - 26 * mm)
    canvas.rect(220 * mm, 10 * mm, 190 * mm, HEIGHT - 26 * mm)
    canvas.setLineWidth(0.4)
    for text, cx, baseline in sheet.headings:
        fonts.draw_centred_string(canvas, cx * mm, HEIGHT - baseline * mm, text, role=ROLE_TEXT, size=10)
    for label, bx, by, bw, bh in [*fields, *sheet.extra]:
        x, y = bx * mm, HEIGHT - (by + bh) * mm
        canvas.rect(x, y, bw * mm, bh * mm)
        if sheet.labels == "left":  # the label sits left of its box, as on the official 出生届
            fonts.draw_right_string(canvas, x - 1.5 * mm, y + bh * mm / 2 - 2, label, role=ROLE_TEXT, size=6.5)
        else:  # a small label just over the box's top-left corner
            fonts.draw_string(canvas, x + 0.5 * mm, y + bh * mm + 0.8 * mm, label, role=ROLE_TEXT, size=5.5)
    top = 30.0
    for label in sheet.right_stack:
        canvas.rect(225 * mm, HEIGHT - (top + 22) * mm, 180 * mm, 22 * mm)
        fonts.draw_string(canvas, 227 * mm, HEIGHT - (top + 4) * mm, label, role=ROLE_TEXT, size=7)
        top += 24
    if sheet.right_note:
        fonts.draw_string(canvas, 226 * mm, HEIGHT - 30 * mm, sheet.right_note, role=ROLE_TEXT, size=8)
    canvas.showPage()
    canvas.save()


def main(app_ids: list[str]) -> None:
    fonts = load_fonts()
    fonts.register()
    for app_id in app_ids or list(SHEETS):
        # Read the one definition, not the whole set: the loader refuses a set whose template is missing.
        text = (ROOT / "form_definitions" / "applications" / f"{app_id}.yaml").read_text(encoding="utf-8")
        overlay = Application.model_validate(yaml.safe_load(text)).overlay
        assert overlay is not None, app_id
        fields = []
        for f in overlay.fields:
            assert f.place is not None
            fields.append((f.label, f.place.x, f.place.y, f.place.w, f.place.h))
        target = ROOT / "form_definitions" / overlay.template
        draw(app_id, fields, target, fonts)
        print(target.relative_to(ROOT))


if __name__ == "__main__":
    main(sys.argv[1:])
