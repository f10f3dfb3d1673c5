"""A department's day on one screen: its routing-slip steps sorted into what a clerk can do next.

The screen (app/routers/department.py) uses the same transitions as the department API
(app/services/routing.py) and the queue's call (app/services/queue.py); this module only reads and
groups. Columns: ready (answers confirmed at the counter and every hard gate done: see
app/services/readiness.py), later (waiting for another department or for the counter's confirmation),
in progress, waiting for the resident, done today. Nothing here reads the answers: the screen shows
ticket and case numbers, application titles and the counter clerk's memo, as the API listing does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, load_only

from app.forms.loader import DefinitionSet
from app.i18n import N_
from app.models import Case, QueueTicket, RoutingStep, User
from app.services import queue, readiness, routing

COLUMNS = (
    ("ready", "受付できる手続き"),
    ("in_progress", "処理中"),
    ("needs_resident", "本人の来庁待ち"),
    ("later", "ほかの課の完了・窓口の確認待ち"),
    ("done", "本日完了"),
)
# What a clerk picks when the resident must come (shown on the phone; translated there by msgid).
RESIDENT_REASONS = (
    N_("本人確認書類を確認させてください"),
    N_("申請書にご本人の署名が必要です"),
    N_("追加の書類が必要です"),
    N_("内容を確認させてください"),
    N_("手数料のお支払いが必要です"),
)
OPEN = ("pending", "in_progress", "needs_resident")
ACTIONS = ("claim", "done", "needs-resident", "resume", "call", "arrived")


def clean_reason(choice: str, detail: str) -> str:
    """The reason shown to the resident: the chosen phrase, then the clerk's words (either may be empty)."""
    parts = [p.strip() for p in (choice, detail) if p and p.strip()]
    return "。".join(p.rstrip("。") for p in parts)


def _day_bounds(day: dt.date, tz: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(0), tzinfo=tz)
    return start, start + dt.timedelta(days=1)


def desk_view(session: Session, *, defs: DefinitionSet, department_id: str, day: dt.date, tz: dt.tzinfo) -> dict[str, Any]:
    """The department's open steps and those finished today, by column, with each visit's ticket state."""
    start, end = _day_bounds(day, tz)
    rows = list(session.scalars(
        select(RoutingStep).join(Case, Case.id == RoutingStep.case_id)
        .where(RoutingStep.department_id == department_id,
               or_(and_(RoutingStep.status.in_(OPEN), Case.status.not_in(("closed", "cancelled"))),
                   and_(RoutingStep.status == "done", RoutingStep.done_at >= start, RoutingStep.done_at < end)))
        .order_by(RoutingStep.created_at, RoutingStep.id)
    ))
    case_ids = {r.case_id for r in rows}
    siblings: dict[str, list[RoutingStep]] = defaultdict(list)
    tickets: dict[str, QueueTicket] = {}
    cases: dict[str, Case] = {}
    if case_ids:
        for s in session.scalars(select(RoutingStep).where(RoutingStep.case_id.in_(case_ids))):
            siblings[s.case_id].append(s)
        for t in session.scalars(select(QueueTicket).where(QueueTicket.case_id.in_(case_ids))):
            tickets[t.case_id] = t
        for c in session.scalars(select(Case).options(load_only(Case.id, Case.office, Case.ticket_day,
                                                                Case.ticket_number, Case.status))
                                 .where(Case.id.in_(case_ids))):
            cases[c.id] = c
    confirmed = readiness.confirmations(session, case_ids)
    columns: dict[str, list[dict[str, Any]]] = {key: [] for key, _ in COLUMNS}
    for step in rows:
        view = routing.step_view(defs, step, siblings[step.case_id], confirmation=confirmed[step.case_id])
        case = cases[step.case_id]
        ticket = tickets.get(step.case_id)
        view.update(case_number=case.case_number, ticket_label=f"{case.ticket_number:03d}",
                    memo=[line for line in step.note.splitlines() if line.strip()],
                    calling=ticket is not None and ticket.queue == department_id and ticket.status == "called",
                    serving=ticket is not None and ticket.queue == department_id and ticket.status == "serving",
                    call_counter=ticket.counter if ticket is not None and ticket.queue == department_id else "",
                    call_count=ticket.call_count if ticket is not None else 0)
        if step.status == "pending":
            columns["ready" if view["ready"] else "later"].append(view)
        else:
            columns[step.status].append(view)
    dep = defs.departments[department_id]
    out = {
        "department": department_id, "department_name": dep.name, "location": dep.location,
        "counters": list(dep.counters),
        "columns": [{"key": key, "title": title, "steps": columns[key]} for key, title in COLUMNS],
        "counts": {key: len(columns[key]) for key, _ in COLUMNS},
    }
    digest = json.dumps([[(s["id"], s["version"], s["ready"], s["calling"], s["serving"], s["call_count"])
                          for s in columns[k]] for k, _ in COLUMNS], separators=(",", ":"))
    out["version"] = hashlib.sha256(digest.encode()).hexdigest()[:16]
    return out


def finish_department_call(session: Session, *, case_id: str, department_id: str, actor: User) -> None:
    """The step is done: a ticket called or served at this department's counter is done too."""
    ticket = session.get(QueueTicket, case_id)
    if ticket is None or ticket.queue != department_id:
        return
    if ticket.status == "called":
        queue.start_service(session, case_id=case_id, actor=actor)
    if ticket.status == "serving":
        queue.finish_service(session, case_id=case_id, actor=actor)


def act(session: Session, *, defs: DefinitionSet, department_id: str, step_id: int, action: str, actor: User,
        version: int | None = None, reason: str = "", counter: str = "") -> RoutingStep:
    """One button of the department screen, through the same transitions as the department API."""
    department = department_id
    user = actor
    dep = defs.departments[department]
    step = routing.get_step_for_department_or_raise(session, department_id=department, step_id=step_id)
    if action == "claim":
        routing.claim_step(session, defs=defs, department_id=department, step_id=step_id, actor=user,
                           expected_version=version)
    elif action == "done":
        routing.complete_step(session, department_id=department, step_id=step_id, actor=user,
                              expected_version=version)
        finish_department_call(session, case_id=step.case_id, department_id=department, actor=user)
    elif action == "needs-resident":
        routing.needs_resident(session, defs=defs, department_id=department, step_id=step_id, actor=user,
                               reason=reason, counter=counter or None, expected_version=version)
    elif action == "resume":
        routing.resume_step(session, department_id=department, step_id=step_id, actor=user,
                            expected_version=version)
        finish_department_call(session, case_id=step.case_id, department_id=department, actor=user)
    elif action == "call":
        chosen = counter or step.counter or (dep.counters[0] if dep.counters else "")
        if dep.counters and chosen not in dep.counters:
            chosen = dep.counters[0]
        queue.call_to_counter(session, case_id=step.case_id, queue=department, counter=chosen, actor=user,
                              queues=defs.departments.keys())
    elif action == "arrived":
        queue.start_service(session, case_id=step.case_id, actor=user)
    return step
