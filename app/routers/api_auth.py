"""Staff authentication for the API: user name and password in, bearer token out."""

from __future__ import annotations

import datetime as dt
import json

from fastapi import APIRouter, Request

from app.deps import ClientDep, CurrentUser, SessionDep, SettingsDep
from app.errors import ValidationFailed
from app.schemas import ErrorOut, TokenIn, TokenOut
from app.services import auth

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


async def _credentials(request: Request) -> TokenIn:
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith("application/json"):
            data = json.loads(await request.body() or b"null")
        else:
            form = await request.form()
            data = {k: v for k, v in form.items() if isinstance(v, str)}
        return TokenIn.model_validate(data)
    except (ValueError, TypeError):
        raise ValidationFailed(details=[{"field": "username", "message": "ユーザー名とパスワードを送ってください"}]) \
            from None


@router.post(
    "/token",
    response_model=TokenOut,
    summary="ログインしてトークンを得る",
    description="OAuth2 password 形式（application/x-www-form-urlencoded）か JSON `{username, password}`。",
    responses={401: {"model": ErrorOut}, 422: {"model": ErrorOut}, 429: {"model": ErrorOut}},
    openapi_extra={"requestBody": {"content": {
        "application/x-www-form-urlencoded": {"schema": TokenIn.model_json_schema()},
        "application/json": {"schema": TokenIn.model_json_schema()},
    }, "required": True}},
)
async def token(request: Request, session: SessionDep, settings: SettingsDep, client: ClientDep) -> TokenOut:
    """Exchange a user name and password for a bearer token."""
    creds = await _credentials(request)
    user = auth.authenticate(session, username=creds.username, password=creds.password, client=client)
    ttl = dt.timedelta(minutes=settings.token_ttl_minutes)
    access = auth.issue_token(session, user=user, ttl=ttl, label="api")
    return TokenOut(access_token=access, expires_in=int(ttl.total_seconds()), role=user.role)


@router.get("/me", summary="ログイン中の職員")
def me(user: CurrentUser) -> dict[str, str | None]:
    """Who the token belongs to."""
    return {"username": user.username, "role": user.role, "display_name": user.display_name,
            "department_id": user.department_id}
