"""The routing slip: order from the definitions' `after`/`requires`, stages, rebuilds, transitions, exit check, paging, PDF."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import io
import subprocess
import threading
import uuid
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session

from app import events
from app.db import make_sessionmaker, session_scope
from app.errors import Conflict, NotFound, ValidationFailed
from app.forms.determine import determine
from app.forms.loader import DefinitionSet
from app.models import ApiToken, Case, CaseEvent, RoutingStep, User, utcnow
from app.services import auth, cases, documents, routing
from app.services.definitions import DefinitionRegistry

DAY = dt.date(2026, 4, 6)


@pytest.fixture
def defs(registry: DefinitionRegistry) -> DefinitionSet:
    return registry.current


@pytest.fixture
def office() -> str:
    return f"r{uuid.uuid4().hex[:8]}"


@pytest.fixture
def clerk(db: Session) -> User:
    return auth.create_user(db, username=f"k{uuid.uuid4().hex[:8]}", password="x" * 12, role="department",
                            department_id="kodomo")


def _user(db: Session, department: str) -> User:
    return auth.create_user(db, username=f"d{uuid.uuid4().hex[:8]}", password="x" * 12, role="department",
                            department_id=department)


def _case(db: Session, defs: DefinitionSet, answers: dict[str, Any], office: str) -> Case:
    return cases.create_case(db, defs=defs, answers=answers, user=None, office=office, today=DAY)


def _sign(db: Session, defs: DefinitionSet, case: Case) -> None:
    """The household's signer (the head) signs on the tablet: every form they sign gets the signature."""
    pil = pytest.importorskip("PIL.Image")
    buf = io.BytesIO()
    pil.new("RGB", (60, 20), (0, 0, 0)).save(buf, "PNG")
    documents.store_signature(db, defs=defs, case_id=case.id, png=buf.getvalue(), max_bytes=1 << 20, actor=None)


def _by_dept(steps: list[RoutingStep]) -> dict[str, RoutingStep]:
    return {s.department_id: s for s in steps}


def _finish(db: Session, defs: DefinitionSet, step: RoutingStep) -> None:
    """Claim and complete a step as a clerk of its department."""
    user = _user(db, step.department_id)
    routing.claim_step(db, defs=defs, department_id=step.department_id, step_id=step.id, actor=user)
    routing.complete_step(db, department_id=step.department_id, step_id=step.id, actor=user)


def _assert_respects_after(defs: DefinitionSet, answers: dict[str, Any], steps: list[RoutingStep]) -> int:
    """Across departments: every `requires` is a gate (dependency, earlier position and stage); every
    `after` only an earlier position, never a gate."""
    applying = {i.application_id: i.application.department for i in determine(defs, answers)}
    by_dept = _by_dept(steps)
    gated = {(applying[a], applying[e]) for a in applying for e in defs.applications[a].requires if e in applying}
    checked = 0
    for app_id, dept in applying.items():
        app = defs.applications[app_id]
        for earlier in (*app.after, *app.requires):
            other = applying.get(earlier)
            if other is None or other == dept:
                continue
            step, before = by_dept[dept], by_dept[other]
            assert before.position < step.position, (app_id, earlier)
            if earlier in app.requires:
                assert other in step.depends_on, (app_id, earlier)
                assert before.stage < step.stage, (app_id, earlier)
            elif (dept, other) not in gated:
                assert other not in step.depends_on, (app_id, earlier)
            checked += 1
    return checked


def test_model_household_slip_respects_every_after(db: Session, defs: DefinitionSet, office: str,
                                                   model_case: dict[str, Any]) -> None:
    case = _case(db, defs, model_case, office)
    steps = routing.build_slip(db, defs=defs, case=case, actor=None)
    applying = determine(defs, model_case)
    # One step per department that has an application, holding exactly its applications.
    assert {s.department_id for s in steps} == {i.application.department for i in applying}
    assert sorted(i for s in steps for i in s.applications) == sorted(i.instance_id for i in applying)
    assert _assert_respects_after(defs, model_case, steps) >= 4
    # Positions are a permutation 1..n; stages are the longest chain of prerequisites.
    assert sorted(s.position for s in steps) == list(range(1, len(steps) + 1))
    by = _by_dept(steps)
    for s in steps:
        assert s.stage == 1 + max((by[d].stage for d in s.depends_on), default=-1)
    assert case.status == "routing"
    kinds = [e.kind for e in db.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id))]
    assert kinds.count(events.SLIP_CREATED) == 1


