"""The counter tablet's interview: screens built from interview.yaml, autosave, the side panel, review.

The interview screen is generated from the definitions: every field of interview.yaml is rendered
(hidden when its `ask_when` is false), so that a value typed before a question was hidden is not
dropped by the next autosave. Autosave stores what is valid and reports the rest field by field;
the browser keeps the invalid text until it is corrected, so nothing typed is ever lost.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from app.errors import Conflict, ValidationFailed
from app.forms.answers import HELD_BACK_KEY, PASSTHROUGH_KEYS, FieldError, lookup_postal_code, normalise_postal_code, validate_answers
from app.forms.context import build_context
from app.forms.determine import Instance, determine, redirected
from app.forms.expr import MISSING, compile_expr
from app.forms.loader import ADDRESS_PARTS, DefinitionSet
from app.forms.mapping import resolve_form
from app.forms.roles import ROLES_KEY
from app.forms.schema import Choice, InterviewField, InterviewSection
from app.models import Case, User
from app.services import cases, masking
from app.services.documents import application_view, list_applications

ADDRESS_LABELS = {"postal_code": "郵便番号", "prefecture": "都道府県", "city": "市区町村", "town": "町名",
                  "block": "丁目・番地", "building": "建物名・部屋番号（方書）"}
STATUS_LABELS = {"interviewing": "聞き取り中", "signed": "署名済み", "routing": "各課で処理中", "closed": "完了",
                 "cancelled": "取消"}
_INDEX = re.compile(r"^(?P<key>[a-z_][a-z0-9_]*)\[(?P<index>\d+)\]$")
MAX_STRIP_ROUNDS = 8
# Answers key (passed through like $comment) listing the fields the last autosave could not store.
INVALID_KEY = HELD_BACK_KEY  # validated and kept by validate_answers


@dataclass
class FieldView:
    """One question as the screen shows it."""

    key: str  # path relative to the section item (or the full path outside repeats)
    full_path: str  # concrete path with indexes, as validation errors name it
    definition: InterviewField
    value: Any
    asked: bool
    required: bool
    error: str | None = None
    needed_by: list[str] = field(default_factory=list)
    # Addresses report their errors per part (address.block); these are shown beside each part.
    sub_errors: dict[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """The field's kind (name, kana, date, ...)."""
        return self.definition.kind

    @property
    def choices(self) -> list[Choice]:
        """Allowed values of a choice field."""
        return list(self.definition.choices or [])

    @property
    def dom_id(self) -> str:
        """A stable HTML id for the input (labels point at it)."""
        # Underscores survive, so the new-member template's `__i__` can be replaced in the browser.
        return "f-" + re.sub(r"[^a-z0-9_]+", "-", self.full_path.lower()).strip("-")

    def text(self) -> str:
        """The value as an input shows it."""
        value = self.value
        if value is None or value is MISSING:
            return ""
        if self.kind == "my_number" and isinstance(value, str):
            return masking.mask_my_number(value)
        if self.key.endswith("account_number") and isinstance(value, str):
            return masking.mask_account_number(value)
        if isinstance(value, list):
            return "\n".join(str(v) for v in value)
        return str(value)

    def address_part(self, part: str) -> str:
        """One part of an address value."""
        return str(self.value.get(part, "")) if isinstance(self.value, dict) else ""

    def address_error(self, part: str) -> str | None:
        """The error of one part of an address (they are reported per part)."""
        return self.sub_errors.get(part)


@dataclass
class ItemView:
    """One household member (an item of a repeated section)."""

    index: int
    title: str
    fields: list[FieldView]


@dataclass
class SectionView:
    """A section of the interview; `items` is set for repeated sections."""

    definition: InterviewSection
    fields: list[FieldView] = field(default_factory=list)
    items: list[ItemView] = field(default_factory=list)
    template: list[FieldView] = field(default_factory=list)

    @property
    def asked(self) -> bool:
        """Whether any question of the section is currently asked."""
        if self.definition.repeat:
            return True
        return any(f.asked for f in self.fields)


def _get(doc: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)
    return doc


