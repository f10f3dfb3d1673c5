"""The routing slip (回付票): one step per department, in an order that respects the definitions' `after`.

Life of a step: pending → in_progress (a department claims it) → done, or needs_resident (the
department needs the resident in person, with a reason and a counter) → in_progress again when
the resident has come (resume). `done` is final for departments; `cancelled` is set by a rebuild
when none of the department's applications applies any more.

Every transition is a compare-and-set on the step's `version` (UPDATE ... WHERE version = seen), so
two clerks claiming the same step at once cannot both win: the second gets 409. Every state change
writes a CaseEvent (app/events.py); the resident page and the metrics read those.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import heapq
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, load_only

from app import events
from app.errors import Conflict, NotFound, ValidationFailed
from app.forms.concerned import members_concerned
from app.forms.determine import Instance, determine
from app.forms.fonts import load_fonts
from app.forms.loader import DefinitionSet
from app.forms.mapping import resolve_form
from app.forms.slip_pdf import SlipDocument, SlipRow, render_slip
from app.forms.wareki import format_wareki
from app.models import Case, CaseEvent, RoutingStep, User, utcnow
from app.services import answer_sources, departments, readiness, signatures
from app.services.cases import get_case_or_raise, record_event
from app.services.documents import late_notes

STEP_STATUSES = ("pending", "in_progress", "done", "needs_resident", "cancelled")
FINISHED = readiness.FINISHED
STATUS_LABELS = {
    "pending": "受付待ち",
    "in_progress": "処理中",
    "done": "完了",
    "needs_resident": "本人の来庁が必要",
    "cancelled": "取消（不要）",
}
# Why a transition is refused, by the step's current status (shown to department clerks).
_REFUSED = {
    "pending": "この手続きはまだ受け付けられていません。先に受付（claim）してください",
    "in_progress": "この手続きは既に受け付けられています（処理中）",
    "done": "この手続きは完了しています。完了した手続きは変更できません",
    "needs_resident": "この手続きは本人の来庁待ちです。来庁したら再開（resume）してください",
    "cancelled": "この手続きは取り消されています（申請が不要になりました）",
}
MAX_REASON = 200
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class VisitNotFinished(Conflict):
    """The visit cannot be closed yet: the body lists everything still missing."""

    code = "visit_not_finished"
    message = "まだ終わっていない手続きがあります。一覧を確認してから終了してください"

    def __init__(self, missed: list[dict[str, Any]]):
        super().__init__()
        self.missed = missed
        self.details = [{"field": f"{m['kind']}.{m.get('instance') or m.get('department') or 'case'}",
                         "message": m["message"]} for m in missed]

    def body(self) -> dict[str, Any]:
        """The JSON body with the structured list of what was missed."""
        return {**super().body(), "missed": self.missed}


# --- Planning (pure) -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedStep:
    """A department's place on the slip, worked out from the applications that apply."""

    department_id: str
    instances: tuple[Instance, ...]
    depends_on: tuple[str, ...]
    position: int
    stage: int
    notes: tuple[str, ...]


def application_label(defs: DefinitionSet, application_id: str) -> str:
    """The application's short title for slips (never an instance title: those may name a person)."""
    app = defs.applications.get(application_id)
    if app is None:
        return application_id
    return app.short_title or app.title


