"""The department screen's data and actions: columns by readiness, a department's call to its counter (on
the board, refused while another counter serves the resident), done finishing the call; reception."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import events
from app.errors import Conflict, NotFound, ValidationFailed
from app.models import CaseEvent, QueueTicket, RoutingStep, User
from app.services import auth, cases, department_desk, queue, reception, routing
from app.services.definitions import DefinitionRegistry

TZ = ZoneInfo("Asia/Tokyo")


@pytest.fixture
def office() -> str:
    return f"d{uuid.uuid4().hex[:8]}"


@pytest.fixture
def clerk(db: Session) -> User:
    return auth.create_user(db, username=f"k{uuid.uuid4().hex[:8]}", password="x" * 16, role="department",
                            department_id="kodomo")


def slip(db: Session, registry: DefinitionRegistry, office: str, model: dict[str, Any]) -> tuple[str, dict[str, RoutingStep]]:
    """The model household interviewed, its counter service over, and its routing slip."""
    case = cases.create_case(db, defs=registry.current, answers=model, user=None, office=office,
                             today=dt.date.today())
    queue.issue_ticket(db, case=case)
    queue.start_service(db, case_id=case.id, counter="1")
    queue.finish_service(db, case_id=case.id)
    steps = routing.build_slip(db, defs=registry.current, case=case, actor=None)
    return case.id, {s.department_id: s for s in steps}


def column_of(view: dict[str, Any], step_id: int) -> str:
    found = [c["key"] for c in view["columns"] for s in c["steps"] if s["id"] == step_id]
    assert len(found) == 1, found
    return found[0]


def test_columns_follow_prerequisites_and_status(db: Session, registry: DefinitionRegistry, office: str,
                                                 model_case: dict[str, Any], clerk: User) -> None:
    defs = registry.current
    case_id, steps = slip(db, registry, office, model_case)
    kodomo, shimin = steps["kodomo"], steps["shimin"]
    assert "shimin" in kodomo.depends_on

    def view(dep: str) -> dict[str, Any]:
        return department_desk.desk_view(db, defs=defs, department_id=dep, day=dt.datetime.now(TZ).date(), tz=TZ)

    before = view("kodomo")
    assert column_of(before, kodomo.id) == "later"
    later = next(s for c in before["columns"] if c["key"] == "later" for s in c["steps"] if s["id"] == kodomo.id)
    assert later["depends_on_names"] == ["市民課"] and later["ticket_label"] and later["memo"] == kodomo.note.splitlines()
    shimin_clerk = auth.create_user(db, username=f"s{uuid.uuid4().hex[:8]}", password="x" * 16, role="department",
                                    department_id="shimin")
    department_desk.act(db, defs=defs, department_id="shimin", step_id=shimin.id, action="claim", actor=shimin_clerk)
    assert column_of(view("shimin"), shimin.id) == "in_progress"
    department_desk.act(db, defs=defs, department_id="shimin", step_id=shimin.id, action="done", actor=shimin_clerk)
    assert column_of(view("shimin"), shimin.id) == "done"
    after = view("kodomo")
    assert column_of(after, kodomo.id) == "ready" and after["version"] != before["version"]

    department_desk.act(db, defs=defs, department_id="kodomo", step_id=kodomo.id, action="claim", actor=clerk)
    reason = department_desk.clean_reason("追加の書類が必要です", "  所得の証明 ")
    assert reason == "追加の書類が必要です。所得の証明"
    department_desk.act(db, defs=defs, department_id="kodomo", step_id=kodomo.id, action="needs-resident",
                        actor=clerk, reason=reason)
    db.refresh(kodomo)
    assert kodomo.status == "needs_resident" and kodomo.counter == "8" and kodomo.resident_reason == reason
    assert column_of(view("kodomo"), kodomo.id) == "needs_resident"
    # Another department's step id under one's own department is not found.
    with pytest.raises(NotFound):
        department_desk.act(db, defs=defs, department_id="kodomo", step_id=shimin.id, action="claim", actor=clerk)
    # A needs-resident without any reason is a field error.
    department_desk.act(db, defs=defs, department_id="kodomo", step_id=kodomo.id, action="resume", actor=clerk)
    with pytest.raises(ValidationFailed) as err:
        department_desk.act(db, defs=defs, department_id="kodomo", step_id=kodomo.id, action="needs-resident",
                            actor=clerk, reason=department_desk.clean_reason("", " "))
    assert err.value.details[0]["field"] == "reason"
    assert case_id


def test_a_department_call_is_on_the_board_and_done_ends_it(db: Session, registry: DefinitionRegistry, office: str,
                                                            model_case: dict[str, Any], clerk: User) -> None:
    defs = registry.current
    case_id, steps = slip(db, registry, office, model_case)
    kodomo = steps["kodomo"]
    kodomo.depends_on = []  # ready at once, for this test
    db.flush()
    department_desk.act(db, defs=defs, department_id="kodomo", step_id=kodomo.id, action="claim", actor=clerk)
    department_desk.act(db, defs=defs, department_id="kodomo", step_id=kodomo.id, action="call", actor=clerk,
                        counter="99")  # not one of the department's counters: its own counter is used
    ticket = db.get(QueueTicket, case_id)
    assert ticket is not None and (ticket.status, ticket.queue, ticket.counter) == ("called", "kodomo", "8")
    board = queue.board_view(db, office=office, day=ticket.day)
    assert [(r["label"], r["counter"], r["queue"]) for r in board["calling"]] == [(f"{ticket.number:03d}", "8", "kodomo")]
    called = db.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.kind == events.TICKET_CALLED))
    assert [e.data["queue"] for e in called] == ["kodomo"]
    # Calling again is a recall (the board announces it again: call_count changes).
    first = ticket.call_count
    department_desk.act(db, defs=defs, department_id="kodomo", step_id=kodomo.id, action="call", actor=clerk)
    db.refresh(ticket)
    assert ticket.call_count == first + 1 and ticket.status == "called"
    department_desk.act(db, defs=defs, department_id="kodomo", step_id=kodomo.id, action="done", actor=clerk)
    ticket = db.get(QueueTicket, case_id)
    assert ticket is not None and ticket.status == "done"
    assert queue.board_view(db, office=office, day=ticket.day)["calling"] == []


def test_no_call_while_another_counter_serves_the_resident(db: Session, registry: DefinitionRegistry,
                                                           office: str) -> None:
    case = cases.create_case(db, defs=registry.current, answers={"life_events": ["birth"]}, user=None, office=office,
                             today=dt.date.today(), draft=True)
    queue.issue_ticket(db, case=case)
    queue.start_service(db, case_id=case.id, counter="2")
    with pytest.raises(Conflict, match="ほかの窓口で対応中"):
        queue.call_to_counter(db, case_id=case.id, queue="kodomo", counter="8")
    with pytest.raises(ValidationFailed):
        queue.call_to_counter(db, case_id=case.id, queue="nope", counter="8", queues=registry.current.departments)
    ticket = db.get(QueueTicket, case.id)
    assert ticket is not None and (ticket.status, ticket.queue) == ("serving", "")


def test_reception_issues_a_priority_ticket_and_refuses_unknown_choices(db: Session, registry: DefinitionRegistry,
                                                                        office: str) -> None:
    defs = registry.current
    with pytest.raises(ValidationFailed) as err:
        reception.issue(db, defs=defs, life_events=[], priority_reason="", user=None, office=office,
                        today=dt.date.today())
    assert err.value.details == [{"field": "life_events", "message": "ご用件を1つ以上選んでください"}]
    with pytest.raises(ValidationFailed) as err:
        # marriage is one of the life events since the new ones were added; an event the interview lacks is refused.
        reception.issue(db, defs=defs, life_events=["lottery_win"], priority_reason="vip", user=None, office=office,
                        today=dt.date.today())
    assert {d["field"] for d in err.value.details} == {"life_events", "priority_reason"}
    plain, _ = reception.issue(db, defs=defs, life_events=["birth"], priority_reason="", user=None, office=office,
                               today=dt.date.today())
    case, ticket = reception.issue(db, defs=defs, life_events=["move_in", "move_in", "childcare"],
                                   priority_reason="appointment", user=None, office=office, today=dt.date.today())
    assert case.answers["life_events"] == ["move_in", "childcare"] and ticket.priority == 1
    view = reception.ticket_view(db, case_id=case.id, base_url="https://city.example/", tz=TZ)
    assert view["url"] == f"https://city.example/q/{case.status_token}" and view["ahead"] == 0
    assert queue.waiting_order(db, office=office, day=ticket.day, queue="")[0] == case.id  # the booking first
    assert reception.ticket_view(db, case_id=plain.id, base_url="https://city.example", tz=TZ)["ahead"] == 1