def _truthy(expr: str | None, scope: dict[str, Any], default: bool) -> bool:
    if not expr:
        return default
    try:
        value = compile_expr(expr).evaluate(scope)
    except Exception:  # an expression that cannot be evaluated yet: show the question
        return True
    return bool(value) and value is not MISSING


def member_title(item: dict[str, Any], index: int, label: str) -> str:
    """「世帯員 2　尼崎 花子」 — the heading of a member block on the screen."""
    name = " ".join(str(item.get(k)) for k in ("family_name", "given_name") if item.get(k))
    return f"{label} {index + 1}" + (f"　{name}" if name else "")


def build_screen(
    defs: DefinitionSet, answers: dict[str, Any], *, errors: dict[str, str] | None = None,
    needed: dict[str, list[str]] | None = None,
) -> list[SectionView]:
    """The interview sections with values, visibility, required marks, errors and 'needed by' hints."""
    errors = errors or {}
    needed = needed or {}
    ctx = build_context(answers)
    out: list[SectionView] = []
    for section in defs.interview.sections:
        view = SectionView(definition=section)
        if section.repeat is None:
            for fdef in section.fields:
                view.fields.append(_field_view(fdef, fdef.path, fdef.path, _get(answers, fdef.path), ctx, None,
                                               errors, needed))
        else:
            items = _get(answers, section.repeat)
            for i, item in enumerate(items if isinstance(items, list) else []):
                item = item if isinstance(item, dict) else {}
                scope_item = item
                fields = [
                    _field_view(fdef, fdef.path, f"{section.repeat}[{i}].{fdef.path}", _get(item, fdef.path), ctx,
                                scope_item, errors, needed)
                    for fdef in section.fields
                ]
                view.items.append(ItemView(i, member_title(item, i, section.item_label or "項目"), fields))
            view.template = [
                _field_view(fdef, fdef.path, f"{section.repeat}[__i__].{fdef.path}", None, ctx, {}, {}, {})
                for fdef in section.fields
            ]
        out.append(view)
    return out


def _field_view(
    fdef: InterviewField, key: str, full: str, value: Any, ctx: dict[str, Any], item: dict[str, Any] | None,
    errors: dict[str, str], needed: dict[str, list[str]],
) -> FieldView:
    scope = dict(ctx, item=item) if item is not None else ctx
    asked = _truthy(fdef.ask_when, scope, True)
    required = fdef.required or (bool(fdef.required_when) and _truthy(fdef.required_when, scope, False))
    view = FieldView(key=key, full_path=full, definition=fdef, value=value, asked=asked or value not in (None, ""),
                     required=required, error=errors.get(full), needed_by=needed.get(full, []))
    if fdef.kind == "address":
        view.sub_errors = {part: errors[f"{full}.{part}"] for part in ADDRESS_PARTS if f"{full}.{part}" in errors}
        if view.error is None and view.sub_errors:
            view.error = next(iter(view.sub_errors.values()))
    return view


def visibility(defs: DefinitionSet, answers: dict[str, Any]) -> dict[str, dict[str, bool]]:
    """For each concrete path: whether it is asked now and whether it is required now."""
    out: dict[str, dict[str, bool]] = {}
    for section in build_screen(defs, answers):
        fields = section.fields + [f for item in section.items for f in item.fields]
        for f in fields:
            out[f.full_path] = {"asked": f.asked, "required": f.required}
    return out


# --- the side panel ------------------------------------------------------------------------------------


@dataclass
class Panel:
    """What the side panel shows: the applications that apply, why, and what they still need."""

    applications: list[dict[str, Any]]
    missing: list[dict[str, str]]
    needed: dict[str, list[str]]
    redirects: list[dict[str, str]] = field(default_factory=list)
    # Steps outside the city hall (年金事務所, 法務局, 税務署, banks): no form, told to the resident.
    externals: list[dict[str, Any]] = field(default_factory=list)


def _external_view(inst: Instance) -> dict[str, Any]:
    app = inst.application
    assert app.external is not None
    return {"id": inst.application_id, "title": inst.title, "place": app.external.place, "how": app.external.how,
            "deadline": inst.deadline, "deadline_text": app.deadline.text if app.deadline else ""}


