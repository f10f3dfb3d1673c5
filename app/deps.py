"""FastAPI dependencies: the request's session (and transaction), settings, definitions, the caller."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from app import capacity
from app.client_address import client_address
from app.db import read_only_bind
from app.errors import Unauthorized
from app.forms.loader import DefinitionSet
from app.models import StaffSession, User
from app.services import audit, auth, sessions
from app.settings import Settings


def _writes_on_read(request: Request) -> bool:
    route = request.scope.get("route")
    return bool(getattr(route, "writes_on_read", True))


def _dependencies_write(request: Request) -> bool:
    # Only a sync endpoint wrapped by capacity.install switches to IMMEDIATE itself; any other route
    # whose dependencies read first is treated as writing from the start.
    route = request.scope.get("route")
    wrapped = getattr(getattr(route, "endpoint", None), "_commits_in_endpoint", False)
    return not wrapped or bool(getattr(route, "dependencies_write", True))


def is_read_only(request: Request) -> bool:
    """A GET/HEAD whose route writes nothing: its transaction reads a snapshot (SQLite BEGIN DEFERRED)
    and never takes the write lock. Routes that record an audit entry or touch the staff session on
    GET are found when the app is built (`mark_writing_routes`)."""
    return request.method in ("GET", "HEAD") and not _writes_on_read(request)


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One session and one transaction per request: committed on success, rolled back on error.

    Async on purpose (app/capacity.py): waiting for a database slot holds no thread, the commit of a
    sync endpoint happens at the end of its own thread trip, and finishing never waits for a thread.
    """
    sem = await capacity.gate(request.app).acquire()
    try:
        factory = request.app.state.sessionmaker
        deferred = read_only_bind(factory)
        if deferred is not None and not is_read_only(request) and not _dependencies_write(request):
            # SQLite, a request that writes only in its endpoint: the dependencies (the bearer token's
            # lookup) read a snapshot; the endpoint's own transaction then begins IMMEDIATE, so the
            # write lock is held for one thread trip only (capacity.commit_in_endpoint switches).
            session = factory(bind=deferred)
            session.info["endpoint_bind"] = factory.kw["bind"]
        elif deferred is not None and is_read_only(request):
            session = factory(bind=deferred)
        else:
            session = factory()
        fate = getattr(request.state, "fate", None)
        session.info["fate"] = fate
        token = capacity.current_session.set(session)
        try:
            yield session
        except BaseException as exc:
            keep = getattr(exc, "keep_changes", False) and (fate is None or fate.start_commit())
            await capacity.run_unlimited(session.commit if keep else session.rollback)
            raise
        else:
            if session.in_transaction():
                if fate is None or fate.start_commit():
                    await capacity.run_unlimited(session.commit)
                else:  # answered 503 by the deadline: nothing of it is kept
                    await capacity.run_unlimited(session.rollback)
        finally:
            capacity.current_session.reset(token)
            await capacity.run_unlimited(session.close)
    finally:
        sem.release()


def writes_on_get() -> None:
    """Marker: `dependencies=[Depends(writes_on_get)]` on a GET route that writes by other means than
    an audit entry (ClientDep) or the staff session's touch, so that it keeps BEGIN IMMEDIATE."""


def mark_writing_routes(app: FastAPI) -> None:
    """Flag GET routes that write (an audit entry through ClientDep, the staff session's touch)."""
    writers = {get_client, get_staff_session, writes_on_get}

    def uses(dependant: Any) -> bool:
        return any(d.call in writers or uses(d) for d in dependant.dependencies)

    def uses_writing_dependency(dependant: Any) -> bool:
        return any(d.call in (get_staff_session, writes_on_get) or uses_writing_dependency(d)
                   for d in dependant.dependencies)

    for route in capacity.api_routes(app.router.routes):
        route.writes_on_read = uses(route.dependant)  # type: ignore[attr-defined]
        route.dependencies_write = uses_writing_dependency(route.dependant)  # type: ignore[attr-defined]


def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    return request.app.state.settings


def get_definitions(request: Request) -> DefinitionSet:
    """The form definitions in use."""
    return request.app.state.definitions.current