def _reaches(deps: dict[str, set[str]], start: str, target: str) -> bool:
    """Whether `start` depends on `target`, directly or through other departments."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        node = todo.pop()
        if node == target:
            return True
        if node in seen:
            continue
        seen.add(node)
        todo.extend(deps.get(node, ()))
    return False


def _lifted_edges(defs: DefinitionSet, applying: dict[str, str], key: str,
                  dept_rank: dict[str, int], app_rank: dict[str, int]) -> list[tuple[str, str, str, str]]:
    """(department, other department, later application, earlier application) for one kind of constraint."""
    candidates = sorted(
        (app_rank.get(later, 0), app_rank.get(earlier, 0), dept_rank.get(dept, 0), dept_rank.get(applying[earlier], 0),
         dept, applying[earlier], later, earlier)
        for later, dept in applying.items()
        for earlier in getattr(defs.applications[later], key)
        if earlier in applying and applying[earlier] != dept
    )
    return [(dept, other, later, earlier) for *_, dept, other, later, earlier in candidates]


def plan_slip(defs: DefinitionSet, instances: Sequence[Instance]) -> list[PlannedStep]:
    """One planned step per department with applications, with hard gates, positions and stages.

    Two kinds of constraint name applications and are lifted to departments (applications that do
    not apply impose nothing):

    - `requires` is a hard gate: department X depends on Y when an application of X that applies
      requires an application of Y that applies (X != Y). These go into `depends_on`: X's step is not
      ready (cannot be claimed) until Y's step is done.
    - `after` is an ordering hint: it places X's step after Y's on the slip (position) but does not
      gate it. X may start as soon as the answers are confirmed.

    Stage is the length of the longest chain of hard gates before a step: steps of one stage can be
    worked on at the same time.

    Lifting can create a department-level cycle although the applications are acyclic (the loader
    refuses application cycles): 市民課 A → こども福祉課 B → 市民課 C. One step per department cannot
    honour both, so the edges are added in the order of the applications' own topological order
    (the constraint of the earlier application wins) and a gate that would close a cycle is left
    out and written into the step's note for the clerks; an ordering hint that would close one is
    simply dropped. The plan is therefore always acyclic.
    """
    dept_rank = {d: i for i, d in enumerate(defs.departments)}
    app_rank = {a: i for i, a in enumerate(defs.application_order())}
    by_dept: dict[str, list[Instance]] = defaultdict(list)
    for inst in instances:
        by_dept[inst.application.department].append(inst)
    applying = {inst.application_id: inst.application.department for inst in instances}

    gates: dict[str, set[str]] = {d: set() for d in by_dept}
    notes: dict[str, list[str]] = defaultdict(list)
    for dept, other, later, earlier in _lifted_edges(defs, applying, "requires", dept_rank, app_rank):
        if other in gates[dept]:
            continue
        if _reaches(gates, other, dept):
            names = defs.departments
            note = (f"「{application_label(defs, later)}」は「{application_label(defs, earlier)}」（{names[other].name}）"
                    f"の完了が必要な定めですが、{names[dept].name}と{names[other].name}の順序が循環するため、"
                    "回付票ではこの順序を保証できません。担当課どうしで確認してください")
            if note not in notes[dept]:
                notes[dept].append(note)
            continue
        gates[dept].add(other)
    order_deps: dict[str, set[str]] = {d: set(v) for d, v in gates.items()}
    for dept, other, _later, _earlier in _lifted_edges(defs, applying, "after", dept_rank, app_rank):
        if other not in order_deps[dept] and not _reaches(order_deps, other, dept):
            order_deps[dept].add(other)

    def rank(d: str) -> int:
        return dept_rank.get(d, len(dept_rank))

    # Kahn's algorithm over gates and hints, always taking the ready department that comes first in departments.yaml.
    waiting = {d: set(v) for d, v in order_deps.items()}
    dependents: dict[str, set[str]] = defaultdict(set)
    for d, v in order_deps.items():
        for p in v:
            dependents[p].add(d)
    heap = [(rank(d), d) for d, v in waiting.items() if not v]
    heapq.heapify(heap)
    order: list[str] = []
    stage: dict[str, int] = {}
    while heap:
        _, d = heapq.heappop(heap)
        order.append(d)
        # Stage = length of the longest chain of hard gates (0: nothing has to be done before it).
        stage[d] = 1 + max((stage[p] for p in gates[d]), default=-1)
        for nxt in sorted(dependents[d], key=rank):
            waiting[nxt].discard(d)
            if not waiting[nxt]:
                heapq.heappush(heap, (rank(nxt), nxt))
    assert len(order) == len(order_deps), "department graph must be acyclic"
    return [
        PlannedStep(department_id=d, instances=tuple(by_dept[d]), depends_on=tuple(sorted(gates[d], key=rank)),
                    position=pos, stage=stage[d], notes=tuple(notes[d]))
        for pos, d in enumerate(order, start=1)
    ]


# --- Building the slip --------------------------------------------------------------------------------


def list_steps(session: Session, case_id: str) -> list[RoutingStep]:
    """The steps of a case's slip in order (cancelled ones last)."""
    rows = session.scalars(select(RoutingStep).where(RoutingStep.case_id == case_id))
    return sorted(rows, key=lambda s: (s.status == "cancelled", s.position, s.id))


def _lock_case(session: Session, case_id: str) -> Case:
    # A row lock on the case serialises slip builds and closing on PostgreSQL (SQLite has one writer).
    case = session.scalar(select(Case).where(Case.id == case_id).with_for_update()
                          .execution_options(populate_existing=True))
    if case is None:
        raise NotFound("この案件は見つかりません")
    return case