def test_stages_and_parallel_steps_with_national_insurance(db: Session, defs: DefinitionSet, office: str,
                                                           model_case: dict[str, Any]) -> None:
    # With national health insurance, 国保 comes in between: kodomo_iryo `requires` kokuho_shutoku, which
    # requires the 転入届; 保育・学事・健康 have only ordering hints and run beside 市民課 from the start.
    answers = copy.deepcopy(model_case)
    for member in answers["household"]["members"]:
        member["health_insurance"] = "national"
        member.pop("employer", None)
    assert "kokuho_shutoku" in {i.application_id for i in determine(defs, answers)}
    case = _case(db, defs, answers, office)
    steps = routing.build_slip(db, defs=defs, case=case, actor=None)
    _assert_respects_after(defs, answers, steps)
    by = _by_dept(steps)
    assert by["shimin"].stage == 0 and by["hoken_nenkin"].stage == 1 and by["kodomo"].stage == 2
    assert by["hoiku"].stage == 0 and by["hoiku"].depends_on == [] and by["shimin"].position < by["hoiku"].position
    assert set(by["kodomo"].depends_on) == {"shimin", "hoken_nenkin"}
    view = routing.slip_view(db, defs=defs, case=case)
    parallel = {s["department"]: s["parallel"] for s in view["steps"]}
    # Stage 0 (市民課 with 保育・学事) runs side by side; 国保 and こども福祉課 are alone in theirs.
    assert parallel["shimin"] and parallel["hoiku"]
    assert not parallel["hoken_nenkin"] and not parallel["kodomo"]


def test_department_cycle_falls_back_to_the_earlier_constraint(db: Session, defs: DefinitionSet, office: str,
                                                               model_case: dict[str, Any]) -> None:
    # Hand-made set: 市民課's My Number card update requires こども福祉課's 児童手当, which itself requires
    # 市民課's 転入届. Applications stay acyclic, departments would not.
    apps = dict(defs.applications)
    apps["jido_teate"] = apps["jido_teate"].model_copy(update={"after": [], "requires": ["jumin_tennyu"]})
    apps["mynumber_keizoku"] = apps["mynumber_keizoku"].model_copy(update={"requires": ["jumin_tennyu", "jido_teate"]})
    cyclic = dataclasses.replace(defs, applications=apps)
    plan = routing.plan_slip(cyclic, determine(cyclic, model_case))
    by = {p.department_id: p for p in plan}
    assert "shimin" in by["kodomo"].depends_on and "kodomo" not in by["shimin"].depends_on
    assert by["shimin"].position < by["kodomo"].position
    assert any("マイナンバーカード継続利用" in n and "児童手当" in n and "循環" in n for n in by["shimin"].notes)
    # The database path does not crash either, and the note reaches the slip.
    case = _case(db, cyclic, model_case, office)
    steps = _by_dept(routing.build_slip(db, defs=cyclic, case=case, actor=None))
    assert "循環" in steps["shimin"].note and steps["kodomo"].note == ""


