"""Staff accounts, password checks with lock-out, and bearer tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import unicodedata
from collections.abc import Collection

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import AppError, Forbidden, LoginFailed, Unauthorized, ValidationFailed
from app.models import ApiToken, User, utcnow
from app.services import audit

ROLES = ("counter", "department", "admin")
MAX_FAILED_LOGINS = 5
LOCKOUT = dt.timedelta(minutes=15)
# Failed logins are limited per (address, user name) with a leaky bucket: up to LOGIN_BURST failures
# at once, then one more every LOGIN_LEAK. One person behind a shared address (a counter's NAT)
# cannot lock every clerk out, and refused attempts are not counted, so waiting always lifts the block.
LOGIN_BURST = 10
LOGIN_LEAK = dt.timedelta(seconds=90)
_hasher = PasswordHasher()
# Verifying against a dummy hash for unknown users keeps response times alike, so a caller
# cannot learn which user names exist by timing the login.
_DUMMY_HASH = _hasher.hash("dummy-password-for-timing")


class AccountLocked(AppError):
    """Too many failed logins; the account is locked for a while (not raised by login: see authenticate)."""

    status = 423
    code = "locked"
    keep_changes = True
    message = "ログインの失敗が続いたため、しばらくロックされています。15分ほど待ってからお試しください"


def hash_password(password: str) -> str:
    """Argon2id hash of a password."""
    return _hasher.hash(password)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def username_key(username: str) -> str:
    """The form two user names are compared in: NFKC (full-width → ASCII) and case-folded."""
    return unicodedata.normalize("NFKC", username).casefold()


def _find_user(session: Session, username: str, *, lock: bool = False) -> User | None:
    query = select(User).where(User.username == username)
    user = session.scalar(query.with_for_update() if lock else query)
    if user is not None:
        return user
    # Staff accounts are few: a look-alike spelling ("Tanaka", "ｔａｎａｋａ") finds the same account.
    key = username_key(username)
    for candidate in session.scalars(select(User)):
        if username_key(candidate.username) == key:
            return session.scalar(select(User).where(User.id == candidate.id).with_for_update()) if lock else candidate
    return None


def create_user(
    session: Session, *, username: str, password: str, role: str, display_name: str = "",
    department_id: str | None = None, known_departments: Collection[str] | None = None,
) -> User:
    """Create a staff account; raises ValidationFailed on a bad role, name, department or short password."""
    errors = []
    if role not in ROLES:
        errors.append({"field": "role", "message": f"役割は {', '.join(ROLES)} のいずれかです"})
    if not username or len(username) > 64 or not username.replace("_", "").replace("-", "").replace(".", "").isalnum():
        errors.append({"field": "username", "message": "ユーザー名は英数字と _ - . で64文字以内にしてください"})
    if len(password) < 10:
        errors.append({"field": "password", "message": "パスワードは10文字以上にしてください"})
    if role == "department" and not department_id:
        errors.append({"field": "department_id", "message": "課の職員には課（department）を指定してください"})
    if department_id and known_departments is not None and department_id not in known_departments:
        errors.append({"field": "department_id", "message": f"課「{department_id}」は departments.yaml にありません"
                       f"（{'、'.join(sorted(known_departments))}）"})
    if username and _find_user(session, username) is not None:
        errors.append({"field": "username",
                       "message": "このユーザー名は既に使われています（大文字・小文字や全角・半角の違いだけの名前も同じとみなします）"})
    if errors:
        raise ValidationFailed(details=errors)
    user = User(
        username=username, password_hash=hash_password(password), role=role,
        display_name=display_name or username, department_id=department_id,
    )
    session.add(user)
    session.flush()
    return user


class TooManyAttempts(AppError):
    """Too many failed logins from one address: it must wait (guards against trying many user names)."""

    status = 429
    code = "too_many_attempts"
    keep_changes = True
    message = "ログインの失敗が続いたため、この端末からこのユーザー名でのログインを一時的に止めています。数分待ってからお試しください"


def login_bucket_level(session: Session, *, ip: str, username: str, now: dt.datetime) -> float:
    """How full the (address, user name) bucket is: each counted failure adds 1, LOGIN_LEAK drains 1."""
    key = username_key(username)
    since = now - LOGIN_LEAK * (LOGIN_BURST * 2)
    level = 0.0
    last: dt.datetime | None = None
    for at in audit.failed_login_times(session, ip=ip, since=since, match=lambda name: username_key(name) == key):
        if last is not None:
            level = max(0.0, level - (at - last) / LOGIN_LEAK)
        level += 1
        last = at
    if last is not None:
        level = max(0.0, level - (now - last) / LOGIN_LEAK)
    return level


def authenticate(
    session: Session, *, username: str, password: str, now: dt.datetime | None = None,
    client: audit.Client | None = None,
) -> User:
    """Check a password; counts failures and locks the account after too many. Every attempt is audited."""
    now = now or utcnow()
    if client is not None and client.ip and \
            login_bucket_level(session, ip=client.ip, username=username, now=now) > LOGIN_BURST - 1:
        # Not counted as a failure: refused attempts must not keep the block alive.
        audit.record(session, action=audit.LOGIN_FAILED, actor_name=username, outcome="rate_limited", client=client)
        raise TooManyAttempts()
    user = _find_user(session, username, lock=True)
    # LoginFailed keeps the session's changes, so these audit entries survive the 401. Unknown, disabled
    # and locked accounts answer exactly like a wrong password (same status, message and work), so
    # the answer never tells whether an account exists or is locked; the audit log keeps the reason.
    if user is None or not user.active:
        _dummy_verify(password)
        audit.record(session, action=audit.LOGIN_FAILED, actor_name=username, outcome="unknown_user",
                     client=client, at=now)
        raise LoginFailed()
    if user.locked_until is not None and user.locked_until > now:
        _dummy_verify(password)
        audit.record(session, action=audit.LOGIN_FAILED, actor=user, outcome="locked", client=client, at=now)
        raise LoginFailed()
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until = now + LOCKOUT
            user.failed_logins = 0
        audit.record(session, action=audit.LOGIN_FAILED, actor=user,
                     outcome="locked_now" if user.locked_until == now + LOCKOUT else "bad_password", client=client,
                     at=now)
        raise LoginFailed() from None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    audit.record(session, action=audit.LOGIN, actor=user, client=client)
    return user


def _dummy_verify(password: str) -> None:
    try:
        _hasher.verify(_DUMMY_HASH, password)
    except VerificationError:
        pass


def issue_token(session: Session, *, user: User, ttl: dt.timedelta | None, label: str = "") -> str:
    """Create a bearer token for the user; only its hash is stored."""
    token = secrets.token_urlsafe(32)
    expires = utcnow() + ttl if ttl is not None else None
    session.add(ApiToken(user_id=user.id, token_hash=_token_hash(token), expires_at=expires, label=label))
    session.flush()
    return token


def resolve_token(session: Session, token: str) -> User:
    """The active user a bearer token belongs to; raises Unauthorized otherwise."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(token)))
    now = utcnow()
    if row is None or row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        raise Unauthorized("トークンが無効か期限切れです。もう一度ログインしてください")
    if not row.user.active:
        raise Unauthorized("このアカウントは無効です")
    return row.user


def revoke_token(session: Session, token: str) -> None:
    """Revoke a token (logout); unknown tokens are ignored."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(token)))
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()


def require_role(user: User, *roles: str) -> None:
    """Raise Forbidden unless the user has one of the roles (admins may do everything)."""
    if user.role != "admin" and user.role not in roles:
        raise Forbidden()


def list_users(session: Session) -> list[User]:
    """All staff accounts by name."""
    return list(session.scalars(select(User).order_by(User.username)))