def build_slip(session: Session, *, defs: DefinitionSet, case: Case, actor: User | None) -> list[RoutingStep]:
    """Build or refresh the case's routing slip from its answers; idempotent.

    Existing steps keep their status; new departments get a pending step; a step none of whose
    applications applies any more is cancelled (unless it is done: done work stays done). A done or
    cancelled step that gains applications it has not processed goes back to pending, because the
    department has new work and the exit check must not pass without it. A refresh that changes
    nothing writes nothing (so pages may call this on every view). A closed visit's slip is returned
    as it is. With no application at all the slip stays empty.
    """
    case = _lock_case(session, case.id)
    if case.status in ("closed", "cancelled"):
        return list_steps(session, case.id)
    plan = plan_slip(defs, determine(defs, case.answers, case_number=case.case_number))
    existing = {s.department_id: s for s in session.scalars(
        select(RoutingStep).where(RoutingStep.case_id == case.id).with_for_update()
        .execution_options(populate_existing=True))}
    now = utcnow()
    added = reopened = cancelled = changed_steps = 0
    for planned in plan:
        ids = [i.instance_id for i in planned.instances]
        values = {"applications": ids, "depends_on": list(planned.depends_on), "position": planned.position,
                  "stage": planned.stage, "note": "\n".join(planned.notes)}
        step = existing.get(planned.department_id)
        if step is None:
            session.add(RoutingStep(case_id=case.id, department_id=planned.department_id, status="pending",
                                    created_at=now, updated_at=now, **values))
            added += 1
            continue
        changed = any(getattr(step, k) != v for k, v in values.items())
        new_work = bool(set(ids) - set(step.applications))
        reopen = step.status == "cancelled" or (step.status == "done" and new_work)
        if reopen:
            step.status = "pending"
            step.claimed_by = None
            step.started_at = step.done_at = None
            step.resident_reason = step.counter = ""
            reopened += 1
        if changed or reopen:
            for k, v in values.items():
                setattr(step, k, v)
            step.version += 1
            step.updated_at = now
            changed_steps += 1
    planned_depts = {p.department_id for p in plan}
    for dept, step in existing.items():
        if dept in planned_depts or step.status in FINISHED:
            continue
        step.status = "cancelled"
        step.version += 1
        step.updated_at = now
        cancelled += 1
        record_event(session, case, events.STEP_CANCELLED, actor=actor, at=now,
                     data={"department": dept, "step_id": step.id})
    if plan and case.status in ("interviewing", "signed"):
        case.status = "routing"
    session.flush()
    if added or changed_steps or cancelled:
        record_event(session, case, events.SLIP_CREATED, actor=actor, at=now,
                     data={"steps": len(plan), "added": added, "reopened": reopened, "cancelled": cancelled,
                           "rebuilt": bool(existing)})
    return list_steps(session, case.id)


# --- Views ----------------------------------------------------------------------------------------------


def _instance_application(instance_id: str) -> tuple[str, str | None]:
    # Instance ids are "<application id>" or "<application id>-<member id>"; application ids have no "-".
    app_id, _, member = instance_id.partition("-")
    return app_id, member or None


def step_view(defs: DefinitionSet, step: RoutingStep, siblings: Sequence[RoutingStep],
              usernames: dict[int, str] | None = None,
              confirmation: readiness.Confirmation = readiness.CONFIRMED) -> dict[str, Any]:
    """A step as the APIs show it: department, place, applications with titles, status, readiness and times."""
    dep = defs.departments.get(step.department_id)
    gates_open = readiness.waiting_for(step, siblings)
    blocks = confirmation.blocks(step)
    names = {d: (defs.departments[d].name if d in defs.departments else d) for d in step.depends_on}
    active = [s for s in siblings if s.status != "cancelled"]
    apps = []
    for iid in step.applications:
        app_id, member = _instance_application(iid)
        app = defs.applications.get(app_id)
        apps.append({"id": iid, "application_id": app_id, "title": app.title if app else app_id,
                     "short_title": application_label(defs, app_id), "member_id": member})
    return {
        "id": step.id,
        "case_id": step.case_id,
        "department": step.department_id,
        "department_name": dep.name if dep else step.department_id,
        "location": dep.location if dep else "",
        "counters": list(dep.counters) if dep else [],
        "applications": apps,
        "status": step.status,
        "status_label": STATUS_LABELS.get(step.status, step.status),
        "position": step.position,
        "stage": step.stage,
        "parallel": step.status != "cancelled" and sum(1 for s in active if s.stage == step.stage) > 1,
        "depends_on": list(step.depends_on),
        "depends_on_names": [names[d] for d in step.depends_on],
        "ready": not gates_open and not blocks,
        "answers_confirmed": not blocks,
        "waiting_for": gates_open,
        "not_ready_reasons": [f"{names[d]}の完了待ち" for d in gates_open] + blocks,
        "can_start_now": step.status == "pending" and not gates_open and not blocks,
        "resident_reason": step.resident_reason,
        "counter": step.counter,
        "note": step.note,
        "version": step.version,
        "claimed_by": (usernames or {}).get(step.claimed_by) if step.claimed_by else None,
        "created_at": step.created_at,
        "updated_at": step.updated_at,
        "started_at": step.started_at,
        "done_at": step.done_at,
    }


def _usernames(session: Session, steps: Iterable[RoutingStep]) -> dict[int, str]:
    ids = {s.claimed_by for s in steps if s.claimed_by}
    if not ids:
        return {}
    return {row.id: row.username for row in session.execute(select(User.id, User.username).where(User.id.in_(ids)))}


def slip_view(session: Session, *, defs: DefinitionSet, case: Case) -> dict[str, Any]:
    """The routing slip as JSON: the case's numbers and every step."""
    steps = list_steps(session, case.id)
    users = _usernames(session, steps)
    confirmation = readiness.confirmations(session, [case.id])[case.id]
    return {
        "case_id": case.id,
        "case_number": case.case_number,
        "ticket_number": case.ticket_number,
        "ticket_label": f"{case.ticket_number:03d}",
        "case_status": case.status,
        "status_token": case.status_token,
        "created": bool(steps),
        "steps": [step_view(defs, s, steps, users, confirmation) for s in steps],
        # Passed deadlines and what follows (the same notes as the counter's side panel and review).
        "late": late_notes(determine(defs, case.answers, case_number=case.case_number, include_external=True)),
    }


