"""Procedure determination: which applications a household needs, one per member where asked, and why."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.forms.context import build_context
from app.forms.expr import MISSING, Observation, as_date, compile_expr, fn_add_months
from app.forms.holidays import next_open_day
from app.forms.loader import DefinitionSet
from app.forms.roles import Roles, assign_roles
from app.forms.schema import Application, FormField
from app.forms.transforms import CHOICE_LABELS

_INDEX = re.compile(r"\[\d+\]")


@dataclass(frozen=True)
class Reason:
    """A condition that matched: the clerk-readable reason, the expression, and the values it saw."""

    reason: str
    condition: str
    values: dict[str, Any]


@dataclass(frozen=True)
class MissingAnswer:
    """An answer a form needs that the interview has not collected yet."""

    path: str
    label: str


@dataclass(frozen=True)
class SigningSlot:
    """One signature a form needs: its key (the form's id for its first signer), the role and who signs."""

    key: str
    instance_id: str
    role_id: str
    person_id: str | None


@dataclass(frozen=True)
class Instance:
    """One application to prepare (one form), possibly for one member."""

    instance_id: str
    application_id: str
    application: Application
    title: str
    member_id: str | None
    scope: dict[str, Any]
    reasons: tuple[Reason, ...]
    documents: tuple[str, ...]
    deadline: dt.date | None
    missing: tuple[MissingAnswer, ...] = field(default_factory=tuple)
    legal_deadline: dt.date | None = None
    copies: int = 1
    roles: Roles = field(default_factory=Roles)
    redirect: str | None = None  # no city form: the note says where the resident applies instead

    @property
    def external(self) -> bool:
        """A step outside the city hall: listed with place and deadline, no form is printed."""
        return self.application.external is not None

    @property
    def fee_total(self) -> int:
        """The fee for this instance: the fee per copy times the copies asked for."""
        return self.application.fee * self.copies

    def deadline_passed(self, visit_day: dt.date | None) -> bool:
        """Whether the visit comes after this form's deadline."""
        return self.deadline is not None and visit_day is not None and visit_day > self.deadline

    @property
    def signer_id(self) -> str | None:
        """Who signs this form first: a member id, "agent", "heir", or None (no signer declared or nobody fits)."""
        signer = self.roles.signer
        return signer.person_id if signer is not None else None

    @property
    def signing_slots(self) -> tuple[SigningSlot, ...]:
        """Every signature this form needs, one per signing role (婚姻届: two)."""
        return tuple(SigningSlot(self.instance_id if index == 0 else f"{self.instance_id}/{a.role_id}",
                                 self.instance_id, a.role_id, a.person_id)
                     for index, a in enumerate(self.roles.signers))


def _scalar_values(observations: list[Observation]) -> dict[str, Any]:
    # Whole records and long lists are noise for a clerk; keep the values a condition compared.
    out: dict[str, Any] = {}
    for obs in observations:
        value = None if obs.value is MISSING else obs.value
        if isinstance(value, dict):
            continue
        if isinstance(value, (list, tuple)) and (len(value) > 6 or any(isinstance(v, (dict, list)) for v in value)):
            continue
        if isinstance(value, tuple):
            value = list(value)
        if isinstance(value, dt.date):
            value = value.isoformat()
        out[obs.path] = value
    return out


def _explain(text: str, ctx: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    value, observations = compile_expr(text).explain(ctx)
    return value, _scalar_values(observations)



def _label_of(defs: DefinitionSet, concrete: str) -> str | None:
    generic = _INDEX.sub("[]", concrete)
    info = defs.fields.get(generic)
    if info is None:
        # An address part such as address.block belongs to the address field.
        parent = generic.rpartition(".")[0]
        info = defs.fields.get(parent)
    return info.field.label if info is not None else None


def _concrete(path: str, scope: Mapping[str, Any]) -> str:
    """`claimant.pension` → `household.members[1].pension`: a name bound to a member becomes its answers path."""
    name, dot, rest = path.partition(".")
    bound = scope.get(name)
    if isinstance(bound, Mapping) and bound.get("id") is not None:
        for index, member in enumerate(scope.get("members") or []):
            if isinstance(member, Mapping) and member.get("id") == bound.get("id"):
                return f"household.members[{index}]{dot}{rest}"
    return path


def required_cells(app: Application) -> list[tuple[FormField, str | None]]:
    """Required cells with the table `each` expression they sit in (None outside tables)."""
    out: list[tuple[FormField, str | None]] = [(f, None) for f in app.fields if f.required]
    if app.layout is not None:
        for section in app.layout.sections:
            for row in section.rows:
                out.extend((c, None) for c in row.cells if c.required)
            if section.table is not None:
                out.extend((c, section.table.each) for c in section.table.columns if c.required)
    return out


def _missing(defs: DefinitionSet, app: Application, ctx: Mapping[str, Any]) -> tuple[MissingAnswer, ...]:
    found: dict[str, MissingAnswer] = {}
    for cell, each in required_cells(app):
        if cell.source is None:
            continue
        scopes: list[Mapping[str, Any]] = [ctx]
        if each is not None and app.layout is not None:
            table = next(s.table for s in app.layout.sections if s.table is not None and s.table.each == each)
            items = compile_expr(each).evaluate(ctx)
            scopes = [{**ctx, table.as_: item} for item in (items if isinstance(items, list) else [])]
        for scope in scopes:
            value, observations = compile_expr(cell.source).explain(scope)
            empty = value is None or value == "" or value is MISSING
            record_empty = isinstance(value, dict) and not any(value.get(k) for k in value)
            if not (empty or record_empty):
                continue
            for obs in observations:
                if obs.value is None or obs.value is MISSING or obs.value == "":
                    path = _concrete(obs.path, scope)
                    label = _label_of(defs, path)
                    if label is not None:
                        found.setdefault(path, MissingAnswer(path, label))
    return tuple(found.values())


def _applies(app: Application, ctx: Mapping[str, Any]) -> list[Reason] | None:
    reasons = []
    for cond in app.applies_when:
        value, values = _explain(cond.if_, ctx)
        if not value:
            return None
        reasons.append(Reason(cond.reason, cond.if_, values))
    return reasons


def _valid_on(app: Application, day: dt.date | None) -> bool:
    if day is None:
        return True
    if app.valid_from is not None and day < app.valid_from:
        return False
    return not (app.valid_to is not None and day > app.valid_to)


def _documents(app: Application, ctx: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(d.item for d in app.documents_to_bring
                 if d.when is None or compile_expr(d.when).evaluate(ctx))


def legal_deadline(app: Application, ctx: Mapping[str, Any]) -> dt.date | None:
    """The last day the law gives, counted from the date in the answers (not moved off closed days)."""
    if app.deadline is None:
        return None
    start = as_date(compile_expr(app.deadline.from_).evaluate(ctx))
    if start is None:
        return None
    if app.deadline.within_months is not None:
        return as_date(fn_add_months(start, app.deadline.within_months))
    return start + dt.timedelta(days=app.deadline.within_days or 0)


def _deadlines(defs: DefinitionSet, app: Application, ctx: Mapping[str, Any]) -> dict[str, Any]:
    legal = legal_deadline(app, ctx)
    shifted = legal
    if legal is not None and app.deadline is not None and app.deadline.open_day:
        shifted = next_open_day(legal, defs.calendar)
    return {"deadline": shifted, "legal_deadline": legal}


def _copies(app: Application, ctx: Mapping[str, Any]) -> int:
    if app.copies is None:
        return 1
    value = compile_expr(app.copies.source).evaluate(ctx)
    try:
        number = int(value) if value not in (None, MISSING, "") else 0
    except (TypeError, ValueError):
        number = 0
    return max(0, min(number, app.copies.max))


def _title(app: Application, ctx: Mapping[str, Any], expr: str | None) -> str:
    if expr:
        value = compile_expr(expr).evaluate(ctx)
        if value not in (None, MISSING, "") and isinstance(value, str):
            return value
    return app.title


def _instance(
    defs: DefinitionSet, app_id: str, app: Application, answers: Mapping[str, Any], scope: dict[str, Any],
    *, instance_id: str, title: str, member_id: str | None, reasons: list[Reason], copies: int,
) -> Instance:
    roles = assign_roles(app, scope, answers, instance_id)
    scope = {**scope, **roles.bound}
    redirect = next((r.note for r in app.redirect if _truthy(r.if_, scope)), None)
    return Instance(
        instance_id=instance_id, application_id=app_id, application=app, title=title, member_id=member_id,
        scope=scope, reasons=tuple(reasons), documents=_documents(app, scope) + roles.documents,
        missing=_missing(defs, app, scope), roles=roles, redirect=redirect, copies=copies,
        **_deadlines(defs, app, scope),
    )


def _truthy(expr: str, scope: Mapping[str, Any]) -> bool:
    value = compile_expr(expr).evaluate(scope)
    return bool(value) and value is not MISSING


def determine_all(
    defs: DefinitionSet, answers: Mapping[str, Any], *, case_number: str = "", include_external: bool = False,
) -> list[Instance]:
    """Every application instance the answers call for, redirected ones (no city form) included.

    Steps outside the city hall (`external`) are left out unless asked for: no form, no routing step.
    A certificate request asked for zero copies does not apply.
    """
    ctx = build_context(answers, case_number=case_number)
    ctx[CHOICE_LABELS] = defs.choice_labels  # what `label:<path>` and `occupation` print
    visit_day = as_date(answers.get("visit_date"))
    out: list[Instance] = []
    for app_id in defs.application_order():
        app = defs.applications[app_id]
        if app.external is not None and not include_external:
            continue
        if not _valid_on(app, visit_day):
            continue
        reasons = _applies(app, ctx)
        if reasons is None:
            continue
        copies = _copies(app, ctx)
        if copies == 0:
            continue
        if app.for_each is None:
            out.append(_instance(defs, app_id, app, answers, ctx, instance_id=app_id,
                                 title=_title(app, ctx, app.instance_title), member_id=None, reasons=reasons,
                                 copies=copies))
            continue
        items = compile_expr(app.for_each.in_).evaluate(ctx)
        for index, item in enumerate(items if isinstance(items, list) else []):
            scope = {**ctx, app.for_each.as_: item}
            item_reasons = list(reasons)
            if app.for_each.where:
                value, values = _explain(app.for_each.where, scope)
                if not value:
                    continue
                item_reasons.append(Reason(app.for_each.reason or "", app.for_each.where, values))
            member_id = item.get("id") if isinstance(item, Mapping) else None
            key = str(member_id) if member_id else str(index + 1)
            out.append(_instance(defs, app_id, app, answers, scope, instance_id=f"{app_id}-{key}",
                                 title=_title(app, scope, app.instance_title or app.for_each.title),
                                 member_id=member_id, reasons=item_reasons, copies=_copies(app, scope)))
    return out


def determine(
    defs: DefinitionSet, answers: Mapping[str, Any], *, case_number: str = "", include_external: bool = False,
) -> list[Instance]:
    """The application forms (and, when asked, steps outside the city hall) the answers call for, in an
    order that respects `after`."""
    return [i for i in determine_all(defs, answers, case_number=case_number, include_external=include_external)
            if i.redirect is None]


def redirected(defs: DefinitionSet, answers: Mapping[str, Any], *, case_number: str = "") -> list[Instance]:
    """Applications the household makes elsewhere (e.g. 児童手当 of a 公務員 at the employer)."""
    return [i for i in determine_all(defs, answers, case_number=case_number) if i.redirect is not None]
