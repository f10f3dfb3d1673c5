"""What the resident still writes by hand, and what the forms print for them (pure: forms in, counts out).

- **pre-filled**: filled cells of each kind across the visit's forms (the same count as
  GET /api/v1/cases/{id}/writing-saved), folded into the survey's headings.
- **written by hand now**: cells of those kinds that a form requires (`required: true`) but the
  service left empty (the resident would fill them in with a pen), plus the signatures: ONE name per
  person who signed on the tablet (each draws once; it is then placed on every form that person signs),
  and one name per signature box no tablet signature fills (that signer signs the paper with a pen, e.g.
  a spouse who did not come). The survey counted signatures as writing one's name, so they count here too.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

from app.forms.mapping import survey_totals, writing_saved
from app.forms.resolved import ResolvedForm
from app.forms.schema import WRITING_KINDS

HEADINGS = ("name", "address", "birth_date", "phone")


def handwriting(forms: Sequence[ResolvedForm], *,
                tablet_signed: Mapping[str, Collection[str]] | None) -> dict[str, dict[str, int]]:
    """Per heading (name, address, birth_date, phone): `prefilled` and `by_hand` counts.

    `tablet_signed`: form instance id → the people whose tablet signature is on that form; None while the
    visit is not signed yet (no signature is counted).
    """
    prefilled = survey_totals(writing_saved(forms))
    empty: dict[str, int] = {}
    for kind in _required_empty_kinds(forms):
        empty[kind] = empty.get(kind, 0) + 1
    by_hand = survey_totals(empty)
    if tablet_signed is not None:
        by_hand["name"] += signatures_by_hand(forms, tablet_signed)
    return {h: {"prefilled": prefilled[h], "by_hand": by_hand[h]} for h in HEADINGS}


def signatures_by_hand(forms: Iterable[ResolvedForm], tablet_signed: Mapping[str, Collection[str]]) -> int:
    """Names written for signatures: one per person who signed on the tablet, one per box signed with a pen."""
    on_tablet = {person for people in tablet_signed.values() for person in people}
    pen = sum(1 for form in forms for _, person in form.signature_boxes
              if person is None or person not in tablet_signed.get(form.instance_id, ()))
    return len(on_tablet) + pen


def _required_empty_kinds(forms: Iterable[ResolvedForm]) -> Iterable[str]:
    for form in forms:
        for cell in form.cells():
            if cell.spec.required and not cell.filled and cell.spec.kind in WRITING_KINDS:
                yield cell.spec.kind