def get_slip(session: Session, *, defs: DefinitionSet, case_id: str) -> dict[str, Any]:
    """The routing slip of a case (an empty list of steps when none has been built)."""
    return slip_view(session, defs=defs, case=get_case_or_raise(session, case_id))


def refresh_slip(session: Session, *, defs: DefinitionSet, case_id: str, actor: User | None) -> dict[str, Any]:
    """Build or refresh the slip and return it."""
    case = get_case_or_raise(session, case_id)
    if case.status in ("closed", "cancelled"):
        raise Conflict("この来庁は終了しているため、回付票を作り直せません")
    if not build_slip(session, defs=defs, case=case, actor=actor):
        raise ValidationFailed("この聞き取り内容では回付する手続きがありません",
                               details=[{"field": "life_events", "message": "手続きのきっかけ（転入・出生など）を確認してください"}])
    return slip_view(session, defs=defs, case=case)


# --- Exit check and closing -----------------------------------------------------------------------------


def _printed(session: Session, case: Case) -> tuple[set[str], bool]:
    """Instances printed since the answers last changed, and whether the bundle was."""
    rows = list(session.scalars(select(CaseEvent).where(
        CaseEvent.case_id == case.id,
        CaseEvent.kind.in_(("answers_saved", events.FORM_PRINTED, events.BUNDLE_PRINTED))).order_by(CaseEvent.id)))
    instances: set[str] = set()
    bundle = False
    for ev in rows:
        if ev.kind == "answers_saved":
            # Forms printed before the answers changed show old values: they do not count.
            instances, bundle = set(), False
        elif ev.kind == events.BUNDLE_PRINTED:
            bundle = True
        else:
            instances.add(str((ev.data or {}).get("instance", "")))
    return instances, bundle


def _missed(kind: str, message: str, **fields: Any) -> dict[str, Any]:
    # Every item has every key, so the 409 body and GET exit-check show the same objects.
    base: dict[str, Any] = {"kind": kind, "message": message, "department": None, "department_name": None,
                            "step_id": None, "status": None, "instance": None, "applications": []}
    return {**base, **fields}


def exit_check(session: Session, *, defs: DefinitionSet, case: Case) -> list[dict[str, Any]]:
    """Everything that keeps the visit from being closed: open steps, no signature, forms not printed."""
    missed: list[dict[str, Any]] = []
    instances = determine(defs, case.answers, case_number=case.case_number)
    steps = list_steps(session, case.id)
    if instances and not steps:
        missed.append(_missed("no_slip", "回付票がまだ作成されていません"))
    for step in steps:
        if step.status in FINISHED:
            continue
        dep = defs.departments.get(step.department_id)
        dep_name = dep.name if dep else step.department_id
        titles = list(dict.fromkeys(application_label(defs, _instance_application(i)[0]) for i in step.applications))
        extra = f"（{step.resident_reason}　{step.counter}番窓口）" if step.status == "needs_resident" else ""
        missed.append(_missed(
            "open_step", f"{dep_name}：{'、'.join(titles)} が{STATUS_LABELS[step.status]}です{extra}",
            department=step.department_id, department_name=dep_name, step_id=step.id, status=step.status,
            applications=titles))
    if case.signed_at is None and any(i.application.needs_signature for i in instances):
        missed.append(_missed("unsigned", "本人の署名がまだありません"))
    elif case.signed_at is not None:
        # One signature per signer: a form whose signer has not signed (or whose signature a later
        # change voided) is not finished, even when someone else signed their own forms.
        for form in signatures.unsigned_forms(session, defs, case):
            missed.append(_missed("unsigned_form", f"「{form['title']}」に{form['signer']}さんの署名がありません",
                                  instance=form["instance_id"], applications=[form["title"]]))
    printed, bundle = _printed(session, case)
    if not bundle:
        for inst in instances:
            if inst.instance_id not in printed:
                dep = defs.departments.get(inst.application.department)
                label = application_label(defs, inst.application_id)
                missed.append(_missed(
                    "not_printed", f"「{label}」を印刷していません（最新の聞き取り内容で）", instance=inst.instance_id,
                    department=inst.application.department, department_name=dep.name if dep else None,
                    applications=[label]))
    return missed


def exit_check_view(session: Session, *, defs: DefinitionSet, case_id: str) -> dict[str, Any]:
    """The exit check of a case, without closing it."""
    case = get_case_or_raise(session, case_id)
    missed = exit_check(session, defs=defs, case=case)
    return {"case_id": case.id, "case_number": case.case_number, "case_status": case.status, "ok": not missed,
            "missed": missed}


