"""Overlay print mode: the 出生届 values at the official positions of the A3 landscape sheet, nothing else."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pypdf import PdfReader
from reportlab.lib.units import mm

from app.forms.calibration import calibration_marks, render_calibration
from app.forms.determine import determine
from app.forms.fonts import FontSet
from app.forms.loader import DefinitionSet
from app.forms.mapping import resolve_overlay
from app.forms.render import RenderOptions, render_form
from app.settings import PROJECT_ROOT

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")


def words(pdf: bytes, tmp_path: Path) -> list[tuple[float, float, float, float, str]]:
    """Words with boxes in points from the top-left corner (pdftotext -bbox)."""
    path = tmp_path / "overlay.pdf"
    path.write_bytes(pdf)
    html = subprocess.run(["pdftotext", "-bbox", "-enc", "UTF-8", str(path), "-"], check=True,
                          capture_output=True).stdout.decode()
    pattern = r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>'
    return [(float(a), float(b), float(c), float(d), w) for a, b, c, d, w in re.findall(pattern, html)]


def overlay_pdf(defs: DefinitionSet, fonts: FontSet, *, offset: tuple[float, float] = (0.0, 0.0),
                preview: bool = False) -> bytes:
    answers = json.loads((PROJECT_ROOT / "bench" / "households" / "foreign_parent_birth.json").read_text("utf-8"))
    inst = next(i for i in determine(defs, answers) if i.application_id == "shussei")
    form = resolve_overlay(defs, inst, case_number="R7-000001", on_template=preview)
    return render_form(form, RenderOptions(fonts=fonts, printer_offset_mm=offset)).pdf


def place_of(defs: DefinitionSet, label: str) -> tuple[float, float, float, float]:
    overlay = defs.applications["shussei"].overlay
    assert overlay is not None
    field = next(f for f in overlay.fields if f.label == label)
    assert field.place is not None
    p = field.place
    return p.x * mm, p.y * mm, (p.x + p.w) * mm, (p.y + p.h) * mm


CHECKED = {"子の氏名": "陽菜", "父の氏名": "グエン", "父の国籍": "ベトナム", "母の職業": "家事",
           "届出人の本籍": "兵庫県尼崎市東七松町一丁目23番地", "連絡先": "080-2345-6789"}


@pytest.mark.parametrize("offset", [(0.0, 0.0), (2.0, -1.5)])
def test_values_land_inside_their_official_boxes(defs: DefinitionSet, fonts: FontSet, tmp_path: Path,
                                                 offset: tuple[float, float]) -> None:
    pdf = overlay_pdf(defs, fonts, offset=offset)
    page = PdfReader(__import__("io").BytesIO(pdf)).pages[0]
    assert (round(float(page.mediabox.width) / mm), round(float(page.mediabox.height) / mm)) == (420, 297)
    found = words(pdf, tmp_path)
    text = "".join(w for *_, w in found)
    # Values only: none of the sheet's own printing (titles, labels, the doctor's half) is drawn.
    assert "出生証明書" not in text and "出　生　届" not in text and "子の氏名" not in text
    dx, dy = offset[0] * mm, offset[1] * mm
    for label, value in CHECKED.items():
        x0, y0, x1, y1 = place_of(defs, label)
        hits = [w for w in found if value.startswith(w[4]) or w[4].startswith(value[:2])]
        assert hits, (label, value, found)
        # Printed where the box is, moved against the printer's measured offset.
        inside = [w for w in hits if x0 - dx - 1 <= w[0] and w[2] <= x1 - dx + 1
                  and y0 - dy - 1 <= w[1] and w[3] <= y1 - dy + 1]
        assert inside, (label, hits, (x0 - dx, y0 - dy, x1 - dx, y1 - dy))


def test_preview_puts_the_values_on_the_blank_sheet(defs: DefinitionSet, fonts: FontSet, tmp_path: Path) -> None:
    text = "".join(w for *_, w in words(overlay_pdf(defs, fonts, preview=True), tmp_path))
    assert "証明書" in text and "医師・助産師" in text and "陽菜" in text


def test_calibration_page_marks_and_offset(fonts: FontSet, tmp_path: Path) -> None:
    size = (420.0, 297.0)
    plain = render_calibration(fonts, size_mm=size, offset_mm=(0.0, 0.0), printer="counter1")
    shifted = render_calibration(fonts, size_mm=size, offset_mm=(1.5, 1.0), printer="counter1")
    labels = [w for w in words(plain, tmp_path) if w[4].startswith("左から20mm")]
    moved = [w for w in words(shifted, tmp_path) if w[4].startswith("左から20mm")]
    assert labels and moved
    assert calibration_marks(size)[0] == (20.0, 20.0)
    # The label sits 2.5 mm right of its cross; with the offset everything moves 1.5 mm left and 1 mm up.
    assert abs((labels[0][0] - moved[0][0]) - 1.5 * mm) < 0.5
    assert abs((labels[0][1] - moved[0][1]) - 1.0 * mm) < 0.5
    assert dataclasses.is_dataclass(RenderOptions)
