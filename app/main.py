"""The ASGI application: `app.main:app`, built by create_app()."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app import capacity, crypto
from app.db import make_engine, make_sessionmaker
from app.deps import mark_writing_routes
from app.errors import install_error_handlers
from app.routers import (
    admin_pages,
    api_admin,
    api_appointments,
    api_auth,
    api_card,
    api_cases,
    api_departments,
    api_docs,
    api_documents,
    api_imports,
    api_metrics,
    api_pre_entry,
    api_queue,
    api_routing,
    board,
    booking,
    card_pages,
    counter,
    dashboard,
    department,
    guide,
    health,
    notices,
    pre_entry_counter,
    pre_entry_pages,
    reception,
    reception_bookings,
    resident,
    slip_pages,
)
from app.security import install_security
from app.services import background, instances, live
from app.services.definitions import DefinitionRegistry
from app.settings import PROJECT_ROOT, Settings, get_settings


def create_app(settings: Settings | None = None, *, definitions: DefinitionRegistry | None = None) -> FastAPI:
    """Build the application; form definitions are loaded (and checked) before it serves."""
    settings = settings or get_settings()
    crypto.configure(settings.keyring())
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for stand_in in settings.development_secrets():  # names only, never a value
        logging.getLogger("app.main").warning("development secret in use: %s (set it before going live)", stand_in)
    registry = definitions
    if registry is None:
        registry = DefinitionRegistry(settings.definitions_dir)
        # Refuse to start on a broken definition set: DefinitionError carries the full report.
        registry.load()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await capacity.size_thread_pool(app)
        await live.start(app)  # the per-process change watcher behind the resident page's SSE
        await instances.start(app)  # publish the key ids this process knows (`kakanai keys rotate`)
        await background.start(app)  # notices, booking confirmations, no-shows (app/services/background.py)
        yield
        await background.stop(app)
        await instances.stop(app)
        await live.stop(app)
        app.state.engine.dispose()

    app = FastAPI(
        title="書かない窓口 API",
        version="1",
        description="Counter interview, applications, routing slips and resident status for Japanese city halls.",
        lifespan=lifespan,
        # /docs and /redoc are served by app/routers/api_docs.py from packaged assets (no CDN).
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
    )
    engine = make_engine(settings.effective_database_url, limits=settings.db_limits())
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.definitions = registry
    app.state.live = live.Hub()
    live.install_notify()  # PostgreSQL: event writes NOTIFY the other instances (app/services/live.py)
    install_error_handlers(app)
    install_security(app, settings)
    app.include_router(health.router)
    app.include_router(api_auth.router)
    app.include_router(api_pre_entry.router)  # before api_cases: /api/v1/cases/from-pre-entry
    app.include_router(api_cases.router)
    app.include_router(api_documents.router)
    app.include_router(api_routing.router)
    app.include_router(api_departments.router)
    app.include_router(slip_pages.router)
    app.include_router(counter.router)
    app.mount("/static", StaticFiles(directory=PROJECT_ROOT / "app" / "static"), name="static")
    app.include_router(api_admin.router)
    app.include_router(api_metrics.router)
    app.include_router(dashboard.router)
    app.include_router(admin_pages.router)
    app.include_router(api_queue.router)
    app.include_router(api_appointments.public)
    app.include_router(api_appointments.staff)
    app.include_router(resident.router)
    app.include_router(guide.router)
    app.include_router(pre_entry_pages.router)
    app.include_router(board.router)
    app.include_router(department.router)
    app.include_router(reception.router)
    app.include_router(booking.router)
    app.include_router(reception_bookings.router)
    app.include_router(notices.router)
    app.include_router(api_card.router)
    app.include_router(api_card.pairing_router)
    app.include_router(card_pages.router)
    app.include_router(pre_entry_counter.router)
    app.include_router(api_imports.router)
    if settings.docs_enabled:
        app.include_router(api_docs.router)
        api_docs.install_answers_schema(app, PROJECT_ROOT / "bench" / "households" / "model_move_in_family.json")
    mark_writing_routes(app)
    capacity.install(app)  # last: it wraps every route's endpoint (app/capacity.py)
    return app


def __getattr__(name: str) -> FastAPI:
    # `app.main:app` is built on first access so that importing this module has no side effects.
    if name == "app":
        global app
        app = create_app()
        return app
    raise AttributeError(name)