def panel(defs: DefinitionSet, answers: dict[str, Any], *, missing_paths: list[str], case_number: str = "") -> Panel:
    """Applications with reasons (plain Japanese) and, per application, the answers it still lacks; then the
    visit's steps outside the city hall with place and deadline."""
    try:
        found = determine(defs, answers, case_number=case_number, include_external=True)
        redirects = [{"title": i.title, "note": i.redirect or ""}
                     for i in redirected(defs, answers, case_number=case_number)]
    except Exception:  # half-typed answers must never break the screen; the panel just stays empty
        found, redirects = [], []
    instances = [i for i in found if i.application.external is None]
    externals = sorted((_external_view(i) for i in found if i.application.external is not None),
                       key=lambda e: (e["deadline"] is None, e["deadline"] or dt.date.max))
    apps = [application_view(defs, inst) for inst in instances]
    needed: dict[str, list[str]] = {}
    for app in apps:
        for miss in app["missing"]:
            needed.setdefault(miss["path"], []).append(app["title"])
    labels = {p: _label(defs, p) for p in missing_paths}
    missing = [{"path": p, "label": labels[p]} for p in missing_paths]
    for path, titles in needed.items():
        if path not in labels:
            missing.append({"path": path, "label": _label(defs, path) + "（" + "・".join(titles) + "）"})
    return Panel(apps, missing, needed, redirects, externals)


def _label(defs: DefinitionSet, concrete: str) -> str:
    generic = re.sub(r"\[\d+\]", "[]", concrete)
    info = defs.fields.get(generic)
    if info is None:
        parent, _, part = generic.rpartition(".")
        info = defs.fields.get(parent)
        if info is not None and part in ADDRESS_LABELS:
            return f"{info.field.label}（{ADDRESS_LABELS[part]}）"
        return concrete
    match = re.search(r"\[(\d+)\]", concrete)
    return f"{info.field.label}（{int(match.group(1)) + 1}人目）" if match else info.field.label


# --- autosave ------------------------------------------------------------------------------------------


@dataclass
class Saved:
    """The outcome of an autosave: the case as stored and the fields that could not be stored yet."""

    case: Case
    errors: list[FieldError]
    saved: bool


def _strip(doc: Any, path: str) -> bool:
    """Remove the value at a concrete path (`household.members[1].my_number`); False if impossible."""
    parts = path.split(".")
    node = doc
    for i, part in enumerate(parts):
        match = _INDEX.match(part)
        last = i == len(parts) - 1
        if match:
            seq = node.get(match["key"]) if isinstance(node, dict) else None
            index = int(match["index"])
            if not isinstance(seq, list) or index >= len(seq):
                return False
            if last:
                seq.pop(index)
                return True
            node = seq[index]
        else:
            if not isinstance(node, dict) or part not in node:
                return False
            if last:
                del node[part]
                return True
            node = node[part]
    return False


def storable(defs: DefinitionSet, raw: dict[str, Any], *, today: dt.date) -> tuple[dict[str, Any], list[FieldError]]:
    """The valid part of a half-typed answers document, and the field errors of the rest."""
    doc = copy.deepcopy(raw)
    reported: dict[str, FieldError] = {}
    for _ in range(MAX_STRIP_ROUNDS):
        result = validate_answers(defs, doc, today=today, draft=True)
        if not result.errors:
            return result.answers, list(reported.values())
        for err in result.errors:
            reported.setdefault(err.field, err)
            # A missing part (address.block) cannot be removed itself: hold back the whole address.
            path = err.field
            while not _strip(doc, path):
                if "." not in path:
                    raise ValidationFailed(details=[{"field": e.field, "message": e.message} for e in reported.values()])
                path = path.rsplit(".", 1)[0]
    raise ValidationFailed(details=[{"field": e.field, "message": e.message} for e in reported.values()])


