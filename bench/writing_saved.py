"""Print the handwriting the model household no longer does, beside the city's survey of the old way.

    .venv/bin/python bench/writing_saved.py [answers.json]

Counts come from the real engine: determination over form_definitions/, then every filled cell of
every form in the bundle, by kind (the same code as GET /api/v1/cases/{id}/writing-saved).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from app.forms.determine import determine
from app.forms.loader import load_definitions
from app.forms.mapping import resolve_all, survey_totals, writing_saved
from app.metrics.writing import handwriting
from app.settings import PROJECT_ROOT

DEFAULT_CASE = PROJECT_ROOT / "bench" / "households" / "model_move_in_family.json"
ROWS = [("name", "氏名", "name_written"), ("address", "住所", "address_written"),
        ("birth_date", "生年月日", "birth_date_written"), ("phone", "電話番号", "phone_written")]


def main(path: Path) -> None:
    """Print the Markdown table."""
    answers = json.loads(path.read_text(encoding="utf-8"))
    defs = load_definitions(PROJECT_ROOT / "form_definitions")
    instances = determine(defs, answers)
    forms = resolve_all(defs, instances, case_number="bench")
    counts = writing_saved(forms)
    totals = survey_totals(counts)
    # Every signer signs once on the tablet (one name each); required cells the household file lacks stay
    # for the resident's pen.
    on_tablet = {i.instance_id: {s.person_id for s in i.signing_slots} for i in instances}
    by_hand = handwriting(forms, tablet_signed=on_tablet)
    baseline = answers.get("survey_baseline", {})
    signers = sorted({p for people in on_tablet.values() for p in people if p})
    print(f"forms in the bundle: {len(instances)} ({', '.join(i.instance_id for i in instances)})")
    print(f"signers (each signs once on the tablet): {len(signers)}\n")
    print("| field | written by hand (survey, old way) | printed for the resident (this service) | written by hand now |")
    print("|---|---|---|---|")
    for key, label, base_key in ROWS:
        print(f"| {label} ({key}) | {baseline.get(base_key, '-')} | {totals[key]} | {by_hand[key]['by_hand']} |")
    extra = {k: v for k, v in counts.items() if k not in {"name", "address", "birth_date", "phone"}}
    print("\nother pre-filled fields by kind: " + ", ".join(f"{k} {v}" for k, v in extra.items()))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_CASE)
