"""Departments in parallel: a step is ready when its answers are confirmed and its hard gates (`requires`) are done."""

from __future__ import annotations

import copy
import datetime as dt
import io
import uuid
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.errors import Conflict
from app.forms.loader import DefinitionSet
from app.models import Case, RoutingStep, User
from app.services import answer_sources, auth, cases, documents, readiness, routing
from app.services.definitions import DefinitionRegistry

DAY = dt.date(2026, 4, 6)


@pytest.fixture
def defs(registry: DefinitionRegistry) -> DefinitionSet:
    return registry.current


def _user(db: Session, department: str) -> User:
    return auth.create_user(db, username=f"d{uuid.uuid4().hex[:8]}", password="x" * 12, role="department",
                            department_id=department)


def _case(db: Session, defs: DefinitionSet, answers: dict[str, Any]) -> Case:
    return cases.create_case(db, defs=defs, answers=answers, user=None, office=f"r{uuid.uuid4().hex[:8]}", today=DAY)


def _slip(db: Session, defs: DefinitionSet, case: Case) -> dict[str, RoutingStep]:
    return {s.department_id: s for s in routing.build_slip(db, defs=defs, case=case, actor=None)}


def _view(db: Session, defs: DefinitionSet, case: Case) -> dict[str, dict[str, Any]]:
    return {s["department"]: s for s in routing.slip_view(db, defs=defs, case=case)["steps"]}


def _claim(db: Session, defs: DefinitionSet, step: RoutingStep) -> RoutingStep:
    return routing.claim_step(db, defs=defs, department_id=step.department_id, step_id=step.id,
                              actor=_user(db, step.department_id))


def test_ordering_hint_does_not_gate_but_a_hard_gate_does(db: Session, defs: DefinitionSet,
                                                          model_case: dict[str, Any]) -> None:
    # The model household: 保育・学事・健康 have `after: [jumin_tennyu]` (a hint); こども福祉課's 子ども医療費
    # `requires` the 転入届 (the 医療証 prints what the 住民記録 holds).
    assert defs.applications["hoiku_nyusho"].requires == [] and "jumin_tennyu" in defs.applications["hoiku_nyusho"].after
    assert "jumin_tennyu" in defs.applications["kodomo_iryo"].requires
    case = _case(db, defs, model_case)
    steps = _slip(db, defs, case)
    view = _view(db, defs, case)
    hinted = [d for d in ("hoiku", "gakumu", "kenko") if d in steps]
    assert hinted, "the model household has departments with ordering hints only"
    for d in hinted:
        assert steps[d].depends_on == [] and steps[d].stage == 0
        assert steps["shimin"].position < steps[d].position  # still listed after 市民課
        assert view[d]["ready"] and view[d]["can_start_now"] and view[d]["waiting_for"] == []
    assert view["kodomo"]["depends_on"] == ["shimin"] and not view["kodomo"]["ready"]
    assert view["kodomo"]["waiting_for"] == ["shimin"] and view["kodomo"]["not_ready_reasons"] == ["市民課の完了待ち"]
    # A hinted step starts while 市民課 has not even claimed its own.
    assert _claim(db, defs, steps[hinted[0]]).status == "in_progress"
    assert steps["shimin"].status == "pending"
    with pytest.raises(Conflict, match="市民課"):
        _claim(db, defs, steps["kodomo"])
    user = _user(db, "shimin")
    routing.claim_step(db, defs=defs, department_id="shimin", step_id=steps["shimin"].id, actor=user)
    routing.complete_step(db, department_id="shimin", step_id=steps["shimin"].id, actor=user)
    assert _view(db, defs, case)["kodomo"]["can_start_now"]
    assert _claim(db, defs, steps["kodomo"]).status == "in_progress"


def test_unconfirmed_marks_hold_every_step_until_the_clerk_confirms(db: Session, defs: DefinitionSet,
                                                                     model_case: dict[str, Any]) -> None:
    case = _case(db, defs, model_case)
    answer_sources.record(db, case_id=case.id, paths=["household.members.m1.birth_date", "phone"], source="resident")
    steps = _slip(db, defs, case)
    view = _view(db, defs, case)
    assert all(not v["ready"] and not v["answers_confirmed"] for v in view.values())
    assert readiness.UNCONFIRMED_MARKS in view["hoiku"]["not_ready_reasons"]
    with pytest.raises(Conflict, match="窓口で確認していない回答"):
        _claim(db, defs, steps["hoiku"])
    with pytest.raises(Conflict, match="市民課"):  # the gate is reported first
        _claim(db, defs, steps["kodomo"])
    clerk = auth.create_user(db, username=f"c{uuid.uuid4().hex[:8]}", password="x" * 12, role="counter")
    assert answer_sources.confirm_all(db, case_id=case.id, user=clerk) == 2
    view = _view(db, defs, case)
    assert view["hoiku"]["ready"] and view["shimin"]["ready"] and not view["kodomo"]["ready"]
    assert _claim(db, defs, steps["hoiku"]).status == "in_progress"


def test_a_voided_signature_holds_only_the_steps_of_the_changed_forms(db: Session, defs: DefinitionSet,
                                                                        model_case: dict[str, Any]) -> None:
    pil = pytest.importorskip("PIL.Image")
    case = _case(db, defs, model_case)
    buf = io.BytesIO()
    pil.new("RGB", (60, 20), (0, 0, 0)).save(buf, "PNG")
    documents.store_signature(db, defs=defs, case_id=case.id, png=buf.getvalue(), max_bytes=1 << 20, actor=None)
    steps = _slip(db, defs, case)
    assert all(v["answers_confirmed"] for v in _view(db, defs, case).values())
    # A changed preferred facility changes only the 保育 form: its signature is void until signed again.
    answers = copy.deepcopy(case.answers)
    child = next(m for m in answers["household"]["members"] if m.get("childcare"))
    child["childcare"]["preferred_facilities"] = ["ほかの保育園"]
    case = cases.update_answers(db, defs=defs, case_id=case.id, answers=answers, expected_version=case.version,
                                user=None, today=DAY)
    view = _view(db, defs, case)
    assert not view["hoiku"]["answers_confirmed"] and readiness.VOIDED_SIGNATURE in view["hoiku"]["not_ready_reasons"]
    assert view["shimin"]["answers_confirmed"] and view["shimin"]["ready"]
    with pytest.raises(Conflict, match="署名が無効"):
        _claim(db, defs, steps["hoiku"])
    documents.store_signature(db, defs=defs, case_id=case.id, png=buf.getvalue(), max_bytes=1 << 20, actor=None)
    assert _view(db, defs, case)["hoiku"]["ready"]
