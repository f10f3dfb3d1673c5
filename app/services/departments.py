"""Departments as API clients: their service accounts, bearer tokens and what each may see.

A department system (or a clerk's script) authenticates with a token made by
`kakanai departments token create DEPT`. The token belongs to a service account `dept-<DEPT>`
with role "department", so the ordinary bearer-token check (app.deps.get_current_user) applies
and revoking the token is one UPDATE. Only the token's SHA-256 is stored (see app.services.auth).

Who may use /api/v1/departments/{department}/...:
- a department user (a service token or a clerk's own login) for its own department only;
  another department's path is 403, another department's step id under its own path is 404;
- an administrator for every department (support and emergencies; every call is audited
  under the admin's name);
- counter staff never: they are not department clerks (403). They see the whole slip through
  /api/v1/cases/{id}/routing-slip instead.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import Forbidden, NotFound, ValidationFailed
from app.forms.loader import DefinitionSet
from app.forms.schema import Application, Department, FormField
from app.models import ApiToken, User, utcnow
from app.services import audit, auth, masking

SERVICE_PREFIX = auth.SERVICE_ACCOUNT_PREFIX
MAX_EXPIRES_DAYS = 3650
# Department tokens expire: a year unless the administrator chooses otherwise.
DEFAULT_EXPIRES_DAYS = 365
# After a rotation the old token may keep working this long while the department system switches.
MAX_GRACE_HOURS = 24 * 30
# Answers every department gets: who lives where (the household and the new address) and the visit.
ALWAYS_SHARED = ("visit_date", "life_events", "household", "address")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class IssuedToken:
    """A freshly issued department token: shown once, only its hash is kept."""

    id: int
    token: str
    username: str
    department_id: str
    expires_at: dt.datetime | None


def get_department_or_raise(defs: DefinitionSet, department_id: str) -> Department:
    """The department with this id from departments.yaml, or NotFound."""
    dep = defs.departments.get(department_id)
    if dep is None:
        raise NotFound(f"課「{department_id}」は departments.yaml に登録されていません")
    return dep


def authorize(defs: DefinitionSet, *, user: User, department_id: str) -> Department:
    """Check that the caller may act for the department; returns it (403 / 404 otherwise)."""
    if user.role == "department":
        if user.department_id != department_id:
            raise Forbidden("他の課の手続きは扱えません。自分の課のトークンを使ってください")
    elif user.role != "admin":
        raise Forbidden("課の職員（課のトークン）だけが使えます。窓口職員は回付票の画面を使ってください")
    return get_department_or_raise(defs, department_id)


def _service_username(department_id: str) -> str:
    return f"{SERVICE_PREFIX}{department_id}"


def ensure_service_user(session: Session, *, defs: DefinitionSet, department_id: str) -> User:
    """The department's service account, created on first use (it has no usable password)."""
    dep = defs.departments.get(department_id)
    if dep is None:
        known = ", ".join(defs.departments)
        raise ValidationFailed(details=[{"field": "department",
                                         "message": f"departments.yaml にない課です: {department_id}（登録済み: {known}）"}])
    username = _service_username(department_id)
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        # A random 48-character password nobody learns: the account is used through tokens only.
        return auth.create_user(session, username=username, password=secrets.token_urlsafe(36), role="department",
                                display_name=f"{dep.name}（システム連携）", department_id=department_id)
    if user.role != "department" or user.department_id != department_id:
        raise ValidationFailed(details=[{"field": "department",
                                         "message": f"ユーザー {username} が別の役割で既に存在します"}])
    return user


def create_token(
    session: Session, *, defs: DefinitionSet, department_id: str, label: str = "",
    expires_days: int = DEFAULT_EXPIRES_DAYS, by: User | None = None, by_name: str = "cli",
    client: audit.Client | None = None,
) -> IssuedToken:
    """Issue a bearer token for the department's service account (printed once by the CLI); audited."""
    if not isinstance(expires_days, int) or not 1 <= expires_days <= MAX_EXPIRES_DAYS:
        raise ValidationFailed(details=[{"field": "expires_days",
                                         "message": f"有効日数は 1〜{MAX_EXPIRES_DAYS} の整数で指定してください"}])
    if len(label) > 100:
        raise ValidationFailed(details=[{"field": "label", "message": "ラベルは100文字以内にしてください"}])
    user = ensure_service_user(session, defs=defs, department_id=department_id)
    token = auth.issue_token(session, user=user, ttl=dt.timedelta(days=expires_days), label=label or "department-api")
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == auth._token_hash(token)))
    assert row is not None
    audit.record(session, action=audit.TOKEN_CREATED, actor=by, actor_name=by_name, client=client,
                 target=f"token:{row.id} department:{department_id} days={expires_days}")
    return IssuedToken(id=row.id, token=token, username=user.username, department_id=department_id,
                       expires_at=row.expires_at)


def list_tokens(session: Session, *, defs: DefinitionSet, department_id: str) -> list[ApiToken]:
    """Tokens of the department's service account, oldest first (revoked ones included)."""
    if department_id not in defs.departments:
        raise ValidationFailed(details=[{"field": "department", "message": f"departments.yaml にない課です: {department_id}"}])
    return list(session.scalars(
        select(ApiToken).join(User, ApiToken.user_id == User.id)
        .where(User.username == _service_username(department_id), User.role == "department")
        .order_by(ApiToken.id)
    ))