def test_rebuild_is_idempotent_keeps_status_adds_and_cancels(db: Session, defs: DefinitionSet, office: str,
                                                             model_case: dict[str, Any], clerk: User) -> None:
    case = _case(db, defs, model_case, office)
    first = _by_dept(routing.build_slip(db, defs=defs, case=case, actor=None))
    _finish(db, defs, first["shimin"])
    routing.claim_step(db, defs=defs, department_id="kodomo", step_id=first["kodomo"].id, actor=clerk)
    versions = {d: s.version for d, s in first.items()}

    again = _by_dept(routing.build_slip(db, defs=defs, case=case, actor=None))
    assert {d: s.id for d, s in again.items()} == {d: s.id for d, s in first.items()}
    assert again["shimin"].status == "done" and again["kodomo"].status == "in_progress"
    assert {d: s.version for d, s in again.items()} == {d: s.version for d, s in first.items()} != {}
    assert versions["hoiku"] == again["hoiku"].version
    slips = db.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id, CaseEvent.kind == events.SLIP_CREATED))
    assert len(list(slips)) == 1  # a refresh that changes nothing writes nothing

    # The younger child no longer wants daycare and the school child is gone: 保育課 and 学事課 drop out.
    answers = copy.deepcopy(model_case)
    answers["life_events"] = ["move_in"]
    answers["household"]["members"] = [m for m in answers["household"]["members"] if m["id"] != "m3"]
    for m in answers["household"]["members"]:
        m.pop("childcare", None)
    case = cases.update_answers(db, defs=defs, case_id=case.id, answers=answers, expected_version=case.version,
                                user=None, today=DAY)
    third = _by_dept(routing.build_slip(db, defs=defs, case=case, actor=None))
    assert third["hoiku"].status == "cancelled" and third["gakumu"].status == "cancelled"
    assert third["shimin"].status == "done" and third["kodomo"].status == "in_progress"
    assert third["kodomo"].applications == [i for i in first["kodomo"].applications if not i.endswith("-m3")]
    cancelled = [e.data for e in db.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id,
                                                                    CaseEvent.kind == events.STEP_CANCELLED))]
    assert sorted(d["department"] for d in cancelled) == ["gakumu", "hoiku"]

    # Back to the original answers: the cancelled steps come back as pending.
    case = cases.update_answers(db, defs=defs, case_id=case.id, answers=model_case, expected_version=case.version,
                                user=None, today=DAY)
    fourth = _by_dept(routing.build_slip(db, defs=defs, case=case, actor=None))
    assert fourth["hoiku"].status == "pending" and fourth["gakumu"].status == "pending"


def test_done_step_that_gains_an_application_is_reopened(db: Session, defs: DefinitionSet, office: str,
                                                          model_case: dict[str, Any]) -> None:
    answers = copy.deepcopy(model_case)
    case = _case(db, defs, answers, office)
    steps = _by_dept(routing.build_slip(db, defs=defs, case=case, actor=None))
    _finish(db, defs, steps["shimin"])
    # 印鑑登録 is 市民課's too: the done step has new work.
    answers["household"]["members"][0]["seal_registration"] = True
    assert "inkan_toroku" in {i.application_id for i in determine(defs, answers)}
    case = cases.update_answers(db, defs=defs, case_id=case.id, answers=answers, expected_version=case.version,
                                user=None, today=DAY)
    shimin = _by_dept(routing.build_slip(db, defs=defs, case=case, actor=None))["shimin"]
    assert shimin.status == "pending" and "inkan_toroku-m1" in shimin.applications and shimin.done_at is None