def autosave(
    session: Session, *, defs: DefinitionSet, case: Case, raw: Any, expected_version: int, user: User,
    today: dt.date, save_token: str | None = None,
) -> Saved:
    """Store the valid part of the screen's answers if the tab saw the latest version (else Conflict)."""
    if not isinstance(raw, dict):
        raise ValidationFailed(details=[{"field": "(root)", "message": "回答はJSONオブジェクトで送ってください"}])
    raw = masking.merge_masked(raw, case.answers)
    # What the screen does not edit (the survey baseline, $comments) is carried over as it was.
    for key, value in case.answers.items():
        if (key in PASSTHROUGH_KEYS or key == ROLES_KEY or key.startswith("$")) and key not in raw:
            raw[key] = value
    answers, errors = storable(defs, raw, today=today)
    # What could not be stored is remembered (field and message, never the value): it blocks signing
    # until corrected, so an invalid My Number cannot quietly vanish from the forms.
    answers.pop(INVALID_KEY, None)
    if errors:
        answers[INVALID_KEY] = [{"field": e.field, "message": e.message} for e in errors]
    if answers == case.answers:
        if expected_version != case.version:
            # Nothing to store, but the tab is behind: it must load the newer version first.
            raise Conflict(current_version=case.version, last_save_token=cases.last_save_token(session, case))
        return Saved(case, errors, saved=False)
    try:
        updated = cases.update_answers(session, defs=defs, case_id=case.id, answers=answers,
                                       expected_version=expected_version, user=user, today=today, draft=True,
                                       save_token=save_token)
    except Conflict as exc:
        # The 409 names the save that made the current version, so a tablet recognises its own.
        if exc.current_version is not None:
            exc.last_save_token = cases.last_save_token(session, case)
        raise
    return Saved(updated, errors, saved=True)


def postal_lookup(code: str) -> dict[str, str] | None:
    """Prefecture / city / town for a postal code typed on the screen (None if unknown)."""
    try:
        normalised = normalise_postal_code(code)
    except Exception:
        return None
    found = lookup_postal_code(normalised)
    return {"postal_code": normalised, **found} if found else None


# --- review --------------------------------------------------------------------------------------------


@dataclass
class ReviewForm:
    """One application as the resident checks it before signing: label / value pairs."""

    title: str
    department: str
    lines: list[tuple[str, str]]
    instance_id: str = ""


def review(defs: DefinitionSet, case: Case) -> list[ReviewForm]:
    """Everything the forms will print for the resident to check, application by application."""
    out: list[ReviewForm] = []
    instances: list[Instance] = list_applications(defs, case)
    for inst in instances:
        form = resolve_form(defs, inst, case_number=case.case_number)
        lines: list[tuple[str, str]] = []
        for cell in form.cells():
            if not cell.filled or cell.spec.style == "signature":
                continue
            text = cell.text
            if cell.selected:
                labels = {o.value: o.label for o in (cell.spec.options or [])}
                text = "・".join(labels.get(v, v) for v in cell.selected)
            if cell.spec.kind == "my_number" or "個人番号" in (cell.spec.label or ""):
                text = masking.mask_my_number(text.replace(" ", ""))
            lines.append((cell.spec.label or "", text))
        out.append(ReviewForm(form.title, form.department_name, lines, inst.instance_id))
    return out


@dataclass
class SummaryFact:
    """One fact of the household as the resident checks it: label, shown value, and the field to fix it."""

    label: str
    value: str
    anchor: str


@dataclass
class SummaryGroup:
    """The facts of one screen section (or one household member)."""

    title: str
    facts: list[SummaryFact]


def _shown(view: FieldView) -> str:
    value = view.value
    if view.kind == "address" and isinstance(value, dict):
        main = "".join(str(value.get(k) or "") for k in ("prefecture", "city", "town", "block"))
        building = f"　{value['building']}" if value.get("building") else ""
        return f"〒{value.get('postal_code', '')}　{main}{building}"
    if view.kind in ("choice", "multi_choice"):
        labels = {c.value: c.label for c in view.choices}
        items = value if isinstance(value, list) else [value]
        return "・".join(labels.get(str(v), str(v)) for v in items)
    if view.kind == "bool":
        return "はい" if value is True else "いいえ"
    if view.kind in ("date",) and isinstance(value, str):
        from app.forms.wareki import format_wareki  # local: only the summary shows 和暦 here
        day = dt.date.fromisoformat(value)
        return format_wareki(day)
    return view.text()


