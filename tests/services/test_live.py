"""The per-process change watcher and its fan-out: who is woken, late commits, caches, start and stop."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete
from sqlalchemy.orm import Session

from app import events
from app.main import create_app
from app.models import Case, CaseEvent, RoutingStep, TicketCounter
from app.services import cases, queue, resident_status
from app.services.definitions import DefinitionRegistry
from app.services.live import Hub, Watcher, reader_engine
from app.services.wait_estimate import WaitDefaults
from app.settings import Settings

DAY = dt.date(2026, 4, 6)


def test_queue_events_wake_everyone_other_events_only_their_visit() -> None:
    async def scenario() -> None:
        hub = Hub()
        a, b, board = hub.subscribe("case-a"), hub.subscribe("case-b"), hub.subscribe(None)
        assert hub.publish([(1, "case-a", events.STEP_DONE)]) == 1
        assert await a.wait(0.01) and not await b.wait(0.01) and not await board.wait(0.01)
        queue_seq = hub.queue_seq
        before_b = hub.versions("case-b")
        assert hub.publish([(2, "case-b", events.TICKET_CALLED)]) == 3
        assert await a.wait(0.01) and await b.wait(0.01) and await board.wait(0.01)
        assert hub.queue_seq != queue_seq and hub.versions("case-b") != before_b
        assert hub.publish([]) == 0
        hub.unsubscribe(a)
        assert hub.subscriber_count == 2
        hub.close()
        assert hub.closed and await b.wait(0.01)

    asyncio.run(scenario())


@pytest.fixture
def office(engine: Engine) -> Iterator[str]:
    """A unique office whose committed rows are deleted afterwards."""
    name = f"l{uuid.uuid4().hex[:8]}"
    yield name
    with Session(engine) as s:
        s.execute(delete(Case).where(Case.office == name))
        s.execute(delete(TicketCounter).where(TicketCounter.office == name))
        s.commit()


def new_case(engine: Engine, registry: DefinitionRegistry, office: str) -> str:
    with Session(engine) as s:
        case = cases.create_case(s, defs=registry.current, answers={"life_events": ["move_in"]}, user=None, office=office,
                                 today=DAY, draft=True)
        s.commit()
        return case.id


def add_event(session: Session, case_id: str, kind: str) -> int:
    event = CaseEvent(case_id=case_id, kind=kind, data={})
    session.add(event)
    session.flush()
    return event.id


def test_watcher_reports_each_committed_event_once(engine: Engine, registry: DefinitionRegistry, office: str) -> None:
    case_id = new_case(engine, registry, office)
    # The reader engine: on SQLite the watcher must not queue behind (or block) writers.
    watcher = Watcher(reader_engine(engine), Hub(), interval=0.1)
    assert watcher.poll() == []  # the first poll only learns where the log ends
    with Session(engine) as s:
        event_id = add_event(s, case_id, events.STEP_DONE)
        assert watcher.poll() == []  # not committed yet
        s.commit()
    assert watcher.poll() == [(event_id, case_id, events.STEP_DONE)]
    assert watcher.poll() == []


def test_watcher_sees_a_late_commit_of_an_earlier_id(
    engine: Engine, registry: DefinitionRegistry, office: str, is_postgres: bool,
) -> None:
    if not is_postgres:
        pytest.skip("SQLite has one writer at a time: ids always commit in order")
    case_id = new_case(engine, registry, office)
    watcher = Watcher(engine, Hub(), interval=0.1)
    watcher.poll()
    with Session(engine) as slow, Session(engine) as fast:
        early = add_event(slow, case_id, events.TICKET_CALLED)
        late = add_event(fast, case_id, events.STEP_DONE)
        assert early < late
        fast.commit()
        assert watcher.poll() == [(late, case_id, events.STEP_DONE)]
        slow.commit()
    assert watcher.poll() == [(early, case_id, events.TICKET_CALLED)]


def test_watcher_task_wakes_a_subscriber(engine: Engine, registry: DefinitionRegistry, office: str) -> None:
    case_id = new_case(engine, registry, office)

    async def scenario() -> float:
        hub = Hub()
        task = asyncio.create_task(Watcher(reader_engine(engine), hub, interval=0.05).run())
        try:
            for _ in range(100):
                if hub.running:
                    break
                await asyncio.sleep(0.02)
            sub = hub.subscribe(case_id)
            loop = asyncio.get_running_loop()
            started = loop.time()

            def commit() -> None:
                with Session(engine) as s:
                    add_event(s, case_id, events.STEP_DONE)
                    s.commit()

            await asyncio.to_thread(commit)
            assert await sub.wait(2.0)
            return loop.time() - started
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    assert asyncio.run(scenario()) < 1.0


def test_status_cache_is_reused_until_the_visit_or_the_queue_changes(
    db: Session, registry: DefinitionRegistry,
) -> None:
    office = f"s{uuid.uuid4().hex[:8]}"

    def new_visit() -> Case:
        case = cases.create_case(db, defs=registry.current, answers={"life_events": ["move_in"]}, user=None,
                                 office=office, today=DAY, draft=True)
        queue.issue_ticket(db, case=case)
        return case

    ahead, case = new_visit(), new_visit()
    step = RoutingStep(case_id=case.id, department_id="shimin", applications=["jumin_tennyu"], status="pending")
    db.add(step)
    db.flush()
    hub = Hub()
    hub.running = True
    cache = resident_status.StatusCache(hub)

    def status() -> dict[str, Any]:
        return resident_status.build_status(db, token=case.status_token, defs=registry.current, defaults=WaitDefaults(),
                                            cache=cache)

    assert status()["queue"]["ahead"] == 1
    assert resident_status.cached_status(cache, case.status_token)["queue"]["ahead"] == 1  # type: ignore[index]
    step.status = "in_progress"
    queue.call_next(db, office=office, day=DAY, counter="1")  # the visit ahead is called...
    db.flush()
    # ...but nothing was published yet: both parts come from the cache, without reading the database.
    stale = resident_status.cached_status(cache, case.status_token)
    assert stale is not None and stale["steps"][0]["status"] == "pending" and stale["queue"]["ahead"] == 1
    hub.publish([(1, "another-visit", events.STEP_DONE)])  # another visit's step: nothing here changes
    assert status()["steps"][0]["status"] == "pending"
    hub.publish([(2, ahead.id, events.TICKET_CALLED)])  # a queue event: the position is read again
    moved = status()
    assert moved["queue"]["ahead"] == 0 and moved["steps"][0]["status"] == "pending"
    hub.publish([(3, case.id, events.STEP_CLAIMED)])  # this visit's event: its own part is read again
    assert status()["steps"][0]["status"] == "in_progress"
    step.status = "done"
    db.flush()
    hub.running = False  # a failing watcher: nothing is served from the cache
    assert resident_status.cached_status(cache, case.status_token) is None
    assert status()["steps"][0]["status"] == "done"


def test_lifespan_starts_and_stops_the_watcher(settings: Settings, registry: DefinitionRegistry) -> None:
    app = create_app(settings.model_copy(update={"live_poll_interval": 0.05}), definitions=registry)
    with TestClient(app):
        task = app.state.live_task
        assert task is not None and not task.done()
    assert task.done() and app.state.live.closed and app.state.live_task is None
    quiet = create_app(settings, definitions=registry)  # live_poll_interval=0 in the test settings
    with TestClient(quiet):
        assert getattr(quiet.state, "live_task", None) is None