def close_case(session: Session, *, defs: DefinitionSet, case_id: str, actor: User | None) -> Case:
    """Close the visit when nothing is missing; otherwise VisitNotFinished (409) lists what is."""
    case = _lock_case(session, case_id)
    if case.status == "closed":
        raise Conflict("この来庁は既に終了しています")
    if case.status == "cancelled":
        raise Conflict("この来庁は取り消されています")
    missed = exit_check(session, defs=defs, case=case)
    if missed:
        raise VisitNotFinished(missed)
    now = utcnow()
    case.status = "closed"
    case.closed_at = now
    case.updated_at = now
    record_event(session, case, events.DEPARTURE, actor=actor, at=now, data={"missed": []})
    return case


# --- Department side: steps, transitions -----------------------------------------------------------------


def get_step_for_department_or_raise(session: Session, *, department_id: str, step_id: int) -> RoutingStep:
    """The step if it belongs to the department; another department's step is NotFound too."""
    step = session.get(RoutingStep, step_id)
    if step is None or step.department_id != department_id:
        raise NotFound("この課の手続きにその番号はありません")
    return step


def _case_of(session: Session, step: RoutingStep) -> Case:
    return get_case_or_raise(session, step.case_id)


def _transition(
    session: Session, step: RoutingStep, *, allowed: tuple[str, ...], expected_version: int | None,
    values: dict[str, Any], now: dt.datetime,
) -> None:
    if step.status not in allowed:
        raise Conflict(_REFUSED.get(step.status), current_version=step.version)
    if expected_version is not None and expected_version != step.version:
        raise Conflict("他の職員が先にこの手続きを更新しました。最新の状態を読み込んでください",
                       current_version=step.version)
    # Compare-and-set: between reading the step and this UPDATE another clerk may have moved it.
    count = session.execute(
        update(RoutingStep)
        .where(RoutingStep.id == step.id, RoutingStep.version == step.version, RoutingStep.status.in_(allowed))
        .values(**values, version=RoutingStep.version + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if count != 1:
        session.refresh(step)
        message = _REFUSED.get(step.status) if step.status not in allowed else None
        raise Conflict(message or "他の職員が先にこの手続きを更新しました。最新の状態を読み込んでください",
                       current_version=step.version)
    session.refresh(step)


def _check_open(case: Case) -> None:
    if case.status in ("closed", "cancelled"):
        raise Conflict("この来庁は終了しています")


def _touch_dependents(session: Session, step: RoutingStep, now: dt.datetime) -> None:
    # A dependent step becomes ready without changing itself; moving its updated_at makes it show up
    # again for departments polling with `since` or a cursor. Its version stays (nothing to lock).
    for other in session.scalars(select(RoutingStep).where(RoutingStep.case_id == step.case_id)):
        if step.department_id in (other.depends_on or []) and other.status not in FINISHED:
            other.updated_at = now


def release_resident(session: Session, *, defs: DefinitionSet, case_id: str, actor: User | None) -> Case:
    """The counter is done with the resident: they may leave while the departments work (recorded once).

    Refused while there is no slip, while a department needs them in person, or when everything is
    already finished (then the visit is simply closed).
    """
    case = get_case_or_raise(session, case_id)
    _check_open(case)
    steps = [s for s in list_steps(session, case.id) if s.status != "cancelled"]
    if not steps:
        raise Conflict("回付票がまだ作成されていません。先に回付票を作成してください")
    waiting = [s for s in steps if s.status == "needs_resident"]
    if waiting:
        names = "、".join(defs.departments[d].name if d in defs.departments else d
                         for d in dict.fromkeys(s.department_id for s in waiting))
        raise Conflict(f"本人の来庁を待っている課があります（{names}）。先にその窓口へご案内ください")
    if all(s.status in FINISHED for s in steps):
        raise Conflict("手続きはすべて終わっています。来庁を終了してください")
    already = session.scalar(select(CaseEvent.id).where(CaseEvent.case_id == case.id,
                                                        CaseEvent.kind == events.RESIDENT_RELEASED).limit(1))
    if already is None:
        record_event(session, case, events.RESIDENT_RELEASED, actor=actor, at=utcnow(),
                     data={"open_steps": sum(1 for s in steps if s.status not in FINISHED)})
    return case


def release_if_possible(session: Session, *, defs: DefinitionSet, case_id: str, actor: User | None) -> bool:
    """Release the resident when the counter finishes and the rules allow it (see release_resident)."""
    try:
        release_resident(session, defs=defs, case_id=case_id, actor=actor)
    except Conflict:
        return False
    return True


def confirm_answers(session: Session, *, case_id: str, actor: User) -> int:
    """The clerk confirmed the marked answers (本人入力・カード・転入予約); open steps show up again for polling."""
    case = get_case_or_raise(session, case_id)
    count = answer_sources.confirm_all(session, case_id=case.id, user=actor)
    if count:
        now = utcnow()
        # Like a finished gate: the steps did not change, but they may have become ready.
        for step in session.scalars(select(RoutingStep).where(RoutingStep.case_id == case.id)):
            if step.status not in FINISHED:
                step.updated_at = now
    return count


def claim_step(session: Session, *, defs: DefinitionSet, department_id: str, step_id: int, actor: User,
               expected_version: int | None = None) -> RoutingStep:
    """pending → in_progress; refused (409) until every prerequisite step is done or cancelled."""
    step = get_step_for_department_or_raise(session, department_id=department_id, step_id=step_id)
    case = _case_of(session, step)
    _check_open(case)
    if step.status == "pending":
        siblings = {s.department_id: s for s in list_steps(session, step.case_id)}
        waiting = [siblings[d] for d in step.depends_on if d in siblings and siblings[d].status not in FINISHED]
        if waiting:
            parts = "、".join(
                f"{defs.departments[s.department_id].name if s.department_id in defs.departments else s.department_id}"
                f"（{STATUS_LABELS[s.status]}）" for s in waiting)
            raise Conflict(f"先に {parts} の手続きが完了している必要があります。完了してから受け付けてください",
                           current_version=step.version)
        blocks = readiness.confirmations(session, [step.case_id])[step.case_id].blocks(step)
        if blocks:
            raise Conflict(f"{'。'.join(blocks)}。総合窓口で確認が済んでから受け付けてください",
                           current_version=step.version)
    now = utcnow()
    _transition(session, step, allowed=("pending",), expected_version=expected_version, now=now,
                values={"status": "in_progress", "claimed_by": actor.id, "started_at": now})
    record_event(session, case, events.STEP_CLAIMED, actor=actor, at=now,
                 data={"department": department_id, "step_id": step.id})
    return step


def complete_step(session: Session, *, department_id: str, step_id: int, actor: User,
                  expected_version: int | None = None) -> RoutingStep:
    """in_progress → done (final)."""
    step = get_step_for_department_or_raise(session, department_id=department_id, step_id=step_id)
    case = _case_of(session, step)
    _check_open(case)
    now = utcnow()
    _transition(session, step, allowed=("in_progress",), expected_version=expected_version, now=now,
                values={"status": "done", "done_at": now})
    _touch_dependents(session, step, now)
    record_event(session, case, events.STEP_DONE, actor=actor, at=now,
                 data={"department": department_id, "step_id": step.id})
    return step


def needs_resident(session: Session, *, defs: DefinitionSet, department_id: str, step_id: int, actor: User,
                   reason: str | None, counter: str | None, expected_version: int | None = None) -> RoutingStep:
    """in_progress → needs_resident, with a reason in plain Japanese and the counter to come to."""
    dep = departments.get_department_or_raise(defs, department_id)
    step = get_step_for_department_or_raise(session, department_id=department_id, step_id=step_id)
    errors = []
    reason = (reason or "").strip()
    if not reason:
        errors.append({"field": "reason", "message": "本人に来ていただく理由を入力してください（住民の画面に表示されます）"})
    elif len(reason) > MAX_REASON:
        errors.append({"field": "reason", "message": f"理由は{MAX_REASON}文字以内にしてください"})
    counter = (counter or "").strip()
    if not counter and len(dep.counters) == 1:
        counter = dep.counters[0]
    if dep.counters and counter not in dep.counters:
        errors.append({"field": "counter",
                       "message": f"窓口番号は {dep.name} の窓口（{'・'.join(dep.counters)}）から選んでください"})
    elif len(counter) > 40:
        errors.append({"field": "counter", "message": "窓口番号が長すぎます"})
    if errors:
        raise ValidationFailed(details=errors)
    case = _case_of(session, step)
    _check_open(case)
    now = utcnow()
    _transition(session, step, allowed=("in_progress",), expected_version=expected_version, now=now,
                values={"status": "needs_resident", "resident_reason": reason, "counter": counter})
    record_event(session, case, events.STEP_NEEDS_RESIDENT, actor=actor, at=now,
                 data={"department": department_id, "step_id": step.id, "counter": counter})
    return step


def resume_step(session: Session, *, department_id: str, step_id: int, actor: User,
                expected_version: int | None = None) -> RoutingStep:
    """needs_resident → in_progress once the resident has come to the counter."""
    step = get_step_for_department_or_raise(session, department_id=department_id, step_id=step_id)
    case = _case_of(session, step)
    _check_open(case)
    now = utcnow()
    _transition(session, step, allowed=("needs_resident",), expected_version=expected_version, now=now,
                values={"status": "in_progress", "claimed_by": actor.id})
    # The vocabulary has no separate "resumed" event: a claim with resumed=true marks the return.
    record_event(session, case, events.STEP_CLAIMED, actor=actor, at=now,
                 data={"department": department_id, "step_id": step.id, "resumed": True})
    return step


# --- Department listing with cursor pagination --------------------------------------------------------


def encode_cursor(updated_at: dt.datetime, step_id: int) -> str:
    """An opaque cursor for the position (updated_at, id)."""
    raw = json.dumps([updated_at.astimezone(dt.UTC).isoformat(), step_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, int]:
    """The position a cursor stands for; ValidationFailed when it was not made by encode_cursor."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, step_id = json.loads(raw)
        at = dt.datetime.fromisoformat(stamp)
        if at.tzinfo is None or not isinstance(step_id, int):
            raise ValueError
        return at, step_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, json.JSONDecodeError):
        message = "cursor が正しくありません（next_cursor の値をそのまま渡してください）"
        raise ValidationFailed(details=[{"field": "cursor", "message": message}]) from None


def parse_statuses(text: str | None) -> list[str] | None:
    """`pending,in_progress` → a list; unknown names are a field error."""
    if not text:
        return None
    wanted = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in STEP_STATUSES]
    if unknown:
        raise ValidationFailed(details=[{"field": "status", "message": f"status は {', '.join(STEP_STATUSES)} から選んでください"
                                                                       f"（不明: {', '.join(unknown)}）"}])
    return wanted


def list_department_steps(
    session: Session, *, defs: DefinitionSet, department_id: str, statuses: list[str] | None = None,
    since: dt.datetime | None = None, cursor: str | None = None, limit: int = DEFAULT_LIMIT, ready: bool | None = None,
) -> dict[str, Any]:
    """A department's steps ordered by (updated_at, id), one page after the cursor.

    `next_cursor` is the position of the last step looked at; passing it back returns only steps
    changed after it, so a department system can keep polling with it. `has_more` says whether the
    page was cut short by `limit`.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(details=[{"field": "limit", "message": f"limit は 1〜{MAX_LIMIT} で指定してください"}])
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=dt.UTC)
    after = decode_cursor(cursor) if cursor else None
    query = select(RoutingStep).where(RoutingStep.department_id == department_id)
    if statuses:
        query = query.where(RoutingStep.status.in_(statuses))
    if since is not None:
        query = query.where(RoutingStep.updated_at >= since)
    out: list[RoutingStep] = []
    last: RoutingStep | None = None
    has_more = False
    # The ready flag depends on other departments' steps, so it is filtered after reading, in batches.
    batch = limit + 1
    while True:
        page = query
        if after is not None:
            page = page.where(or_(RoutingStep.updated_at > after[0],
                                  and_(RoutingStep.updated_at == after[0], RoutingStep.id > after[1])))
        rows = list(session.scalars(page.order_by(RoutingStep.updated_at, RoutingStep.id).limit(batch)))
        siblings = _siblings(session, {r.case_id for r in rows})
        confirmed = readiness.confirmations(session, {r.case_id for r in rows}) if ready is not None else {}
        for row in rows:
            if len(out) == limit:
                has_more = True
                break
            last = row
            after = (row.updated_at, row.id)
            if ready is None or readiness.is_ready(row, siblings[row.case_id], confirmed[row.case_id]) == ready:
                out.append(row)
        if has_more or len(rows) < batch:
            break
    cases = _case_numbers(session, {s.case_id for s in out})
    all_siblings = _siblings(session, {s.case_id for s in out})
    all_confirmed = readiness.confirmations(session, {s.case_id for s in out})
    users = _usernames(session, out)
    items = []
    for step in out:
        view = step_view(defs, step, all_siblings[step.case_id], users, all_confirmed[step.case_id])
        view.update(cases[step.case_id])
        items.append(view)
    return {
        "department": department_id,
        "steps": items,
        "next_cursor": encode_cursor(last.updated_at, last.id) if last is not None else cursor,
        "has_more": has_more,
    }


def _siblings(session: Session, case_ids: set[str]) -> dict[str, list[RoutingStep]]:
    out: dict[str, list[RoutingStep]] = defaultdict(list)
    if case_ids:
        for s in session.scalars(select(RoutingStep).where(RoutingStep.case_id.in_(case_ids))):
            out[s.case_id].append(s)
    return out


def _case_numbers(session: Session, case_ids: set[str]) -> dict[str, dict[str, Any]]:
    if not case_ids:
        return {}
    # load_only: the answers (decrypted on load) are not needed for a listing.
    rows = session.scalars(select(Case).options(load_only(Case.id, Case.office, Case.ticket_day, Case.ticket_number,
                                                          Case.status)).where(Case.id.in_(case_ids)))
    return {c.id: {"case_number": c.case_number, "ticket_number": c.ticket_number,
                   "ticket_label": f"{c.ticket_number:03d}", "case_status": c.status} for c in rows}


def _members_concerned(defs: DefinitionSet, case: Case, step: RoutingStep) -> set[str]:
    # The department sees only the members its forms are for or print (not the whole household).
    answers = case.answers or {}
    instances = [i for i in determine(defs, answers, case_number=case.case_number) if i.instance_id in step.applications]
    forms = [resolve_form(defs, i, case_number=case.case_number) for i in instances]
    members = (answers.get("household") or {}).get("members") or []
    return members_concerned(instances, forms, [m for m in members if isinstance(m, dict)])


def department_step_detail(
    session: Session, *, defs: DefinitionSet, department_id: str, step_id: int, with_answers: bool = True,
) -> dict[str, Any]:
    """A step with what its department needs: case numbers and (optionally) the answers its applications use."""
    step = get_step_for_department_or_raise(session, department_id=department_id, step_id=step_id)
    siblings = list_steps(session, step.case_id)
    confirmation = readiness.confirmations(session, [step.case_id])[step.case_id]
    view = step_view(defs, step, siblings, _usernames(session, [step]), confirmation)
    view.update(_case_numbers(session, {step.case_id})[step.case_id])
    if with_answers:
        case = _case_of(session, step)
        app_ids = [_instance_application(i)[0] for i in step.applications]
        concerned = _members_concerned(defs, case, step)
        answers, shown = departments.answers_for(defs, case.answers or {}, app_ids, concerned)
        view.update({"answers": answers, "unmasked": shown})
    return view


def step_application_pdf(
    session: Session, *, defs: DefinitionSet, department_id: str, step_id: int, instance_id: str,
) -> tuple[RoutingStep, str]:
    """Check that the instance belongs to the department's step; returns the step and its case id."""
    step = get_step_for_department_or_raise(session, department_id=department_id, step_id=step_id)
    if instance_id not in step.applications:
        raise NotFound("この手続きにその申請書はありません")
    return step, step.case_id


# --- Slip PDF ---------------------------------------------------------------------------------------------


def resident_url(base_url: str, case: Case) -> str:
    """The resident page's URL printed as a QR code."""
    return f"{base_url.rstrip('/')}/q/{case.status_token}"


def _external_notes(instances: Sequence[Instance]) -> tuple[str, ...]:
    """Steps outside the city hall, printed under the table: place and deadline (no form, no check box)."""
    notes = []
    for inst in instances:
        if not inst.external or inst.application.external is None:
            continue
        when = f"{format_wareki(inst.deadline)}まで" if inst.deadline else "期限なし"
        app = inst.application
        notes.append(f"市役所の外の手続き：{app.short_title or app.title}　{app.external.place}　{when}")
    return tuple(notes)


def render_slip_pdf(
    session: Session, *, defs: DefinitionSet, case_id: str, city_name: str, office_name: str, base_url: str,
) -> tuple[bytes, str]:
    """The one-page routing slip PDF and its file name."""
    case = get_case_or_raise(session, case_id)
    steps = [s for s in list_steps(session, case.id) if s.status != "cancelled"]
    if not steps:
        raise NotFound("回付票がまだ作成されていません。先に回付票を作成してください")
    stage_sizes: dict[int, int] = defaultdict(int)
    for s in steps:
        stage_sizes[s.stage] += 1
    rows = []
    confirmation = readiness.confirmations(session, [case.id])[case.id]
    instances = determine(defs, case.answers, case_number=case.case_number, include_external=True)
    copies = {i.instance_id: i.copies for i in instances if i.application.copies is not None}
    for s in steps:
        dep = defs.departments.get(s.department_id)
        counts: dict[str, int] = {}
        for iid in s.applications:
            label = application_label(defs, _instance_application(iid)[0])
            if iid in copies:
                label = f"{label}（{copies[iid]}通・交付）"
            counts[label] = counts.get(label, 0) + 1
        apps = tuple(f"{label}（{n}件）" if n > 1 else label for label, n in counts.items())
        place = dep.location if dep else ""
        if dep and dep.counters:
            place = f"{place} {'・'.join(dep.counters)}番窓口".strip()
        rows.append(SlipRow(position=s.position, stage=s.stage + 1, parallel=stage_sizes[s.stage] > 1,
                            department=dep.name if dep else s.department_id, place=place, applications=apps,
                            status=STATUS_LABELS[s.status], done=s.status == "done",
                            can_start=s.status == "pending" and readiness.is_ready(s, steps, confirmation),
                            waiting_for=tuple(defs.departments[d].name if d in defs.departments else d
                                              for d in readiness.waiting_for(s, steps))))
    visit = case.answers.get("visit_date") if case.answers else None
    try:
        visit_text = format_wareki(dt.date.fromisoformat(str(visit))) if visit else ""
    except ValueError:
        visit_text = str(visit)
    notes = tuple(n for s in steps for n in s.note.splitlines() if n) + _external_notes(instances)
    doc = SlipDocument(
        city_name=city_name, office_name=office_name, case_number=case.case_number,
        ticket_label=f"{case.ticket_number:03d}", visit_date=visit_text, qr_url=resident_url(base_url, case),
        rows=tuple(rows), notes=notes, late=tuple(f"{n['title']}：{n['note']}" for n in late_notes(instances)),
        generated_label=f"書かない窓口で作成　定義 {defs.fingerprint[:8]}",
        fee_total=sum(i.fee_total for i in instances if not i.external),
    )
    return render_slip(doc, load_fonts()), f"{case.case_number}_routing_slip.pdf"
