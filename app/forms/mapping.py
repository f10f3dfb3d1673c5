"""Map the answers onto a form: evaluate every cell's source, apply its transform, count what is printed."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from app.forms.determine import Instance
from app.forms.expr import MISSING, compile_expr
from app.forms.loader import DefinitionSet
from app.forms.resolved import ResolvedCell, ResolvedForm, ResolvedRow, ResolvedSection, ResolvedTable
from app.forms.schema import WRITING_KINDS, Application, FormField
from app.forms.transforms import apply_transform

# What odd stored data can make a transform raise (a date before Meiji, a number where text was
# expected): the cell then prints the raw value as text, so no stored value can make a PDF fail.
_DATA_ERRORS = (TypeError, ValueError, ArithmeticError, LookupError)


def resolve_cell(spec: FormField, scope: Mapping[str, Any]) -> ResolvedCell:
    """The printed value of one cell in a scope (answers context plus bound names)."""
    try:
        return _resolve_cell(spec, scope)
    except _DATA_ERRORS:
        raw = compile_expr(spec.source).evaluate(scope) if spec.source is not None else spec.value
        text = raw if isinstance(raw, (str, int, float)) and not isinstance(raw, bool) else ""
        return ResolvedCell(spec, text=str(text)[:200])


def _resolve_cell(spec: FormField, scope: Mapping[str, Any]) -> ResolvedCell:
    if spec.style in ("signature", "blank"):
        return ResolvedCell(spec)
    if spec.value is not None:
        raw: Any = spec.value
    elif spec.source is not None:
        raw = compile_expr(spec.source).evaluate(scope)
    else:
        return ResolvedCell(spec)
    value = apply_transform(spec.transform, raw, scope)
    if spec.style == "check":
        chosen = value if isinstance(value, (list, tuple)) else [value]
        allowed = {o.value for o in spec.options or []}
        return ResolvedCell(spec, selected=tuple(str(v) for v in chosen if str(v) in allowed))
    if value is True or value is False:
        value = "有" if value else "無"
    return ResolvedCell(spec, text="" if value is MISSING else str(value))


def resolve_form(defs: DefinitionSet, instance: Instance, *, case_number: str) -> ResolvedForm:
    """Everything the renderer needs for one application instance."""
    app = instance.application
    scope = instance.scope
    department = defs.departments[app.department]
    filed = scope.get("visit_date")
    try:
        filed_on = dt.date.fromisoformat(filed) if isinstance(filed, str) else None
    except ValueError:
        filed_on = None
    boxes = signature_boxes(instance)
    common: dict[str, Any] = {
        "instance_id": instance.instance_id, "title": instance.title, "department_name": department.name,
        "case_number": case_number, "filed_on": filed_on, "notes": tuple(app.notes),
        "signer_id": instance.signer_id, "signature_box": "agent" if boxes and boxes[0][0] == "agent" else "role",
        "signature_boxes": boxes,
    }
    if app.template is not None:
        placed = tuple((f.place, resolve_cell(f, scope)) for f in app.fields if f.place is not None)
        return ResolvedForm(heading=app.title, recipient=None, layout=None,
                            template=defs.templates[app.template], placed=placed, **common)
    assert app.layout is not None
    sections = []
    for section in app.layout.sections:
        rows = tuple(ResolvedRow(r.height, tuple(resolve_cell(c, scope) for c in r.cells)) for r in section.rows)
        table = None
        if section.table is not None:
            items = compile_expr(section.table.each).evaluate(scope)
            trows = tuple(
                tuple(resolve_cell(c, {**scope, section.table.as_: item}) for c in section.table.columns)
                for item in (items if isinstance(items, list) else [])
            )
            table = ResolvedTable(tuple(section.table.columns), trows, section.table.min_rows,
                                  section.table.row_height)
        sections.append(ResolvedSection(section.title, section.note, rows, table))
    return ResolvedForm(heading=app.layout.heading or app.title, recipient=app.layout.recipient,
                        layout=app.layout, sections=tuple(sections), **common)


def resolve_overlay(defs: DefinitionSet, instance: Instance, *, case_number: str, on_template: bool) -> ResolvedForm:
    """The overlay print of a form: its values at the official positions (on_template: over the blank, to preview)."""
    app = instance.application
    if app.overlay is None:
        raise ValueError(f"{instance.application_id} has no overlay print mode")
    base = resolve_form(defs, instance, case_number=case_number)
    placed = tuple((f.place, resolve_cell(f, instance.scope)) for f in app.overlay.fields if f.place is not None)
    return replace(base, heading=app.title, recipient=None, layout=None, sections=(),
                   template=defs.templates[app.overlay.template], placed=placed, values_only=not on_template)


def signature_boxes(instance: Instance) -> tuple[tuple[str, str | None], ...]:
    """(box, person) for each signer of the form: whose signature goes in which signature box.

    A box is named by its cell's `signs_as`: a role id, "agent" (the 代理人 box, used when an agent acts for
    that role) or "" (an unmarked box: the form's first signing role).
    """
    marks = {c.signs_as or "" for c in all_cells(instance.application) if c.style == "signature"}
    out: list[tuple[str, str | None]] = []
    for index, role in enumerate(instance.roles.signers):
        if role.by_agent and "agent" in marks:
            key = "agent"
        elif role.role_id in marks:
            key = role.role_id
        elif index == 0:
            key = ""
        else:
            continue  # the loader refuses a second signer without its own box
        out.append((key, role.person_id))
    return tuple(out)


def all_cells(app: Application) -> list[FormField]:
    """Every printed field of an application: template fields, layout rows and table columns."""
    out = list(app.fields)
    for section in app.layout.sections if app.layout is not None else []:
        for row in section.rows:
            out.extend(row.cells)
        if section.table is not None:
            out.extend(section.table.columns)
    return out


def printed_digest(form: ResolvedForm) -> str:
    """A digest of everything the form prints (not the signature): a change voids the form's signature."""
    digest = hashlib.sha256(form.title.encode())
    for cell in form.cells():
        if cell.spec.style in ("signature", "blank"):
            continue
        digest.update(b"\0" + (cell.spec.label or "").encode() + b"\1" + cell.text.encode() + b"\1"
                      + "|".join(cell.selected).encode())
    return digest.hexdigest()


def writing_saved(forms: Iterable[ResolvedForm]) -> dict[str, int]:
    """How many filled fields of each kind the forms print: what the resident no longer writes by hand."""
    counts: Counter[str] = Counter()
    for form in forms:
        for cell in form.cells():
            if cell.filled and cell.spec.kind not in ("text", "check", "signature", "blank"):
                counts[cell.spec.kind] += 1
    return dict(sorted(counts.items()))


def survey_totals(counts: Mapping[str, int]) -> dict[str, int]:
    """Counts folded into the survey's headings (name, address, birth date, phone)."""
    out = {"name": 0, "address": 0, "birth_date": 0, "phone": 0}
    for kind, n in counts.items():
        heading = WRITING_KINDS.get(kind)
        if heading in out:
            out[heading] += n
    return out


def resolve_all(defs: DefinitionSet, instances: Sequence[Instance], *, case_number: str) -> list[ResolvedForm]:
    """Resolve every instance."""
    return [resolve_form(defs, i, case_number=case_number) for i in instances]
