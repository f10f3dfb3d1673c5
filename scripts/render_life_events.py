"""Render one page of each new life event's bundle, the おくやみハンドブック, a slip with fees and the overlay print
of the 婚姻届 / 離婚届 (over the blank sheet, and the values alone as printed onto the couple's paper) to docs/render/.

Run: .venv/bin/python scripts/render_life_events.py  (needs pdftoppm from poppler-utils). Fictional households
from bench/households/; the pure engine only, no database.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.forms.determine import determine  # noqa: E402
from app.forms.fonts import load_fonts  # noqa: E402
from app.forms.handbook import build_handbook  # noqa: E402
from app.forms.handbook_pdf import render_handbook  # noqa: E402
from app.forms.loader import load_definitions  # noqa: E402
from app.forms.mapping import resolve_form, resolve_overlay  # noqa: E402
from app.forms.render import RenderOptions, render_form  # noqa: E402
from app.forms.slip_pdf import SlipDocument, SlipRow, render_slip  # noqa: E402
from app.services.routing import application_label, plan_slip  # noqa: E402

# household → the form that shows its life event best
PAGES = {
    "model_move_out_family": "jumin_tenshutsu",
    "model_move_out_elderly_facility": "kaigo_soshitsu",
    "model_move_within_family": "jumin_tenkyo",
    "model_household_change": "setai_henko",
    "model_death": "sosaihi",
    "model_marriage": "konin_todoke",
    "model_divorce_lone_parent": "jido_fuyo_teate",
    "model_certificates": "juminhyo_seikyu",
    "model_move_in_lone_parent": "hitorioya_iryo",
}
# household → the 戸籍届 printed in the overlay mode
OVERLAYS = {"model_marriage": "konin_todoke", "model_divorce_lone_parent": "rikon_todoke"}
OUT = ROOT / "docs" / "render"


def _png(pdf: bytes, name: str, dpi: int = 60) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.pdf"
        src.write_bytes(pdf)
        pdftoppm = shutil.which("pdftoppm") or "pdftoppm"
        subprocess.run([pdftoppm, "-r", str(dpi), "-png", "-singlefile", "-f", "1", "-l", "1", str(src),  # noqa: S603
                        str(OUT / name)], check=True)


def main() -> None:
    """Write the PNGs."""
    defs = load_definitions(ROOT / "form_definitions")
    fonts = load_fonts()
    options = RenderOptions(fonts=fonts, qr_url="kakanai:K-SAMPLE", city_name="尼崎市")
    for household, app_id in PAGES.items():
        answers = json.loads((ROOT / "bench" / "households" / f"{household}.json").read_text("utf-8"))
        inst = next(i for i in determine(defs, answers) if i.application_id == app_id)
        pdf = render_form(resolve_form(defs, inst, case_number="K-SAMPLE"), options).pdf
        _png(pdf, f"life_{household.removeprefix('model_')}_{app_id}")
    for household, app_id in OVERLAYS.items():
        answers = json.loads((ROOT / "bench" / "households" / f"{household}.json").read_text("utf-8"))
        inst = next(i for i in determine(defs, answers) if i.application_id == app_id)
        for preview, suffix in ((True, "overlay_preview"), (False, "overlay")):
            form = resolve_overlay(defs, inst, case_number="K-SAMPLE", on_template=preview)
            _png(render_form(form, options).pdf, f"life_{household.removeprefix('model_')}_{app_id}_{suffix}")
    death = json.loads((ROOT / "bench" / "households" / "model_death.json").read_text("utf-8"))
    handbook = build_handbook(defs, death, case_number="K-SAMPLE", city_name="尼崎市")
    _png(render_handbook(handbook, fonts), "life_death_handbook", dpi=70)
    certs = json.loads((ROOT / "bench" / "households" / "model_certificates.json").read_text("utf-8"))
    instances = determine(defs, certs)
    rows = []
    for step in plan_slip(defs, instances):
        dep = defs.departments[step.department_id]
        apps = tuple(f"{application_label(defs, i.application_id)}（{i.copies}通・交付）" for i in step.instances)
        rows.append(SlipRow(position=step.position, stage=step.stage + 1, parallel=False, department=dep.name,
                            place=f"{dep.location} {'・'.join(dep.counters)}番窓口", applications=apps,
                            status="受付", done=False))
    slip = SlipDocument(city_name="尼崎市", office_name="本庁舎", case_number="K-SAMPLE", ticket_label="042",
                        visit_date="令和8年7月6日", qr_url="https://example.invalid/q/sample", rows=tuple(rows),
                        fee_total=sum(i.fee_total for i in instances))
    _png(render_slip(slip, fonts), "life_certificates_slip", dpi=70)


if __name__ == "__main__":
    main()