def list_all_tokens(session: Session) -> list[ApiToken]:
    """Every department's tokens (the administrators' token page), by department then age."""
    return list(session.scalars(
        select(ApiToken).join(User, ApiToken.user_id == User.id)
        .where(User.username.startswith(SERVICE_PREFIX), User.role == "department")
        .order_by(User.department_id, ApiToken.id)
    ))


def token_state(row: ApiToken, *, now: dt.datetime | None = None) -> str:
    """`revoked`, `expired` or `active`."""
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= (now or utcnow()):
        return "expired"
    return "active"


def _department_token_or_raise(session: Session, token_id: int) -> ApiToken:
    row = session.get(ApiToken, token_id) if 0 < token_id < 2**62 else None
    if row is None or row.user.role != "department" or not row.user.username.startswith(SERVICE_PREFIX):
        raise NotFound(f"課のトークン {token_id} は見つかりません")
    return row


def revoke_token(
    session: Session, *, token_id: int, by: User | None = None, by_name: str = "cli", client: audit.Client | None = None,
) -> ApiToken:
    """Revoke a department token by its id; other users' tokens are not touched (NotFound); audited."""
    row = _department_token_or_raise(session, token_id)
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record(session, action=audit.TOKEN_REVOKED, actor=by, actor_name=by_name, client=client,
                     target=f"token:{row.id} department:{row.user.department_id}")
    return row


def rotate_token(
    session: Session, *, defs: DefinitionSet, token_id: int, grace_hours: float = 0,
    expires_days: int = DEFAULT_EXPIRES_DAYS, by: User | None = None, by_name: str = "cli",
    client: audit.Client | None = None,
) -> tuple[IssuedToken, ApiToken]:
    """Issue a successor of a department token (same department and label); the old one stops now, or
    after `grace_hours` while the department system switches over (never later than it would have)."""
    if not 0 <= grace_hours <= MAX_GRACE_HOURS:
        raise ValidationFailed(details=[{"field": "grace_hours",
                                         "message": f"猶予時間は 0〜{MAX_GRACE_HOURS} 時間で指定してください"}])
    old = _department_token_or_raise(session, token_id)
    if token_state(old) != "active":
        raise ValidationFailed(details=[{"field": "token_id",
                                         "message": "取り消し済みまたは期限切れのトークンは更新できません。新しく発行してください"}])
    department_id = old.user.department_id or ""
    issued = create_token(session, defs=defs, department_id=department_id, label=old.label, expires_days=expires_days,
                          by=by, by_name=by_name, client=client)
    now = utcnow()
    if grace_hours == 0:
        old.revoked_at = now
    else:
        until = now + dt.timedelta(hours=grace_hours)
        old.expires_at = until if old.expires_at is None or until < old.expires_at else old.expires_at
    audit.record(session, action=audit.TOKEN_ROTATED, actor=by, actor_name=by_name, client=client,
                 target=f"token:{old.id}->{issued.id} department:{department_id} grace_hours={grace_hours:g}")
    return issued, old


# --- What a department may see of the answers --------------------------------------------------------


def _cells(app: Application) -> list[FormField]:
    out = list(app.fields)
    if app.layout is not None:
        for section in app.layout.sections:
            for row in section.rows:
                out.extend(row.cells)
            if section.table is not None:
                out.extend(section.table.columns)
    return out


def _expressions(app: Application) -> list[str]:
    texts = [c.if_ for c in app.applies_when]
    if app.for_each is not None:
        texts += [app.for_each.in_, app.for_each.where or "", app.for_each.title or ""]
    texts += [app.instance_title or "", app.deadline.from_ if app.deadline else ""]
    texts += [d.when or "" for d in app.documents_to_bring]
    if app.layout is not None:
        texts += [s.table.each for s in app.layout.sections if s.table is not None]
    for cell in _cells(app):
        texts += [cell.source or "", cell.value or ""]
    return texts


def shares_my_number(app: Application) -> bool:
    """Whether the application's form prints a My Number (so its department may see it in full)."""
    return any(cell.kind == "my_number" for cell in _cells(app))


def shares_account_number(app: Application) -> bool:
    """Whether the application's form prints the bank account number (benefits paid into it)."""
    return any(cell.kind == "bank" and "account_number" in (cell.source or "") for cell in _cells(app))


def answers_for(defs: DefinitionSet, answers: dict[str, Any], application_ids: list[str],
                member_ids: set[str] | None = None) -> tuple[dict[str, Any], list[str]]:
    """The part of the answers a department's applications use, and which sensitive numbers it shows in full.

    Top-level keys are shared when an expression of one of the applications names them (the forms
    cannot print anything else); the household, the address and the visit are always shared. With
    `member_ids`, the household lists only those members (the ones the department's forms concern).
    My Numbers are masked (`********9018`) unless one of the applications prints a My Number field;
    account numbers likewise unless one prints the account number.
    """
    apps = [defs.applications[a] for a in dict.fromkeys(application_ids) if a in defs.applications]
    names: set[str] = set(ALWAYS_SHARED)
    for app in apps:
        for text in _expressions(app):
            names.update(_IDENT.findall(text))
    subset = {k: v for k, v in answers.items() if k in names}
    household = subset.get("household")
    if member_ids is not None and isinstance(household, dict) and isinstance(household.get("members"), list):
        kept = [m for m in household["members"] if isinstance(m, dict) and m.get("id") in member_ids]
        subset["household"] = {**household, "members": kept}
    shown = [kind for kind, needed in ((masking.MY_NUMBER, any(shares_my_number(a) for a in apps)),
                                       (masking.ACCOUNT_NUMBER, any(shares_account_number(a) for a in apps))) if needed]
    return masking.mask_answers(subset, reveal=shown), shown
