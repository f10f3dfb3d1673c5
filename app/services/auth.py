"""Staff accounts, password checks with lock-out, and bearer tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import unicodedata
from collections.abc import Collection

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.errors import AppError, Forbidden, LoginFailed, NotFound, Unauthorized, ValidationFailed
from app.models import ApiToken, StaffSession, User, utcnow
from app.services import audit

ROLES = ("counter", "department", "admin")
MAX_FAILED_LOGINS = 5
LOCKOUT = dt.timedelta(minutes=15)
# Department systems' service accounts (app.services.departments) are named dept-<department id>.
SERVICE_ACCOUNT_PREFIX = "dept-"
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
    if row is None:
        raise Unauthorized("トークンが無効です。もう一度ログインしてください")
    service = row.user.username.startswith(SERVICE_ACCOUNT_PREFIX) and row.user.role == "department"
    if row.revoked_at is not None:
        raise Unauthorized("このトークンは取り消されています。" +
                           ("管理者に新しい課のトークンの発行を依頼してください" if service else "もう一度ログインしてください"))
    if row.expires_at is not None and row.expires_at <= now:
        raise Unauthorized("トークンの有効期限が切れています。" +
                           ("管理者に課のトークンの更新を依頼してください" if service else "もう一度ログインしてください"))
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


# --- Operations on accounts and tokens (administrators; the CLI and the staff page) ----------------------

GENERATED_PASSWORD_BYTES = 12  # token_urlsafe(12): 16 characters, above the 10-character minimum


def get_user_or_raise(session: Session, username: str) -> User:
    """The account with this user name, or NotFound."""
    user = session.scalar(select(User).where(User.username == username)) if len(username) <= 64 else None
    if user is None:
        raise NotFound(f"職員「{username[:64]}」は見つかりません")
    return user


def get_user_by_id_or_raise(session: Session, user_id: int) -> User:
    """The account with this id, or NotFound."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("この職員は見つかりません")
    return user


def _audit(session: Session, action: str, *, user: User, by: User | None, by_name: str, target: str = "",
           client: audit.Client | None) -> None:
    audit.record(session, action=action, actor=by, actor_name=by_name, target=target or f"user:{user.username}",
                 client=client)


def revoke_credentials(
    session: Session, *, user: User, by: User | None = None, by_name: str = "cli", client: audit.Client | None = None,
    now: dt.datetime | None = None, record: bool = True,
) -> tuple[int, int]:
    """Revoke every bearer token of the user and end every browser session; returns (tokens, sessions)."""
    now = now or utcnow()
    tokens = session.execute(
        update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now).execution_options(synchronize_session=False)).rowcount
    ended = session.execute(
        update(StaffSession).where(StaffSession.user_id == user.id, StaffSession.ended_at.is_(None))
        .values(ended_at=now).execution_options(synchronize_session=False)).rowcount
    if record:
        _audit(session, audit.TOKENS_REVOKED, user=user, by=by, by_name=by_name, client=client,
               target=f"user:{user.username} tokens={tokens} sessions={ended}")
    return tokens, ended


def revoke_all_credentials(
    session: Session, *, include_department_tokens: bool = False, by: User | None = None, by_name: str = "cli",
    client: audit.Client | None = None, now: dt.datetime | None = None, keep_session_id: int | None = None,
) -> tuple[int, int]:
    """Revoke every staff member's bearer tokens and end every session (department system tokens too
    when asked); only the page session `keep_session_id` (the administrator doing it) survives."""
    now = now or utcnow()
    query = update(ApiToken).where(ApiToken.revoked_at.is_(None))
    if not include_department_tokens:
        service_ids = select(User.id).where(User.username.startswith(SERVICE_ACCOUNT_PREFIX), User.role == "department")
        query = query.where(ApiToken.user_id.not_in(service_ids))
    tokens = session.execute(query.values(revoked_at=now).execution_options(synchronize_session=False)).rowcount
    ended = session.execute(
        update(StaffSession).where(StaffSession.ended_at.is_(None), StaffSession.id != (keep_session_id or -1))
        .values(ended_at=now).execution_options(synchronize_session=False)).rowcount
    audit.record(session, action=audit.TOKENS_REVOKED, actor=by, actor_name=by_name, client=client,
                 target=f"all{' +department' if include_department_tokens else ''} tokens={tokens} sessions={ended}")
    return tokens, ended


def _check_not_last_admin(session: Session, user: User) -> None:
    if user.role != "admin" or not user.active:
        return
    others = session.scalar(select(func.count()).select_from(User).where(
        User.role == "admin", User.active.is_(True), User.id != user.id)) or 0
    if not others:
        raise ValidationFailed(details=[{"field": "username",
                                         "message": "有効な管理者が他にいないため、このアカウントは無効にできません"}])


def disable_user(
    session: Session, *, user: User, by: User | None = None, by_name: str = "cli", client: audit.Client | None = None,
) -> None:
    """Disable an account: it can no longer log in, and its tokens and sessions stop at once."""
    if by is not None and by.id == user.id:
        raise ValidationFailed(details=[{"field": "username", "message": "自分自身のアカウントは無効にできません"}])
    _check_not_last_admin(session, user)
    user.active = False
    revoke_credentials(session, user=user, by=by, by_name=by_name, client=client, record=False)
    _audit(session, audit.USER_DISABLED, user=user, by=by, by_name=by_name, client=client)


def enable_user(
    session: Session, *, user: User, by: User | None = None, by_name: str = "cli", client: audit.Client | None = None,
) -> None:
    """Enable a disabled account again (it signs in anew: old tokens stay revoked)."""
    user.active = True
    _audit(session, audit.USER_ENABLED, user=user, by=by, by_name=by_name, client=client)


def unlock_user(
    session: Session, *, user: User, by: User | None = None, by_name: str = "cli", client: audit.Client | None = None,
) -> None:
    """Lift a lock-out after failed logins and reset the failure count."""
    user.locked_until = None
    user.failed_logins = 0
    _audit(session, audit.USER_UNLOCKED, user=user, by=by, by_name=by_name, client=client)


def reset_password(
    session: Session, *, user: User, password: str | None = None, by: User | None = None, by_name: str = "cli",
    client: audit.Client | None = None,
) -> str:
    """Set a new password (a random one when none is given, returned to be shown once); the account is
    unlocked and its tokens and sessions end, so whoever knew the old password is signed out."""
    if password is None:
        password = secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
    if len(password) < 10:
        raise ValidationFailed(details=[{"field": "password", "message": "パスワードは10文字以上にしてください"}])
    if len(password) > 200:
        raise ValidationFailed(details=[{"field": "password", "message": "パスワードは200文字以内にしてください"}])
    user.password_hash = hash_password(password)
    user.locked_until = None
    user.failed_logins = 0
    revoke_credentials(session, user=user, by=by, by_name=by_name, client=client, record=False)
    _audit(session, audit.PASSWORD_RESET, user=user, by=by, by_name=by_name, client=client)
    return password


def account_state(user: User, *, now: dt.datetime | None = None) -> str:
    """`disabled`, `locked` or `active` (what the staff list shows)."""
    if not user.active:
        return "disabled"
    if user.locked_until is not None and user.locked_until > (now or utcnow()):
        return "locked"
    return "active"
