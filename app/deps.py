"""FastAPI dependencies: the request's session (and transaction), settings, definitions, the caller."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from app.db import session_scope
from app.errors import Unauthorized
from app.forms.loader import DefinitionSet
from app.models import StaffSession, User
from app.services import audit, auth, sessions
from app.settings import Settings


def get_session(request: Request) -> Iterator[Session]:
    """One session and one transaction per request: committed on success, rolled back on error."""
    yield from session_scope(request.app.state.sessionmaker)


def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    return request.app.state.settings


def get_definitions(request: Request) -> DefinitionSet:
    """The form definitions in use."""
    return request.app.state.definitions.current


def get_client(request: Request) -> audit.Client:
    """Where the request came from, for the audit log."""
    return audit.Client(ip=request.client.host if request.client else "",
                        user_agent=request.headers.get("user-agent", ""))


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
