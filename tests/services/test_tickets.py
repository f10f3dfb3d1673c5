"""Ticket numbers: per office and day, never duplicated, even under concurrent requests."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from typing import Any

from sqlalchemy import Engine, delete
from sqlalchemy.orm import Session

from app.db import make_sessionmaker, session_scope
from app.models import Case, TicketCounter
from app.services import cases
from app.services.definitions import DefinitionRegistry

DAY = dt.date(2026, 4, 6)


def test_numbers_restart_per_office_and_day(db: Session) -> None:
    office = f"t{uuid.uuid4().hex[:8]}"
    assert [cases.next_ticket_number(db, office=office, day=DAY) for _ in range(3)] == [1, 2, 3]
    assert cases.next_ticket_number(db, office=office, day=DAY + dt.timedelta(days=1)) == 1
    assert cases.next_ticket_number(db, office=office + "x", day=DAY) == 1


def test_50_concurrent_case_creations_get_50_distinct_tickets(
    engine: Engine, registry: DefinitionRegistry, model_case_raw: dict[str, Any]
) -> None:
    # Real commits on separate connections: this is the race the unique counter must win.
    office = f"c{uuid.uuid4().hex[:8]}"
    factory = make_sessionmaker(engine)
    barrier = threading.Barrier(50)
    numbers: list[int] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def create() -> None:
        try:
            barrier.wait(timeout=30)
            for session in session_scope(factory):
                case = cases.create_case(session, defs=registry.current, answers=model_case_raw, user=None,
                                         office=office, today=DAY)
                number = case.ticket_number
            with lock:
                numbers.append(number)
        except BaseException as exc:  # collected and asserted below
            with lock:
                failures.append(exc)

    threads = [threading.Thread(target=create) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    try:
        assert not failures, failures[:3]
        assert sorted(numbers) == list(range(1, 51))
    finally:
        for session in session_scope(factory):
            session.execute(delete(Case).where(Case.office == office))
            session.execute(delete(TicketCounter).where(TicketCounter.office == office))
