"""Live updates across processes: one change watcher per process, fanning out to that process's SSE clients.

All state is in the database, so a change made through any app instance must reach phones connected
to every other instance. Each process runs one background task (started by the app's lifespan) that
every `live_poll_interval` seconds reads the newest rows of `case_events` — every state change
writes one — and wakes the subscribers it concerns: queue events (a ticket called, transferred, a new
arrival) move everybody's position, so they wake every subscriber; other events (a routing step done,
a satisfaction answer) wake only that visit's subscribers.

Why polling rather than PostgreSQL LISTEN/NOTIFY: the same code works on SQLite, costs one indexed
range scan per interval per process, and needs no dedicated connection. Ids are handed out when a row
is inserted but become visible when its transaction commits, which may be out of order; the watcher
therefore re-reads a window of recent ids and remembers which it has seen, so a late commit is not lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

import anyio
from fastapi import FastAPI
from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from app import events
from app.db import make_sessionmaker
from app.models import CaseEvent

log = logging.getLogger(__name__)

# Events that change the queue, hence every waiting ticket's position and the display board.
QUEUE_KINDS = frozenset({
    events.ARRIVAL, events.TICKET_CALLED, events.TICKET_RECALLED, events.TICKET_SKIPPED, events.TICKET_TRANSFERRED,
    events.SERVICE_STARTED, events.SERVICE_ENDED, events.DEPARTURE,
})
LOOKBACK = 256
MAX_SUBSCRIBERS = 20_000

Change = tuple[int, str, str]  # (event id, case id, kind)


class Subscriber:
    """One SSE client: woken when something it shows may have changed."""

    __slots__ = ("_event", "case_id")

    def __init__(self, case_id: str | None) -> None:
        self.case_id = case_id
        self._event = asyncio.Event()

    def wake(self) -> None:
        """Ask the client's stream to recompute (called on the event loop)."""
        self._event.set()

    async def wait(self, timeout: float) -> bool:
        """Wait until woken (True) or until the timeout passes (False)."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return False
        self._event.clear()
        return True


class Hub:
    """A process's subscribers and change counters; `running` only while the watcher is healthy."""

    def __init__(self) -> None:
        self.running = False
        self.closed = False
        self.queue_seq = 0
        self._tick = 0
        self._case_seq: dict[str, int] = {}
        self._subscribers: set[Subscriber] = set()

    @property
    def tick(self) -> int:
        """Bumped by every batch of changes (a cache built while it moved may be stale)."""
        return self._tick

    @property
    def subscriber_count(self) -> int:
        """How many SSE clients this process serves."""
        return len(self._subscribers)

    def subscribe(self, case_id: str | None) -> Subscriber:
        """Register a client for a visit (or None for the display board: queue changes only)."""
        sub = Subscriber(case_id)
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        """Forget a client whose stream ended."""
        self._subscribers.discard(sub)

    def versions(self, case_id: str) -> tuple[int, int]:
        """Counters that change whenever the queue, or this visit, changes (for caches)."""
        return self.queue_seq, self._case_seq.get(case_id, 0)

    def publish(self, changes: Iterable[Change]) -> int:
        """Apply newly seen events: bump the counters, wake the subscribers concerned; returns how many woke."""
        cases: set[str] = set()
        queue_changed = False
        for _event_id, case_id, kind in changes:
            cases.add(case_id)
            queue_changed = queue_changed or kind in QUEUE_KINDS
        if not cases:
            return 0
        self._tick += 1
        if len(self._case_seq) > 50_000:
            # Old visits' counters are only cache keys; dropping them merely forces one recompute.
            self._case_seq.clear()
            queue_changed = True
        for case_id in cases:
            self._case_seq[case_id] = self._tick
        if queue_changed:
            self.queue_seq = self._tick
        woken = 0
        for sub in list(self._subscribers):
            if queue_changed or sub.case_id in cases:
                sub.wake()
                woken += 1
        return woken

    def invalidate(self) -> None:
        """Something may have been missed (the watcher failed): force every cache to recompute."""
        self._tick += 1
        self.queue_seq = self._tick
        self._case_seq.clear()
        for sub in list(self._subscribers):
            sub.wake()

    def close(self) -> None:
        """The process is shutting down: wake every stream so it can end."""
        self.closed = True
        self.running = False
        for sub in list(self._subscribers):
            sub.wake()


