"""Browser sessions of staff on the counter pages: server-side rows, CSRF token, inactivity timeout."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import Forbidden, Unauthorized
from app.models import StaffSession, User, utcnow

COOKIE_NAME = "kakanai_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class LoginRequired(Unauthorized):
    """No live session: the pages redirect to the login screen."""

    message = "ログインしてください"


class SessionExpired(LoginRequired):
    """The session ended after a period without activity."""

    keep_changes = True
    code = "session_expired"
    message = "一定時間操作がなかったため、ログアウトしました。もう一度ログインしてください"


class CsrfFailed(Forbidden):
    """The form did not carry this session's CSRF token (a forged or very old page)."""

    code = "csrf"
    message = "画面の有効期限が切れています。画面を読み込み直してから、もう一度操作してください"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_session(session: Session, *, user: User, now: dt.datetime | None = None) -> tuple[str, StaffSession]:
    """Start a session for a signed-in user; returns the cookie value (shown once) and the row."""
    token = secrets.token_urlsafe(32)
    now = now or utcnow()
    row = StaffSession(token_hash=_hash(token), user_id=user.id, csrf_token=secrets.token_urlsafe(32),
                       created_at=now, last_seen_at=now)
    session.add(row)
    session.flush()
    return token, row


def resolve_session(
    session: Session, token: str | None, *, idle: dt.timedelta, now: dt.datetime | None = None,
) -> StaffSession:
    """The live session of this cookie, touched; raises LoginRequired / SessionExpired otherwise."""
    if not token or len(token) > 200:
        raise LoginRequired()
    row = session.scalar(select(StaffSession).where(StaffSession.token_hash == _hash(token)))
    if row is None or row.ended_at is not None or not row.user.active:
        raise LoginRequired()
    now = now or utcnow()
    if now - row.last_seen_at > idle:
        row.ended_at = now
        # The end of the session is a fact to keep even though the request fails.
        raise SessionExpired()
    row.last_seen_at = now
    return row


def end_session(session: Session, token: str | None, *, now: dt.datetime | None = None) -> StaffSession | None:
    """Log out: the cookie stops working at once."""
    if not token:
        return None
    row = session.scalar(select(StaffSession).where(StaffSession.token_hash == _hash(token)))
    if row is not None and row.ended_at is None:
        row.ended_at = now or utcnow()
    return row


def check_csrf(row: StaffSession, supplied: str | None) -> None:
    """Refuse a state-changing request that does not carry the session's CSRF token."""
    if not supplied or not hmac.compare_digest(supplied.encode(), row.csrf_token.encode()):
        raise CsrfFailed()
