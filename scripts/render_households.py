"""Render the sample households' forms to PNG in docs/render/ (for people to look at, not for tests).

Each signer gets a stand-in signature (their name in a box) and it is placed only on the forms that person
signs, as the service does: a form whose signer has not signed keeps its box empty. Run from the repository
root: `.venv/bin/python scripts/render_households.py` (needs poppler's pdftoppm).
"""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.forms.answers import validate_answers  # noqa: E402
from app.forms.determine import determine  # noqa: E402
from app.forms.expr import as_date  # noqa: E402
from app.forms.fonts import load_fonts  # noqa: E402
from app.forms.loader import load_definitions  # noqa: E402
from app.forms.mapping import resolve_form  # noqa: E402
from app.forms.render import RenderOptions, render_form  # noqa: E402
from app.forms.roles import agent_person, person_name  # noqa: E402

# household file → (forms to render, who has signed)
SAMPLES = {
    "model_move_in_family": (["jumin_tennyu", "jido_teate", "kodomo_iryo-m4"], {"m1"}),
    "spouse_alone": (["jumin_tennyu", "inkan_toroku-m2", "jido_teate"], {"m2"}),
    "foreign_parent_birth": (["shussei"], {"m2"}),
    "single_parent": (["jumin_tennyu", "jido_teate", "kokuho_shutoku"], {"m1"}),
}
FONT = "/usr/share/fonts/truetype/ipamj/ipamjm.ttf"


def stand_in_signature(name: str) -> bytes:
    """A PNG with the name written in it, standing in for a signature drawn on the tablet."""
    font = ImageFont.truetype(FONT, 48)
    image = Image.new("RGBA", (60 + 52 * len(name), 80), (255, 255, 255, 0))
    ImageDraw.Draw(image).text((30, 12), name, font=font, fill=(20, 20, 120, 255))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def main() -> None:
    defs = load_definitions(ROOT / "form_definitions")
    out_dir = ROOT / "docs" / "render"
    fonts = load_fonts()
    for household, (wanted, signed) in SAMPLES.items():
        raw = json.loads((ROOT / "bench" / "households" / f"{household}.json").read_text("utf-8"))
        answers = validate_answers(defs, raw, today=as_date(raw["visit_date"])).answers
        members = {m["id"]: m for m in answers["household"]["members"]}
        people = {k: person_name(v) for k, v in members.items()}
        agent = agent_person(answers)
        if agent:
            people["agent"] = person_name(agent)
        pngs = {k: stand_in_signature(v.replace("\u3000", "")) for k, v in people.items() if k in signed}
        instances = {i.instance_id: i for i in determine(defs, answers, case_number="R8-000123")}
        options = RenderOptions(fonts=fonts, qr_url="kakanai:R8-000123", city_name="みなと市",
                                generated_label="書かない窓口で作成（見本）")
        for instance_id in wanted:
            inst = instances[instance_id]
            form = resolve_form(defs, inst, case_number="R8-000123")
            form = dataclasses.replace(form, signature=pngs.get(inst.signer_id or ""))
            pdf = render_form(form, options).pdf
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "form.pdf"
                path.write_bytes(pdf)
                stem = out_dir / f"{household}_{instance_id}"
                # Fixed arguments and our own temporary file: poppler's pdftoppm from PATH.
                command = ["pdftoppm", "-r", "60", "-png", "-f", "1", "-l", "1", "-singlefile", str(path), str(stem)]
                subprocess.run(command, check=True)  # noqa: S603
            print(f"{stem.relative_to(ROOT)}.png  signer={inst.signer_id} signed={inst.signer_id in signed}")


if __name__ == "__main__":
    main()