class Watcher:
    """Reads newly committed events; `poll` is synchronous and runs in a worker thread."""

    def __init__(self, engine: Engine, hub: Hub, *, interval: float, lookback: int = LOOKBACK) -> None:
        self.engine = engine
        self.hub = hub
        self.interval = interval
        self.lookback = lookback
        self._high: int | None = None
        self._seen: set[Change] = set()

    def poll(self) -> list[Change]:
        """Events committed since the last poll (the first poll only learns where the log ends)."""
        with self.engine.connect() as conn:
            if self._high is None:
                high = conn.execute(select(func.max(CaseEvent.id))).scalar() or 0
            else:
                high = self._high
            floor = max(0, high - self.lookback)
            rows = [(int(r[0]), str(r[1]), str(r[2])) for r in conn.execute(
                select(CaseEvent.id, CaseEvent.case_id, CaseEvent.kind).where(CaseEvent.id > floor).order_by(CaseEvent.id)
            )]
        first = self._high is None
        new = [row for row in rows if row not in self._seen]
        self._seen = {row for row in self._seen if row[0] > floor} | set(rows)
        self._high = max([high, *(row[0] for row in rows)])
        return [] if first else new

    async def run(self) -> None:
        """Poll forever; a failing database is logged (once per outage) and retried."""
        failing = False
        while True:
            try:
                changes = await anyio.to_thread.run_sync(self.poll)
            except Exception as exc:  # the database may be restarting; keep the process serving
                if not failing:
                    log.warning("live watcher cannot read case_events: %s", type(exc).__name__)
                failing = True
                self.hub.running = False
                self.hub.invalidate()
            else:
                if failing:
                    log.info("live watcher reading case_events again")
                    # Events during the outage were not seen one by one: recompute everything once.
                    self.hub.invalidate()
                failing = False
                self.hub.running = True
                self.hub.publish(changes)
            await asyncio.sleep(self.interval)


def _sqlite_reader(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy owns BEGIN (see app.db)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def reader_engine(engine: Engine) -> Engine:
    """An engine for the watcher and the resident pages' reads that never takes SQLite's write lock.

    The app's SQLite engine begins every transaction IMMEDIATE (so that read-then-write requests queue
    instead of failing); polling phones and the watcher only read, and a deferred BEGIN lets them read
    a WAL snapshot next to the writers. PostgreSQL needs no such thing: the same engine is returned.
    """
    if engine.dialect.name != "sqlite":
        return engine
    reader = create_engine(engine.url, connect_args={"check_same_thread": False, "timeout": 10}, hide_parameters=True)
    event.listen(reader, "connect", _sqlite_reader)
    event.listen(reader, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
    return reader


def read_sessions(app: FastAPI) -> sessionmaker[Session]:
    """Sessions for read-only status queries: the reader engine while the watcher runs, else the app's own
    (tests replace the latter with their rolled-back connection and keep the watcher off)."""
    return getattr(app.state, "live_sessionmaker", None) or app.state.sessionmaker


async def start(app: FastAPI) -> None:
    """Start the process's watcher (lifespan startup); nothing happens when live_poll_interval is 0."""
    interval = float(app.state.settings.live_poll_interval)
    hub: Hub = app.state.live
    hub.closed = False
    if interval <= 0:
        return
    reader = reader_engine(app.state.engine)
    app.state.live_engine = reader
    app.state.live_sessionmaker = make_sessionmaker(reader)
    watcher = Watcher(reader, hub, interval=interval)
    app.state.live_task = asyncio.create_task(watcher.run(), name="kakanai-live-watcher")


async def stop(app: FastAPI) -> None:
    """Stop the watcher and end the streams (lifespan shutdown)."""
    hub: Hub = app.state.live
    hub.close()
    task: asyncio.Task[Any] | None = getattr(app.state, "live_task", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        app.state.live_task = None
    reader: Engine | None = getattr(app.state, "live_engine", None)
    if reader is not None and reader is not app.state.engine:
        reader.dispose()
    app.state.live_engine = app.state.live_sessionmaker = None
