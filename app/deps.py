"""FastAPI dependencies: the request's session (and transaction), settings, definitions, the caller."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from app.db import session_scope
from app.errors import Unauthorized
from app.forms.loader import DefinitionSet
from app.models import User
from app.services import audit, auth
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


SessionDep = Annotated[Session, Depends(get_session)]
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