def get_client(request: Request) -> audit.Client:
    """Where the request came from (X-Forwarded-For only from KAKANAI_TRUSTED_PROXIES), for the audit log and login limit."""
    settings: Settings = request.app.state.settings
    peer = request.client.host if request.client else ""
    ip = client_address(peer, request.headers.get("x-forwarded-for"), settings.trusted_proxy_networks())
    return audit.Client(ip=ip, user_agent=request.headers.get("user-agent", ""))


# scope="function": commit before the response is sent, so a 2xx is only ever seen for data that is
# stored (FastAPI's default runs a yield dependency's exit after the response has gone out).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
ClientDep = Annotated[audit.Client, Depends(get_client)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
DefinitionsDep = Annotated[DefinitionSet, Depends(get_definitions)]

_bearer = HTTPBearer(auto_error=False, description="`POST /api/v1/auth/token` で取得したトークン")


def get_current_user(
    session: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> User:
    """The staff member the bearer token belongs to."""
    if credentials is None or not credentials.credentials:
        raise Unauthorized()
    return auth.resolve_token(session, credentials.credentials)


CurrentUser = Annotated[User, Depends(get_current_user)]


def counter_staff(user: CurrentUser) -> User:
    """Counter staff (or an admin)."""
    auth.require_role(user, "counter")
    return user


def admin_only(user: CurrentUser) -> User:
    """Administrators only."""
    auth.require_role(user, "admin")
    return user


CounterUser = Annotated[User, Depends(counter_staff)]
AdminUser = Annotated[User, Depends(admin_only)]


# --- Counter pages: cookie sessions with a CSRF token -------------------------------------------------


def get_staff_session(request: Request, session: SessionDep, settings: SettingsDep) -> StaffSession:
    """The live browser session of the request (touched), or LoginRequired / SessionExpired."""
    token = request.cookies.get(sessions.COOKIE_NAME)
    row = sessions.resolve_session(session, token, idle=dt.timedelta(minutes=settings.session_idle_minutes))
    request.state.staff_session = row
    return row


StaffSessionDep = Annotated[StaffSession, Depends(get_staff_session)]


async def csrf_protected(request: Request, row: StaffSessionDep) -> StaffSession:
    """State-changing page requests must carry the session's CSRF token (form field or header)."""
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        supplied = request.headers.get(sessions.CSRF_HEADER)
        if supplied is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            supplied = (await request.form()).get(sessions.CSRF_FIELD)  # type: ignore[assignment]
        sessions.check_csrf(row, supplied if isinstance(supplied, str) else None)
    return row


def page_counter_staff(row: Annotated[StaffSession, Depends(csrf_protected)]) -> User:
    """Counter staff (or an admin) signed in on the pages."""
    auth.require_role(row.user, "counter")
    return row.user


def page_admin(row: Annotated[StaffSession, Depends(csrf_protected)]) -> User:
    """An administrator signed in on the pages."""
    auth.require_role(row.user, "admin")
    return row.user


PageCounterUser = Annotated[User, Depends(page_counter_staff)]
PageAdminUser = Annotated[User, Depends(page_admin)]


def page_department_staff(row: Annotated[StaffSession, Depends(csrf_protected)]) -> User:
    """Department staff (or an admin) signed in on the pages; which department is checked per path."""
    auth.require_role(row.user, "department")
    return row.user


def page_any_staff(row: Annotated[StaffSession, Depends(csrf_protected)]) -> User:
    """Any member of staff signed in on the pages (logging out)."""
    return row.user


PageDepartmentUser = Annotated[User, Depends(page_department_staff)]
PageStaffUser = Annotated[User, Depends(page_any_staff)]


async def counter_staff_token_or_page(
    request: Request, session: SessionDep, settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    """Counter staff by bearer token (API clients) or by the page session with its CSRF token (the tablet)."""
    if credentials is not None and credentials.credentials:
        user = auth.resolve_token(session, credentials.credentials)
    else:
        row = await csrf_protected(request, get_staff_session(request, session, settings))
        user = row.user
    auth.require_role(user, "counter")
    return user


CounterUserAnyAuth = Annotated[User, Depends(counter_staff_token_or_page)]
