"""What the resident still writes by hand, and what the forms print for them (pure: forms in, counts out).

- **pre-filled**: filled cells of each kind across the visit's forms (the same count as
  GET /api/v1/cases/{id}/writing-saved), folded into the survey's headings.
- **written by hand now**: cells of those kinds that a form requires (`required: true`) but the
  service left empty (the resident would fill them in with a pen), plus ONE name for the signature
  the resident writes once on the tablet (it is then placed on every form that needs one). The
  survey counted signatures as writing one's name, so the signature is counted here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from app.forms.mapping import survey_totals, writing_saved
from app.forms.resolved import ResolvedForm
from app.forms.schema import WRITING_KINDS

HEADINGS = ("name", "address", "birth_date", "phone")


def handwriting(forms: Sequence[ResolvedForm], *, signed: bool) -> dict[str, dict[str, int]]:
    """Per heading (name, address, birth_date, phone): `prefilled` and `by_hand` counts."""
    prefilled = survey_totals(writing_saved(forms))
    empty: dict[str, int] = {}
    for kind in _required_empty_kinds(forms):
        empty[kind] = empty.get(kind, 0) + 1
    by_hand = survey_totals(empty)
    if signed:
        by_hand["name"] += 1
    return {h: {"prefilled": prefilled[h], "by_hand": by_hand[h]} for h in HEADINGS}


def _required_empty_kinds(forms: Iterable[ResolvedForm]) -> Iterable[str]:
    for form in forms:
        for cell in form.cells():
            if cell.spec.required and not cell.filled and cell.spec.kind in WRITING_KINDS:
                yield cell.spec.kind