def test_claim_waits_for_prerequisites_then_transitions(db: Session, defs: DefinitionSet, office: str,
                                                        model_case: dict[str, Any], clerk: User) -> None:
    case = _case(db, defs, model_case, office)
    steps = _by_dept(routing.build_slip(db, defs=defs, case=case, actor=None))
    kodomo = steps["kodomo"]
    with pytest.raises(Conflict) as info:
        routing.claim_step(db, defs=defs, department_id="kodomo", step_id=kodomo.id, actor=clerk)
    assert "市民課" in info.value.message and "完了している必要があります" in info.value.message
    assert kodomo.status == "pending"
    _finish(db, defs, steps["shimin"])
    step = routing.claim_step(db, defs=defs, department_id="kodomo", step_id=kodomo.id, actor=clerk)
    assert step.status == "in_progress" and step.claimed_by == clerk.id and step.started_at is not None

    with pytest.raises(ValidationFailed) as bad:
        routing.needs_resident(db, defs=defs, department_id="kodomo", step_id=kodomo.id, actor=clerk, reason="  ",
                               counter="99")
    fields = {e["field"]: e["message"] for e in bad.value.details}
    assert "理由" in fields["reason"] and "8" in fields["counter"]
    assert step.status == "in_progress"
    step = routing.needs_resident(db, defs=defs, department_id="kodomo", step_id=kodomo.id, actor=clerk,
                                  reason="口座の名義を確認させてください", counter=None)
    assert step.status == "needs_resident" and step.counter == "8"  # the department's only counter
    with pytest.raises(Conflict):
        routing.complete_step(db, department_id="kodomo", step_id=kodomo.id, actor=clerk)
    step = routing.resume_step(db, department_id="kodomo", step_id=kodomo.id, actor=clerk)
    assert step.status == "in_progress"
    step = routing.complete_step(db, department_id="kodomo", step_id=kodomo.id, actor=clerk)
    assert step.status == "done" and step.done_at is not None
    with pytest.raises(Conflict, match="完了した手続きは変更できません"):
        routing.claim_step(db, defs=defs, department_id="kodomo", step_id=kodomo.id, actor=clerk)
    kinds = [e.kind for e in db.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id)
                                        .order_by(CaseEvent.id))]
    assert kinds[-4:] == [events.STEP_CLAIMED, events.STEP_NEEDS_RESIDENT, events.STEP_CLAIMED, events.STEP_DONE]
    # Another department's step is simply not there.
    with pytest.raises(NotFound):
        routing.claim_step(db, defs=defs, department_id="hoiku", step_id=kodomo.id, actor=clerk)


def test_stale_version_loses_the_claim(db: Session, defs: DefinitionSet, office: str,
                                       model_case: dict[str, Any], clerk: User) -> None:
    case = _case(db, defs, model_case, office)
    shimin = _by_dept(routing.build_slip(db, defs=defs, case=case, actor=None))["shimin"]
    seen = shimin.version
    # Another clerk's claim lands between our read and our write (same row, version moved on).
    db.execute(update(RoutingStep).where(RoutingStep.id == shimin.id)
               .values(status="in_progress", version=RoutingStep.version + 1)
               .execution_options(synchronize_session=False))
    with pytest.raises(Conflict) as info:
        routing.claim_step(db, defs=defs, department_id="shimin", step_id=shimin.id, actor=clerk,
                           expected_version=seen)
    assert info.value.current_version == seen + 1
    # Same race without a client version: the in-memory row is stale, the compare-and-set still refuses.
    other = _by_dept(routing.list_steps(db, case.id))["hoiku"]
    db.execute(update(RoutingStep).where(RoutingStep.id == other.id).values(version=RoutingStep.version + 1)
               .execution_options(synchronize_session=False))
    with pytest.raises(Conflict):
        routing._transition(db, other, allowed=("pending",), expected_version=None, values={"status": "in_progress"},
                            now=utcnow())


