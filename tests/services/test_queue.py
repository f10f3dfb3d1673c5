"""The queue: priority order, call / recall / skip / requeue / transfer / serve, concurrent counters,
the wait estimate and its measured error on hand-made timelines."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from app import events
from app.db import make_sessionmaker, session_scope
from app.errors import Conflict, ValidationFailed
from app.models import Case, CaseEvent, QueueTicket, TicketCounter
from app.services import cases, queue
from app.services.definitions import DefinitionRegistry
from app.services.wait_estimate import WaitDefaults, percentile, service_stats

DAY = dt.date(2026, 4, 6)
T0 = dt.datetime(2026, 4, 6, 0, 0, tzinfo=dt.UTC)  # 9:00 in Tokyo
DEFAULTS = WaitDefaults(service_minutes={"": 20.0, "kodomo": 10.0}, open_counters={"": 2, "kodomo": 1})
QUEUES = ("shimin", "kodomo", "hoiku")


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


@pytest.fixture
def office() -> str:
    return f"q{uuid.uuid4().hex[:8]}"


def visit(db: Session, registry: DefinitionRegistry, office: str, minute: float = 0, **kwargs: Any) -> QueueTicket:
    """A draft visit (life events only) and its ticket, issued at T0 + minute."""
    case = cases.create_case(db, defs=registry.current, answers={"life_events": ["move_in"]}, user=None,
                             office=office, today=DAY, draft=True, now=at(minute))
    return queue.issue_ticket(db, case=case, now=at(minute), defaults=DEFAULTS, queues=QUEUES, **kwargs)


def kinds(db: Session, ticket: QueueTicket) -> list[str]:
    return list(db.scalars(select(CaseEvent.kind).where(CaseEvent.case_id == ticket.case_id).order_by(CaseEvent.id)))


def call(db: Session, office: str, counter: str = "1", minute: float = 0, q: str = "") -> QueueTicket | None:
    return queue.call_next(db, office=office, day=DAY, counter=counter, queue=q, now=at(minute), queues=QUEUES)


def test_priority_first_then_issue_order(db: Session, registry: DefinitionRegistry, office: str) -> None:
    first = visit(db, registry, office, 0)
    second = visit(db, registry, office, 1)
    booked = visit(db, registry, office, 2, priority_reason="appointment")
    wheelchair = visit(db, registry, office, 3, priority=3, priority_reason="accessibility")
    assert booked.priority == 1  # a reason without a number still goes first
    order = [call(db, office, minute=10).number for _ in range(4)]  # type: ignore[union-attr]
    assert order == [wheelchair.number, booked.number, first.number, second.number]
    assert call(db, office, minute=11) is None


def test_call_records_counter_and_event(db: Session, registry: DefinitionRegistry, office: str) -> None:
    ticket = visit(db, registry, office)
    called = call(db, office, counter="３番", minute=5)  # full-width digits are normalised
    assert called is not None and called.case_id == ticket.case_id
    assert (called.status, called.counter, called.call_count, called.called_at) == ("called", "3番", 1, at(5))
    assert kinds(db, ticket)[-1] == events.TICKET_CALLED
    event = db.scalars(select(CaseEvent).where(CaseEvent.case_id == ticket.case_id, CaseEvent.kind == events.TICKET_CALLED)).one()
    assert event.data == {"counter": "3番", "queue": ""}


def test_skipped_ticket_is_not_called_again_unless_recalled(db: Session, registry: DefinitionRegistry, office: str) -> None:
    absent = visit(db, registry, office, 0)
    other = visit(db, registry, office, 1)
    assert call(db, office, "2", 5).case_id == absent.case_id  # type: ignore[union-attr]
    queue.skip(db, case_id=absent.case_id, now=at(8))
    assert absent.status == "skipped"
    assert call(db, office, "2", 9).case_id == other.case_id  # type: ignore[union-attr]
    assert call(db, office, "2", 10) is None  # the skipped ticket stays out of the queue
    recalled = queue.recall(db, case_id=absent.case_id, now=at(12))
    assert (recalled.status, recalled.counter, recalled.call_count) == ("called", "2", 2)
    assert kinds(db, absent)[-3:] == [events.TICKET_CALLED, events.TICKET_SKIPPED, events.TICKET_RECALLED]


def test_recall_to_another_counter_and_requeue(db: Session, registry: DefinitionRegistry, office: str) -> None:
    ticket = visit(db, registry, office, 0)
    call(db, office, "1", 1)
    again = queue.recall(db, case_id=ticket.case_id, counter="4", now=at(2))
    assert (again.counter, again.call_count) == ("4", 2)
    queue.skip(db, case_id=ticket.case_id, now=at(3))
    later = visit(db, registry, office, 4)
    back = queue.requeue(db, case_id=ticket.case_id, now=at(20))
    assert (back.status, back.counter) == ("waiting", "")
    # It keeps its place by issue time: the resident who came back first is called before the later ticket.
    assert call(db, office, "1", 21).case_id == ticket.case_id  # type: ignore[union-attr]
    assert call(db, office, "1", 22).case_id == later.case_id  # type: ignore[union-attr]
    with pytest.raises(Conflict, match="不在の整理券だけ"):
        queue.requeue(db, case_id=later.case_id)


def test_transfer_to_a_department_queue(db: Session, registry: DefinitionRegistry, office: str) -> None:
    ticket = visit(db, registry, office, 0)
    call(db, office, "1", 1)
    queue.start_service(db, case_id=ticket.case_id, now=at(2))
    moved = queue.transfer(db, case_id=ticket.case_id, to_queue="kodomo", now=at(12), queues=QUEUES)
    assert (moved.status, moved.queue, moved.counter) == ("waiting", "kodomo", "")
    # The service at the first counter ended when it was handed over.
    assert kinds(db, ticket)[-3:] == [events.SERVICE_STARTED, events.SERVICE_ENDED, events.TICKET_TRANSFERRED]
    transferred = db.scalars(select(CaseEvent).where(CaseEvent.case_id == ticket.case_id,
                                                     CaseEvent.kind == events.TICKET_TRANSFERRED)).one()
    assert transferred.data == {"counter": "", "queue": "kodomo", "from": "", "to": "kodomo"}
    assert call(db, office, "1", 13) is None  # not in the one-stop queue any more
    assert call(db, office, "8", 14, q="kodomo").case_id == ticket.case_id  # type: ignore[union-attr]
    with pytest.raises(ValidationFailed) as err:
        queue.transfer(db, case_id=ticket.case_id, to_queue="nosuch", queues=QUEUES)
    assert err.value.details == [{"field": "to_queue", "message": "この課の待ち列はありません"}]


def test_transfer_to_one_counter_is_called_only_by_it(db: Session, registry: DefinitionRegistry, office: str) -> None:
    ticket = visit(db, registry, office, 0)
    call(db, office, "1", 1)
    queue.transfer(db, case_id=ticket.case_id, to_queue="", to_counter="5", now=at(2))
    assert call(db, office, "1", 3) is None
    assert call(db, office, "5", 4).case_id == ticket.case_id  # type: ignore[union-attr]


def test_service_start_and_finish(db: Session, registry: DefinitionRegistry, office: str) -> None:
    ticket = visit(db, registry, office)
    with pytest.raises(Conflict, match="対応中の整理券だけ"):
        queue.finish_service(db, case_id=ticket.case_id)
    call(db, office, "2", 3)
    served = queue.start_service(db, case_id=ticket.case_id, now=at(4))
    assert (served.status, served.served_at) == ("serving", at(4))
    done = queue.finish_service(db, case_id=ticket.case_id, now=at(11))
    assert (done.status, done.finished_at) == ("done", at(11))
    assert kinds(db, ticket)[-3:] == [events.TICKET_CALLED, events.SERVICE_STARTED, events.SERVICE_ENDED]
    with pytest.raises(Conflict, match="対応が終わった整理券は回せません"):
        queue.transfer(db, case_id=ticket.case_id, to_queue="kodomo", queues=QUEUES)


def test_refusals(db: Session, registry: DefinitionRegistry, office: str) -> None:
    ticket = visit(db, registry, office)
    with pytest.raises(Conflict, match="呼び出し中の整理券だけを不在に"):
        queue.skip(db, case_id=ticket.case_id)
    with pytest.raises(Conflict, match="すでに整理券があります"):
        queue.issue_ticket(db, case=db.get(Case, ticket.case_id))  # type: ignore[arg-type]
    call(db, office, "1", 1)
    with pytest.raises(Conflict, match="他の窓口で先に操作されました") as stale:
        queue.skip(db, case_id=ticket.case_id, expected_version=1)
    assert stale.value.current_version == 2
    with pytest.raises(ValidationFailed) as err:
        queue.call_next(db, office=office, day=DAY, counter="  ")
    assert err.value.details == [{"field": "counter", "message": "窓口番号を入力してください"}]
    with pytest.raises(ValidationFailed) as err:
        visit(db, registry, office, 2, priority_reason="vip")
    assert err.value.details[0]["field"] == "priority_reason"


def test_board_shows_numbers_and_counters_only(db: Session, registry: DefinitionRegistry, office: str) -> None:
    tickets = [visit(db, registry, office, i) for i in range(4)]
    for i in range(3):
        call(db, office, str(i + 1), 10 + i)
    queue.start_service(db, case_id=tickets[0].case_id, now=at(15))
    board = queue.board_view(db, office=office, day=DAY)
    assert [r["number"] for r in board["calling"]] == [tickets[2].number, tickets[1].number]
    assert [(r["number"], r["counter"]) for r in board["recent"]] == [(tickets[0].number, "1")]
    assert board["waiting_total"] == 1
    assert set(board["calling"][0]) == {"number", "label", "counter", "queue", "call_count", "called_at"}


# --- concurrency -----------------------------------------------------------------------------------


def test_concurrent_call_next_never_hands_out_one_ticket_twice(engine: Engine, registry: DefinitionRegistry) -> None:
    # Real commits on separate connections: eight counters pressing "next" at once, over and over.
    office = f"cc{uuid.uuid4().hex[:8]}"
    factory = make_sessionmaker(engine)
    for session in session_scope(factory):
        for i in range(24):
            case = cases.create_case(session, defs=registry.current, answers={"life_events": ["move_in"]}, user=None,
                                     office=office, today=DAY, draft=True, now=at(i))
            queue.issue_ticket(session, case=case, now=at(i), defaults=DEFAULTS)
    barrier = threading.Barrier(8)
    called: list[tuple[str, str]] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def counter(name: str) -> None:
        try:
            barrier.wait(timeout=30)
            while True:
                for session in session_scope(factory):
                    ticket = queue.call_next(session, office=office, day=DAY, counter=name)
                    got = ticket.case_id if ticket else None
                if got is None:
                    return
                with lock:
                    called.append((got, name))
        except BaseException as exc:  # collected and asserted below
            with lock:
                failures.append(exc)

    threads = [threading.Thread(target=counter, args=(str(n),)) for n in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert not failures, failures[:3]
        ids = [case_id for case_id, _ in called]
        assert len(ids) == 24 and len(set(ids)) == 24
        with Session(engine) as s:
            rows = s.execute(select(QueueTicket.case_id, QueueTicket.counter, QueueTicket.call_count)
                             .where(QueueTicket.office == office)).all()
            assert {r.case_id: r.counter for r in rows} == dict(called)
            assert {r.call_count for r in rows} == {1}
            assert s.scalar(select(CaseEvent.id).join(Case).where(Case.office == office, CaseEvent.kind == "ticket_called")
                            .limit(1)) is not None
            assert len(s.scalars(select(CaseEvent.id).join(Case).where(
                Case.office == office, CaseEvent.kind == events.TICKET_CALLED)).all()) == 24
    finally:
        with Session(engine) as s:
            s.execute(delete(Case).where(Case.office == office))
            s.execute(delete(TicketCounter).where(TicketCounter.office == office))
            s.commit()


# --- wait estimate -----------------------------------------------------------------------------------


def serve(db: Session, ticket: QueueTicket, counter: str, start: float, minutes: float) -> None:
    """A hand-made service: started at `start` (the ticket was just called), finished `minutes` later."""
    queue.start_service(db, case_id=ticket.case_id, counter=counter, now=at(start))
    queue.finish_service(db, case_id=ticket.case_id, now=at(start + minutes))


def test_estimate_uses_defaults_without_history(db: Session, registry: DefinitionRegistry, office: str) -> None:
    estimates = [visit(db, registry, office, i * 0.1).estimated_wait_minutes for i in range(4)]
    # 20 minutes per resident (the one-stop default) over 2 counters: 0, 10, 20, 30.
    assert estimates == [0.0, 10.0, 20.0, 30.0]


def test_estimate_from_median_of_recent_services(db: Session, registry: DefinitionRegistry, office: str) -> None:
    served = [visit(db, registry, office, i) for i in range(5)]
    # Services of 4, 6, 8, 30 and 5 minutes at two counters, between 9:05 and 10:00.
    for ticket, (counter, start, minutes) in zip(served, [("1", 5, 4), ("2", 5, 6), ("1", 10, 8), ("2", 12, 30),
                                                          ("1", 55, 5)], strict=True):
        call(db, office, counter, start)
        serve(db, ticket, counter, start, minutes)
    waiting = [visit(db, registry, office, 61 + i * 0.1) for i in range(4)]
    stats = service_stats(db, office=office, day=DAY, queue="", now=at(61), defaults=DEFAULTS)
    # Median of 4, 5, 6, 8, 30 is 6; only counter 1 served in the last 30 minutes.
    assert (stats.median_service_minutes, stats.samples, stats.open_counters, stats.from_default) == (6.0, 5, 1, False)
    assert waiting[3].estimated_wait_minutes == 18.0  # 3 ahead × 6 min ÷ 1 counter
    # At 9:59 the 5-minute service (ended 10:00) had not ended yet: median of 4, 6, 8, 30 is 7.
    assert service_stats(db, office=office, day=DAY, queue="", now=at(59), defaults=DEFAULTS).median_service_minutes == 7.0
    # The window keeps the last N services by end time (9:09, 9:11, 9:18, 9:42, 10:00): 8, 30, 5.
    narrow = WaitDefaults(service_minutes={"": 20.0}, window=3)
    assert service_stats(db, office=office, day=DAY, queue="", now=at(61), defaults=narrow).median_service_minutes == 8.0


def test_department_queue_falls_back_to_its_default(db: Session, registry: DefinitionRegistry, office: str) -> None:
    visit(db, registry, office, 0, queue="kodomo")
    second = visit(db, registry, office, 1, queue="kodomo")
    assert second.estimated_wait_minutes == 10.0  # kodomo: 10 minutes, 1 counter


def test_estimate_error_report_on_a_hand_made_day(db: Session, registry: DefinitionRegistry, office: str) -> None:
    # (issued at, told, first called at) in minutes: errors +2, -4, +6, 0, +10.
    timeline = [(0, 0.0, 2), (1, 15.0, 12), (2, 10.0, 18), (3, 20.0, 23), (4, 15.0, 29)]
    tickets = []
    for issued, told, _called in timeline:
        ticket = visit(db, registry, office, issued)
        ticket.estimated_wait_minutes = told  # what the resident was told (hand-made, not computed)
        tickets.append(ticket)
    db.flush()
    for ticket, (_issued, _told, called_at) in zip(tickets, timeline, strict=True):
        assert call(db, office, "1", called_at).case_id == ticket.case_id  # type: ignore[union-attr]
    never_called = visit(db, registry, office, 30)
    never_called.estimated_wait_minutes = 1.0
    # A recall, and a second call after a transfer, do not change the measured wait: the first call counts.
    queue.recall(db, case_id=tickets[0].case_id, now=at(40))
    queue.transfer(db, case_id=tickets[1].case_id, to_queue="", now=at(41))
    assert call(db, office, "2", 45).case_id == tickets[1].case_id  # type: ignore[union-attr]
    report = queue.estimate_error_report(db, office, DAY)
    assert report["count"] == 5
    assert report["mean_error_minutes"] == 2.8
    assert report["mean_absolute_error_minutes"] == 4.4
    assert report["p50_error_minutes"] == 2.0
    assert report["p90_error_minutes"] == 8.4
    assert report["p50_absolute_error_minutes"] == 4.0
    assert report["p90_absolute_error_minutes"] == 8.4
    empty = queue.estimate_error_report(db, office + "x", DAY)
    assert empty["count"] == 0 and empty["mean_absolute_error_minutes"] is None


def test_percentile_matches_linear_interpolation() -> None:
    assert percentile([1, 2, 3, 4], 0.5) == 2.5
    assert percentile([10], 0.9) == 10
    assert percentile([-4, 0, 2, 6, 10], 0.9) == pytest.approx(8.4)