def household_summary(defs: DefinitionSet, case: Case) -> list[SummaryGroup]:
    """The whole household once: every answered question, each with a link back to its field."""
    groups: list[SummaryGroup] = []
    for section in build_screen(defs, case.answers):
        if section.definition.repeat is None:
            facts = [SummaryFact(f.definition.label, _shown(f), f.dom_id) for f in section.fields
                     if f.value not in (None, "", []) and f.key not in ("life_events", "visit_date")]
            if facts:
                groups.append(SummaryGroup(section.definition.title, facts))
            continue
        for item in section.items:
            facts = [SummaryFact(f.definition.label, _shown(f), f.dom_id) for f in item.fields
                     if f.value not in (None, "", []) and f.key != "id"]
            groups.append(SummaryGroup(item.title, facts))
    return groups


def check_complete(defs: DefinitionSet, case: Case, *, today: dt.date) -> list[dict[str, str]]:
    """What still has to be answered or settled before the resident can sign (empty when ready)."""
    result = validate_answers(defs, case.answers, today=today, draft=False)
    out = [{"field": e.field, "label": _label(defs, e.field), "message": e.message} for e in result.errors]
    for item in case.answers.get(INVALID_KEY) or []:
        if isinstance(item, dict) and isinstance(item.get("field"), str):
            out.append({"field": item["field"], "label": _label(defs, item["field"]),
                        "message": str(item.get("message") or "正しくありません")})
    for inst in list_applications(defs, case):
        for problem in inst.roles.problems:
            out.append({"field": f"roles.{inst.instance_id}", "label": inst.title, "message": problem})
    for item in out:
        # The link back to the field on the interview screen (the input's id, as FieldView.dom_id builds it).
        item["anchor"] = "f-" + re.sub(r"[^a-z0-9_]+", "-", item["field"].lower()).strip("-")
    return out


@dataclass
class RoleRow:
    """One role on one form as the review shows it: who, who else may take it, and whether to confirm."""

    instance_id: str
    title: str
    role_id: str
    label: str
    person_id: str | None
    person_name: str
    choices: list[tuple[str, str]]
    to_confirm: bool
    problem: str | None
    signs: bool


def role_rows(defs: DefinitionSet, case: Case) -> list[RoleRow]:
    """Every role of every form of the visit, for the clerk to confirm or change."""
    rows = []
    for inst in list_applications(defs, case):
        for a in inst.roles.assignments:
            rows.append(RoleRow(inst.instance_id, inst.title, a.role_id, a.label, a.person_id, a.person_name,
                                [(c.id, c.name) for c in a.choices], a.to_confirm, a.problem, a.signs))
    return rows


def redirect_notes(defs: DefinitionSet, case: Case) -> list[dict[str, str]]:
    """Applications the resident makes elsewhere, with the note to give them (e.g. 公務員の児童手当)."""
    return [{"title": i.title, "note": i.redirect or ""} for i in redirected(defs, case.answers,
                                                                            case_number=case.case_number)]


def choose_role(
    session: Session, *, defs: DefinitionSet, case: Case, instance_id: str, role_id: str, person: str, user: User,
    today: dt.date,
) -> Case:
    """Record the clerk's choice for one role of one form (a member id, or "agent")."""
    known = {(r.instance_id, r.role_id): r for r in role_rows(defs, case)}
    row = known.get((instance_id, role_id))
    if row is None:
        raise ValidationFailed(details=[{"field": "role", "message": "この申請書にその役割はありません"}])
    if person not in {c for c, _ in row.choices}:
        raise ValidationFailed(details=[{"field": f"roles.{instance_id}.{role_id}",
                                         "message": f"この方は{row.label}になれません"}])
    answers = copy.deepcopy(case.answers)
    answers.setdefault(ROLES_KEY, {}).setdefault(instance_id, {})[role_id] = person
    return cases.update_answers(session, defs=defs, case_id=case.id, answers=answers, expected_version=case.version,
                                user=user, today=today, draft=True)