def test_two_sessions_claim_at_once_one_wins(engine: Engine, registry: DefinitionRegistry, is_postgres: bool,
                                             model_case_raw: dict[str, Any]) -> None:
    if not is_postgres:
        pytest.skip("real concurrent writers need PostgreSQL (SQLite serialises writers)")
    factory = make_sessionmaker(engine)
    defs = registry.current
    office = f"x{uuid.uuid4().hex[:8]}"
    names = [f"race{uuid.uuid4().hex[:6]}{i}" for i in range(2)]
    for session in session_scope(factory):
        case = cases.create_case(session, defs=defs, answers=model_case_raw, user=None, office=office, today=DAY)
        step_id = _by_dept(routing.build_slip(session, defs=defs, case=case, actor=None))["shimin"].id
        case_id = case.id
        for name in names:
            auth.create_user(session, username=name, password="x" * 12, role="department", department_id="shimin")
    barrier = threading.Barrier(2)
    results: list[str] = []
    lock = threading.Lock()

    def claim(name: str) -> None:
        outcome = "won"
        try:
            for session in session_scope(factory):
                user = session.scalar(select(User).where(User.username == name))
                step = session.get(RoutingStep, step_id)  # both read version 1 before either writes
                assert step is not None and user is not None
                barrier.wait(timeout=10)
                routing.claim_step(session, defs=defs, department_id="shimin", step_id=step_id, actor=user)
        except Conflict:
            outcome = "conflict"
        with lock:
            results.append(outcome)

    try:
        threads = [threading.Thread(target=claim, args=(n,)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert sorted(results) == ["conflict", "won"]
    finally:
        for session in session_scope(factory):
            session.execute(delete(Case).where(Case.id == case_id))
            ids = list(session.scalars(select(User.id).where(User.username.in_(names))))
            session.execute(delete(ApiToken).where(ApiToken.user_id.in_(ids)))
            session.execute(delete(User).where(User.id.in_(ids)))


def test_exit_check_lists_open_steps_and_close_succeeds_when_done(db: Session, defs: DefinitionSet, office: str,
                                                                  model_case: dict[str, Any]) -> None:
    case = _case(db, defs, model_case, office)
    missed = routing.exit_check(db, defs=defs, case=case)
    assert [m["kind"] for m in missed][:1] == ["no_slip"]
    steps = routing.build_slip(db, defs=defs, case=case, actor=None)
    _sign(db, defs, case)
    cases.record_event(db, case, events.BUNDLE_PRINTED, data={"forms": 8})
    for step in steps:
        if step.department_id != "hoiku":
            _finish(db, defs, step)
    missed = routing.exit_check(db, defs=defs, case=case)
    assert [(m["kind"], m["department"]) for m in missed] == [("open_step", "hoiku")]
    assert missed[0]["department_name"] == "保育課" and missed[0]["applications"] == ["保育所等の利用申込み"]
    with pytest.raises(routing.VisitNotFinished) as info:
        routing.close_case(db, defs=defs, case_id=case.id, actor=None)
    assert info.value.status == 409 and info.value.missed == missed
    assert case.status == "routing"
    _finish(db, defs, _by_dept(steps)["hoiku"])
    closed = routing.close_case(db, defs=defs, case_id=case.id, actor=None)
    assert closed.status == "closed" and closed.closed_at is not None
    departure = db.scalar(select(CaseEvent).where(CaseEvent.case_id == case.id, CaseEvent.kind == events.DEPARTURE))
    assert departure is not None and departure.data == {"missed": []}
    with pytest.raises(Conflict, match="既に終了"):
        routing.close_case(db, defs=defs, case_id=case.id, actor=None)


def test_exit_check_wants_a_signature_and_prints_after_the_last_change(db: Session, defs: DefinitionSet, office: str,
                                                                       model_case: dict[str, Any]) -> None:
    case = _case(db, defs, model_case, office)
    for step in routing.build_slip(db, defs=defs, case=case, actor=None):
        _finish(db, defs, step)
    kinds = {m["kind"] for m in routing.exit_check(db, defs=defs, case=case)}
    assert kinds == {"unsigned", "not_printed"}
    _sign(db, defs, case)
    for inst in determine(defs, model_case):
        cases.record_event(db, case, events.FORM_PRINTED, data={"instance": inst.instance_id})
    assert routing.exit_check(db, defs=defs, case=case) == []
    # Changed answers make the printed forms stale.
    cases.update_answers(db, defs=defs, case_id=case.id, answers=model_case, expected_version=case.version,
                         user=None, today=DAY)
    assert {m["kind"] for m in routing.exit_check(db, defs=defs, case=case)} == {"not_printed"}


def test_cursor_pages_and_since_return_every_step_once(db: Session, defs: DefinitionSet, office: str,
                                                       model_case: dict[str, Any]) -> None:
    made = []
    for _ in range(5):
        case = _case(db, defs, model_case, office)
        made.append(_by_dept(routing.build_slip(db, defs=defs, case=case, actor=None)))
    wanted = {m["kodomo"].id for m in made}

    def walk(**kwargs: Any) -> tuple[list[int], str | None]:
        seen: list[int] = []
        cursor = None
        while True:
            page = routing.list_department_steps(db, defs=defs, department_id="kodomo", cursor=cursor, limit=2,
                                                 **kwargs)
            assert len(page["steps"]) <= 2
            seen += [s["id"] for s in page["steps"]]
            cursor = page["next_cursor"]
            if not page["has_more"]:
                return seen, cursor

    seen, cursor = walk()
    assert sorted(seen) == sorted(wanted) and len(seen) == len(set(seen))
    assert all(routing.list_department_steps(db, defs=defs, department_id="kodomo", limit=50)["steps"][i]["ready"]
               is False for i in range(5))

    # 市民課 finishes two visits: their こども福祉課 steps become ready and show up for a poller.
    mark = utcnow()
    for m in made[:2]:
        _finish(db, defs, m["shimin"])
    changed = routing.list_department_steps(db, defs=defs, department_id="kodomo", since=mark)
    assert sorted(s["id"] for s in changed["steps"]) == sorted(m["kodomo"].id for m in made[:2])
    assert all(s["ready"] for s in changed["steps"])
    polled = routing.list_department_steps(db, defs=defs, department_id="kodomo", cursor=cursor)
    assert sorted(s["id"] for s in polled["steps"]) == sorted(m["kodomo"].id for m in made[:2])
    quiet = routing.list_department_steps(db, defs=defs, department_id="kodomo", cursor=polled["next_cursor"])
    assert quiet["steps"] == [] and quiet["next_cursor"] == polled["next_cursor"]
    ready, _ = walk(ready=True)
    assert sorted(ready) == sorted(m["kodomo"].id for m in made[:2])
    not_ready, _ = walk(ready=False, statuses=["pending"])
    assert sorted(not_ready) == sorted(m["kodomo"].id for m in made[2:])
    with pytest.raises(ValidationFailed):
        routing.list_department_steps(db, defs=defs, department_id="kodomo", cursor="not-a-cursor")
    with pytest.raises(ValidationFailed):
        routing.parse_statuses("pending,finished")


def _pdftotext(pdf: bytes) -> str:
    return subprocess.run(["pdftotext", "-enc", "UTF-8", "-", "-"], input=pdf, capture_output=True,
                          check=True).stdout.decode()


def test_slip_pdf_is_one_deterministic_page(db: Session, defs: DefinitionSet, office: str,
                                            model_case: dict[str, Any]) -> None:
    case = _case(db, defs, model_case, office)
    routing.build_slip(db, defs=defs, case=case, actor=None)
    kwargs = {"defs": defs, "case_id": case.id, "city_name": "みなと市", "office_name": "本庁舎",
              "base_url": "https://kakanai.example.jp/"}
    pdf, name = routing.render_slip_pdf(db, **kwargs)
    again, _ = routing.render_slip_pdf(db, **kwargs)
    assert pdf == again
    assert name == f"{case.case_number}_routing_slip.pdf"
    assert len(PdfReader(io.BytesIO(pdf)).pages) == 1
    text = _pdftotext(pdf)
    assert case.case_number in text and f"{case.ticket_number:03d}" in text
    assert f"https://kakanai.example.jp/q/{case.status_token}" in text
    assert "並行可" in text and "こども福祉課" in text and "子ども医療費助成（2件）" in text
    # No personal data on the slip: not even the family name.
    assert "尼崎" not in text.replace("尼崎市", "")


def test_slip_pdf_stays_on_one_page_with_many_applications(defs: DefinitionSet) -> None:
    from app.forms.fonts import load_fonts
    from app.forms.slip_pdf import SlipDocument, SlipRow, render_slip

    rows = tuple(SlipRow(position=i, stage=i // 2, parallel=True, department=f"課{i}", place="本庁舎9階 99番窓口",
                         applications=tuple(f"とても長い名前の申請書その{j}（附属書類を含む）" for j in range(12)),
                         status="受付待ち", done=False) for i in range(1, 9))
    doc = SlipDocument(city_name="みなと市", office_name="本庁舎", case_number="20260406-honcho-001",
                       ticket_label="001", visit_date="令和8年4月6日", qr_url="https://example.jp/q/x", rows=rows)
    pdf = render_slip(doc, load_fonts())
    assert len(PdfReader(io.BytesIO(pdf)).pages) == 1
    text = _pdftotext(pdf)
    assert "課8" in text and "ほか" in text  # shortened, and it says so
