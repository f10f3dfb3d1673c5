"""Overlay print mode for the 戸籍届 the couple brings: 婚姻届 and 離婚届 values at the official positions.

The blank sheets in form_definitions/templates/ carry a box (and its label) for every value the overlay prints;
the values must land inside those boxes, moved against the printer's offset, and nothing of the sheet itself
may be printed onto the paper the resident brought.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from pypdf import PdfReader
from reportlab.lib.units import mm

from app.forms.determine import determine
from app.forms.fonts import FontSet
from app.forms.loader import DefinitionSet
from app.forms.mapping import resolve_overlay
from app.forms.render import RenderOptions, render_form
from app.settings import PROJECT_ROOT
from tests.forms.test_overlay import words

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")

FORMS = {
    "konin_todoke": ("model_marriage", "婚　姻　届",
                     {"夫 氏名": "杭瀬", "妻 氏名": "潮江", "妻 よみかた": "シオエ", "夫 生年月日": "平成6年1月17日",
                      "新しい本籍": "兵庫県尼崎市東七松町一丁目23番地", "連絡先": "080-5678-9012"}),
    "rikon_todoke": ("model_divorce_lone_parent", "離　婚　届",
                     {"夫 氏名": "常光寺", "妻 よみかた": "ジョウコウジ", "妻 生年月日": "昭和63年10月10日",
                      "連絡先": "090-6789-0123"}),
}


def overlay_pdf(defs: DefinitionSet, fonts: FontSet, app_id: str, *, offset: tuple[float, float] = (0.0, 0.0),
                preview: bool = False) -> bytes:
    household = FORMS[app_id][0]
    answers = json.loads((PROJECT_ROOT / "bench" / "households" / f"{household}.json").read_text("utf-8"))
    inst = next(i for i in determine(defs, answers) if i.application_id == app_id)
    form = resolve_overlay(defs, inst, case_number="R8-000123", on_template=preview)
    return render_form(form, RenderOptions(fonts=fonts, printer_offset_mm=offset)).pdf


def box(defs: DefinitionSet, app_id: str, label: str) -> tuple[float, float, float, float]:
    overlay = defs.applications[app_id].overlay
    assert overlay is not None
    place = next(f.place for f in overlay.fields if f.label == label)
    assert place is not None
    return place.x * mm, place.y * mm, (place.x + place.w) * mm, (place.y + place.h) * mm


@pytest.mark.parametrize("app_id", list(FORMS))
@pytest.mark.parametrize("offset", [(0.0, 0.0), (2.0, -1.5)])
def test_values_land_inside_the_boxes_of_the_blank_sheet(defs: DefinitionSet, fonts: FontSet, tmp_path: Path,
                                                         app_id: str, offset: tuple[float, float]) -> None:
    pdf = overlay_pdf(defs, fonts, app_id, offset=offset)
    page = PdfReader(io.BytesIO(pdf)).pages[0]
    assert (round(float(page.mediabox.width) / mm), round(float(page.mediabox.height) / mm)) == (420, 297)
    found = words(pdf, tmp_path)
    text = "".join(w for *_, w in found)
    title = FORMS[app_id][1]
    # Values only: the sheet's own printing (title, labels, witnesses) is not drawn onto the paper.
    assert title not in text and "証人" not in text and "署名" not in text and "よみかた" not in text
    dx, dy = offset[0] * mm, offset[1] * mm
    for label, value in FORMS[app_id][2].items():
        x0, y0, x1, y1 = box(defs, app_id, label)
        hits = [w for w in found if w[4] and (value.startswith(w[4]) or w[4].startswith(value[:3]))]
        inside = [w for w in hits if x0 - dx - 1 <= w[0] and w[2] <= x1 - dx + 1
                  and y0 - dy - 1 <= w[1] and w[3] <= y1 - dy + 1]
        assert inside, (label, value, hits, (x0 - dx, y0 - dy, x1 - dx, y1 - dy))


@pytest.mark.parametrize("app_id", list(FORMS))
def test_the_blank_sheet_has_a_labelled_box_at_every_overlay_position(defs: DefinitionSet, tmp_path: Path,
                                                                      app_id: str) -> None:
    overlay = defs.applications[app_id].overlay
    assert overlay is not None and overlay.template.endswith("_a3_landscape.pdf")
    blank = (PROJECT_ROOT / "form_definitions" / overlay.template).read_bytes()
    page = PdfReader(io.BytesIO(blank)).pages[0]
    assert (round(float(page.mediabox.width) / mm), round(float(page.mediabox.height) / mm)) == (420, 297)
    found = words(blank, tmp_path)
    assert FORMS[app_id][1].replace("　", "") in "".join(w for *_, w in found).replace(" ", "")
    for field in overlay.fields:
        x0, y0, _, _ = box(defs, app_id, field.label)
        first = field.label.split(" ")[0]
        # The sheet prints the field's label just over the top-left corner of its box.
        assert any(w[4].startswith(first[:2]) and abs(w[0] - x0) < 2 * mm and 0 < y0 - w[3] < 3 * mm
                   for w in found), field.label


@pytest.mark.parametrize("app_id", list(FORMS))
def test_preview_shows_the_values_on_the_blank_sheet(defs: DefinitionSet, fonts: FontSet, tmp_path: Path,
                                                     app_id: str) -> None:
    text = "".join(w for *_, w in words(overlay_pdf(defs, fonts, app_id, preview=True), tmp_path))
    assert "証人" in text and "署名" in text and FORMS[app_id][2]["連絡先"] in text
