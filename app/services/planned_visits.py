"""Planned visits (本日の来庁予定): households announced by the 引越しワンストップ service before they come.

An import stores every household of a file or none; at arrival the clerk opens the visit from the
planned one, and every imported answer is marked 転入予約 until confirmed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.errors import Conflict, NotFound, ValidationFailed
from app.forms.loader import DefinitionSet
from app.importers import moving_in
from app.importers.mapping import Mapping
from app.models import Case, PlannedVisit, User, utcnow
from app.services import answer_sources, audit, cases

IMPORT_SOURCE = "import"


class ImportFailed(ValidationFailed):
    """Problems in the file: each with its row and column; nothing was stored."""

    message = "取り込めませんでした。次の行を直してから、ファイル全体をもう一度取り込んでください（何も保存していません）"


@dataclass(frozen=True)
class ImportReport:
    """What an import stored."""

    households: int
    members: int
    days: dict[str, int]


def import_file(session: Session, *, defs: DefinitionSet, mapping: Mapping, data: bytes, office: str,
                user: User | None, today: dt.date, dry_run: bool = False) -> ImportReport:
    """Check the whole export and store one planned visit per household; ImportFailed lists every problem."""
    result = moving_in.build(data, mapping, defs, today=today)
    errors = list(result.errors)
    refs = [h.reference for h in result.households]
    if refs:
        taken = set(session.scalars(select(PlannedVisit.reference).where(
            PlannedVisit.office == office, PlannedVisit.source == mapping.source, PlannedVisit.reference.in_(refs))))
        errors += [moving_in.RowError(h.row, mapping.reference, f"予約番号 {h.reference} はすでに取り込まれています")
                   for h in result.households if h.reference in taken]
    if errors:
        raise ImportFailed(details=[{"row": e.row, "column": e.column, "field": e.column, "message": e.message}
                                    for e in errors])
    days: dict[str, int] = {}
    members = 0
    for household in result.households:
        days[household.planned_on.isoformat()] = days.get(household.planned_on.isoformat(), 0) + 1
        members += len((household.answers.get("household") or {}).get("members") or [])
        if not dry_run:
            session.add(PlannedVisit(office=office, planned_on=household.planned_on, source=mapping.source,
                                     reference=household.reference, answers=household.answers,
                                     imported_by=user.id if user else None))
    session.flush()
    if not dry_run and user is None:  # the CLI; the upload API audits with its caller and address
        audit.record(session, action=audit.PLANNED_IMPORT, actor_name="cli",
                     target=f"{mapping.source}: {len(result.households)} households")
    return ImportReport(len(result.households), members, days)


def list_planned(session: Session, *, office: str, day: dt.date) -> list[PlannedVisit]:
    """The day's planned visits that have not been opened yet."""
    return list(session.scalars(select(PlannedVisit).where(
        PlannedVisit.office == office, PlannedVisit.planned_on == day, PlannedVisit.case_id.is_(None))
        .order_by(PlannedVisit.imported_at, PlannedVisit.reference)))


def summary(planned: PlannedVisit) -> dict[str, Any]:
    """What the today list shows: the number, the head's name, how many people (names are staff-only)."""
    members = (planned.answers.get("household") or {}).get("members") or []
    head = next((m for m in members if m.get("relationship") == "head"), members[0] if members else {})
    return {"id": planned.id, "reference": planned.reference, "members": len(members),
            "head": f"{head.get('family_name', '')} {head.get('given_name', '')}".strip(),
            "life_events": planned.answers.get("life_events") or []}


def start_planned(session: Session, *, defs: DefinitionSet, planned_id: str, user: User, office: str,
                  today: dt.date) -> Case:
    """The resident has come: open the visit (ticket, interview) from the planned one."""
    planned = session.get(PlannedVisit, planned_id) if isinstance(planned_id, str) and len(planned_id) <= 32 else None
    if planned is None or planned.office != office:
        raise NotFound("この来庁予定は見つかりません")
    if planned.case_id is not None:
        raise Conflict("この来庁予定はすでに受付済みです")
    answers = {**planned.answers, "visit_date": today.isoformat()}
    case = cases.create_case(session, defs=defs, answers=answers, user=user, office=office, today=today, draft=True)
    planned.case_id, planned.started_at = case.id, utcnow()
    planned.answers = {}  # the visit holds them now; the planned row keeps only its number and dates
    answer_sources.record(session, case_id=case.id, paths=answer_sources.answer_paths(defs, case.answers), source=IMPORT_SOURCE)
    cases.record_event(session, case, "planned_visit_started", actor=user, data={"source": planned.source})
    return case


def purge_stale(session: Session, *, before: dt.date) -> int:
    """Delete planned visits dated before `before` (retention); returns how many."""
    return session.execute(delete(PlannedVisit).where(PlannedVisit.planned_on < before)
                           .execution_options(synchronize_session=False)).rowcount
