"""Live updates across processes: one change watcher per process, fanning out to that process's SSE clients.

All state is in the database, so a change made through any app instance must reach phones connected
to every other instance. Each process runs one background task (started by the app's lifespan) that
every `live_poll_interval` seconds reads the newest rows of `case_events` — every state change
writes one — and wakes the subscribers it concerns: queue events (a ticket called, transferred, a new
arrival) move everybody's position, so they wake every subscriber; other events (a routing step done,
a satisfaction answer) wake only that visit's subscribers.

On PostgreSQL, instances also tell each other directly: every transaction that writes events sends
`NOTIFY kakanai_events` with them (delivered when it commits, dropped when it rolls back), and each
process holds one LISTEN connection that publishes them to its hub at once. Polling stays as the
safety net, slower (`live_fallback_poll_interval`) while the listener is connected; when it drops,
polling goes back to `live_poll_interval` until it reconnects. SQLite (one instance) only polls.
Ids are handed out when a row is inserted but become visible when its transaction commits, which may
be out of order; the watcher therefore re-reads a window of recent ids and remembers which it has
seen, so a late commit is not lost, and an event both notified and polled is published once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

import anyio
from fastapi import FastAPI
from sqlalchemy import Engine, create_engine, event, func, select, text
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
        self.listening = False  # a PostgreSQL LISTEN connection is up (see Listener)
        self.notified = 0  # changes first learnt from a NOTIFY (the rest came from polling)
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

    def __init__(self, engine: Engine, hub: Hub, *, interval: float, lookback: int = LOOKBACK,
                 fallback_interval: float | None = None) -> None:
        self.engine = engine
        self.hub = hub
        self.interval = interval
        self.fallback_interval = max(interval, fallback_interval or interval)
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

    def notified(self, changes: list[Change]) -> int:
        """Changes NOTIFY announced: published now unless already seen (returns how many were new)."""
        new = [c for c in dict.fromkeys(changes) if c not in self._seen]
        self._seen.update(new)
        self.hub.notified += len(new)
        self.hub.publish(new)
        return len(new)

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
            await asyncio.sleep(self.fallback_interval if self.hub.listening else self.interval)


# --- PostgreSQL LISTEN/NOTIFY: instances wake each other's subscribers directly ----------------------

CHANNEL = "kakanai_events"
BATCH_SECONDS = 0.05


def _collect_events(session: Session, _flush_context: Any) -> None:
    # after_flush: the flushed CaseEvents have their ids; NOTIFY them in the same transaction (sent on
    # commit, dropped with a rollback).
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return
    payloads = [f"{obj.id}:{obj.case_id}:{obj.kind}" for obj in session.new if isinstance(obj, CaseEvent)]
    if not payloads:
        return
    conn = session.connection()
    for payload in payloads:
        conn.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": payload})


def install_notify() -> None:
    """Every session sends NOTIFY for the events it writes on PostgreSQL (idempotent)."""
    if not event.contains(Session, "after_flush", _collect_events):
        event.listen(Session, "after_flush", _collect_events)


def parse_payload(payload: str) -> Change | None:
    """`id:case_id:kind` as sent by `_collect_events` (None for anything else)."""
    parts = payload.split(":", 2)
    if len(parts) != 3 or not parts[0].isdigit():
        return None
    return int(parts[0]), parts[1], parts[2]


class Listener:
    """One LISTEN connection per process; reconnects after a failure (polling covers the gap)."""

    def __init__(self, engine: Engine, watcher: Watcher, *, retry_seconds: float = 2.0) -> None:
        self.url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.watcher = watcher
        self.retry_seconds = retry_seconds
        self._pending: list[Change] = []

    def _queue(self, change: Change) -> None:
        # Changes arriving together (a transaction writes several events; a burst of tickets) are
        # published as one batch BATCH_SECONDS later: every woken stream recomputes once, not per event.
        self._pending.append(change)
        if len(self._pending) == 1:
            asyncio.get_running_loop().call_later(BATCH_SECONDS, self._flush)

    def _flush(self) -> None:
        changes, self._pending = self._pending, []
        self.watcher.notified(changes)

    async def run(self) -> None:
        """Listen forever: publish notified changes at once (in batches of BATCH_SECONDS)."""
        import psycopg

        hub = self.watcher.hub
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True, connect_timeout=5)
                try:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    hub.listening = True
                    # Events committed while not listening were only seen by polling: look once now.
                    hub.invalidate()
                    async for note in conn.notifies():
                        change = parse_payload(note.payload)
                        if change is not None:
                            self._queue(change)
                finally:
                    hub.listening = False
                    await conn.close()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database restarts: poll at full speed until it is back
                hub.listening = False
                log.warning("live listener disconnected: %s", type(exc).__name__)
            await asyncio.sleep(self.retry_seconds)


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
    pool = engine.pool
    sizes = {"pool_size": pool.size(), "max_overflow": getattr(pool, "_max_overflow", 10)} if hasattr(pool, "size") else {}
    reader = create_engine(engine.url, connect_args={"check_same_thread": False, "timeout": 10}, hide_parameters=True,
                           **sizes)
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
    settings = app.state.settings
    watcher = Watcher(reader, hub, interval=interval, fallback_interval=settings.live_fallback_poll_interval)
    app.state.live_task = asyncio.create_task(watcher.run(), name="kakanai-live-watcher")
    if reader.dialect.name == "postgresql" and settings.live_listen:
        listener = Listener(reader, watcher)
        app.state.live_listen_task = asyncio.create_task(listener.run(), name="kakanai-live-listener")


async def stop(app: FastAPI) -> None:
    """Stop the watcher and end the streams (lifespan shutdown)."""
    hub: Hub = app.state.live
    hub.close()
    for name in ("live_listen_task", "live_task"):
        task: asyncio.Task[Any] | None = getattr(app.state, name, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            setattr(app.state, name, None)
    reader: Engine | None = getattr(app.state, "live_engine", None)
    if reader is not None and reader is not app.state.engine:
        reader.dispose()
    app.state.live_engine = app.state.live_sessionmaker = None
