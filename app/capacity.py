"""The request path under load: it cannot stall (docs/reliability.md "Capacity").

The stall this prevents: sync endpoints and dependencies run in anyio's thread pool, one trip per
dependency, the endpoint and the response serialisation. A request that holds a database lock (or a
pooled connection) between two trips needs a free thread to go on; if every thread is blocked waiting
for that lock (or for a connection), nobody moves until timeouts fire. Three rules make it impossible:

1. Admission: at most `db_pool_size` requests per process hold a database session at once. The
   others wait on an async semaphore, which holds no thread, and get a 503 after `db_wait_timeout`.
   The thread pool (`worker_threads`) is larger than the pool, so a request that holds a session
   always finds a thread for its next trip.
2. Commit in the endpoint's own thread: a sync endpoint's transaction is committed at the end of the
   same trip that did the work, so no lock is held while the response is serialised (another trip).
3. A deadline: a request not answered after `request_timeout` gets a 503 at once; its transaction is
   rolled back when it finally returns (never half-saved, never committed after the 503).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import ServiceUnavailable

log = logging.getLogger(__name__)

BUSY_MESSAGE = "ただいま混み合っています。しばらくしてからもう一度お試しください"
TIMEOUT_MESSAGE = "処理に時間がかかっています。入力内容は保存されていません。しばらくしてからもう一度お試しください"

# The session of the request being served (set by the session dependency, read by the endpoint wrapper).
current_session: contextvars.ContextVar[Session | None] = contextvars.ContextVar("kakanai_session", default=None)


class RequestFate:
    """Whether a request was abandoned by its deadline or is committing; decided once, under a lock."""

    __slots__ = ("_lock", "abandoned", "committing")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.abandoned = False
        self.committing = False

    def start_commit(self) -> bool:
        """True if the request may commit (its 503 has not been sent); from then on it will not be."""
        with self._lock:
            if self.abandoned:
                return False
            self.committing = True
            return True

    def abandon(self) -> bool:
        """True if the request is abandoned now (it had not started committing)."""
        with self._lock:
            if self.committing:
                return False
            self.abandoned = True
            return True


class DatabaseGate:
    """Admission to the database: `permits` sessions at once per process, waiting holds no thread."""

    def __init__(self, permits: int, wait_timeout: float) -> None:
        self.permits = permits
        self.wait_timeout = wait_timeout
        self._semaphores: dict[int, asyncio.Semaphore] = {}

    def _semaphore(self) -> asyncio.Semaphore:
        # One per event loop (test clients may run several loops one after another).
        loop = asyncio.get_running_loop()
        sem = self._semaphores.get(id(loop))
        if sem is None:
            self._semaphores = {id(loop): (sem := asyncio.Semaphore(self.permits))}
        return sem

    async def acquire(self) -> asyncio.Semaphore:
        """Wait for a permit (ServiceUnavailable after `wait_timeout`); release it on the returned semaphore."""
        sem = self._semaphore()
        try:
            await asyncio.wait_for(sem.acquire(), self.wait_timeout)
        except TimeoutError:
            raise ServiceUnavailable(BUSY_MESSAGE) from None
        return sem


def gate(app: FastAPI) -> DatabaseGate:
    """The process's database gate (built from the settings on first use)."""
    found: DatabaseGate | None = getattr(app.state, "db_gate", None)
    if found is None:
        settings = app.state.settings
        found = app.state.db_gate = DatabaseGate(settings.db_pool_size, settings.db_wait_timeout)
    return found


async def run_unlimited(func: Callable[..., Any], *args: Any) -> Any:
    """Run `func` in a thread outside the shared pool's limit: finishing a transaction (commit,
    rollback, close) must never wait for a thread, or a lock holder could wait behind the lock's waiters."""
    return await anyio.to_thread.run_sync(functools.partial(func, *args), limiter=anyio.CapacityLimiter(1))


def commit_in_endpoint(func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a sync endpoint so that the request's transaction is committed at the end of its own trip."""

    @functools.wraps(func)
    def endpoint(*args: Any, **kwargs: Any) -> Any:
        session = current_session.get()
        if session is not None and "endpoint_bind" in session.info:
            # SQLite: end the dependencies' read snapshot; the endpoint's work begins IMMEDIATE now.
            if session.in_transaction():
                session.commit()
            session.bind = session.info.pop("endpoint_bind")
        result = func(*args, **kwargs)
        session = current_session.get()
        if session is not None and session.in_transaction():
            fate: RequestFate | None = session.info.get("fate")
            if fate is None or fate.start_commit():
                session.commit()
        return result

    return endpoint


def api_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    """Every APIRoute of an app, also inside included routers (as declared, shared by every app)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        original = getattr(route, "original_router", None)
        if original is not None:
            yield from api_routes(original.routes)


def install(app: FastAPI) -> None:
    """Wrap every sync endpoint (after all routers are included) and add the deadline."""
    for route in api_routes(app.router.routes):
        call = route.endpoint
        if inspect.iscoroutinefunction(call) or getattr(call, "_commits_in_endpoint", False):
            continue
        wrapped = commit_in_endpoint(call)
        wrapped._commits_in_endpoint = True  # type: ignore[attr-defined]
        # The declared endpoint (from which included routes build their handler) and the route's own.
        route.endpoint = wrapped
        route.dependant.call = wrapped
    app.add_middleware(Deadline, seconds=app.state.settings.request_timeout)


async def size_thread_pool(app: FastAPI) -> None:
    """Lifespan startup: the shared thread pool gets `worker_threads` threads (anyio's default is 40)."""
    anyio.to_thread.current_default_thread_limiter().total_tokens = app.state.settings.worker_threads


class Deadline:
    """ASGI middleware: a request with no response after `seconds` is answered 503 and abandoned.

    The abandoned handler runs on (a thread cannot be interrupted) but its transaction is rolled back
    and its late response is dropped. A response that has started (a stream, a PDF) is never cut.
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds
        self._orphans: set[asyncio.Task[None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.seconds <= 0:
            await self.app(scope, receive, send)
            return
        fate = RequestFate()
        scope.setdefault("state", {})["fate"] = fate
        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if fate.abandoned:
                return
            if message["type"] == "http.response.start":
                started = True
                fate.committing = True  # the answer is on its way: never replaced by a 503
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, guarded_send))
        try:
            await asyncio.wait_for(asyncio.shield(task), self.seconds)
            return
        except TimeoutError:
            pass
        if started or not fate.abandon():
            await task
            return
        self._orphans.add(task)
        task.add_done_callback(self._orphan_done)
        log.warning("request over %.0f s on %s %s: answered 503", self.seconds, scope.get("method"), scope.get("path"))
        response = JSONResponse({"error": "timeout", "message": TIMEOUT_MESSAGE}, status_code=503,
                                headers={"Retry-After": "5", "Cache-Control": "no-store"})
        await response(scope, receive, send)

    def _orphan_done(self, task: asyncio.Task[None]) -> None:
        self._orphans.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("abandoned request ended with %s", type(task.exception()).__name__)
