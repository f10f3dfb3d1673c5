"""Administrators' pages: staff accounts, department tokens and the audit log (server-rendered, CSRF-protected).

Every change goes through app.services.auth / app.services.departments, which write the audit entry;
a new password or token is shown once, in the answer to the POST that made it (never in a URL).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.deps import ClientDep, DefinitionsDep, PageAdminUser, SessionDep, SettingsDep
from app.errors import ValidationFailed
from app.services import audit, auth, departments
from app.settings import Settings
from app.templating import get_templates

router = APIRouter(include_in_schema=False)
NO_STORE = {"Cache-Control": "no-store"}
PAGE_SIZE = 100
STATE_LABELS = {"active": "有効", "locked": "ロック中", "disabled": "無効", "expired": "期限切れ", "revoked": "取消済み"}
ROLE_LABELS = {"counter": "窓口", "department": "課", "admin": "管理者"}
# What the staff page says after each action (the redirect carries only this code and the user name).
DONE_MESSAGES = {
    "disabled": "{name} を無効にしました。トークンとセッションも取り消しました。",
    "enabled": "{name} を有効にしました。",
    "unlocked": "{name} のロックを解除しました。",
    "revoked": "{name} のトークンとセッションを取り消しました。",
    "revoked_all": "全職員のトークンとセッションを取り消しました（あなたのこの画面のセッションを除く）。",
    "token_revoked": "課のトークン {name} を取り消しました。",
}

TextField = Annotated[str, Form(max_length=200)]


def _page(request: Request, name: str, context: dict[str, Any], *, status: int = 200) -> HTMLResponse:
    row = request.state.staff_session
    base = {"user": row.user, "csrf_token": row.csrf_token, "idle_minutes": request.app.state.settings.session_idle_minutes,
            "states": STATE_LABELS, "roles": ROLE_LABELS}
    response = get_templates().TemplateResponse(request, name, {**base, **context}, status_code=status)
    response.headers.update(NO_STORE)
    return response


def _local(value: dt.datetime | None, settings: Settings) -> str:
    return value.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M") if value is not None else ""


def _done(path: str, code: str, name: str = "") -> RedirectResponse:
    return RedirectResponse(f"{path}?{urlencode({'done': code, 'name': name})}", status_code=303)


@router.get("/admin")
def admin_home(user: PageAdminUser) -> RedirectResponse:
    """The admin menu starts at the staff list."""
    return RedirectResponse("/admin/staff", status_code=303)


# --- staff accounts ------------------------------------------------------------------------------------


@router.get("/admin/staff", response_class=HTMLResponse)
def staff_page(request: Request, session: SessionDep, settings: SettingsDep, user: PageAdminUser,
               done: Annotated[str, Query(max_length=40)] = "",
               name: Annotated[str, Query(max_length=64)] = "") -> HTMLResponse:
    """Every account with role, department, state, lock-out and last login (local time), and its actions."""
    rows = [{"user": u, "state": auth.account_state(u), "locked_until": _local(u.locked_until, settings),
             "last_login": _local(u.last_login_at, settings), "service": u.username.startswith(auth.SERVICE_ACCOUNT_PREFIX)}
            for u in auth.list_users(session)]
    message = DONE_MESSAGES.get(done, "").format(name=name)
    return _page(request, "admin/staff.html", {"rows": rows, "message": message, "timezone": settings.timezone})


def _staff_action(session: Any, user_id: int) -> Any:
    return auth.get_user_by_id_or_raise(session, user_id)


@router.post("/admin/staff/{user_id}/disable")
def disable(user_id: int, session: SessionDep, user: PageAdminUser, client: ClientDep) -> RedirectResponse:
    """Disable an account (its tokens and sessions stop at once)."""
    target = _staff_action(session, user_id)
    auth.disable_user(session, user=target, by=user, client=client)
    return _done("/admin/staff", "disabled", target.username)


@router.post("/admin/staff/{user_id}/enable")
def enable(user_id: int, session: SessionDep, user: PageAdminUser, client: ClientDep) -> RedirectResponse:
    """Enable a disabled account."""
    target = _staff_action(session, user_id)
    auth.enable_user(session, user=target, by=user, client=client)
    return _done("/admin/staff", "enabled", target.username)


@router.post("/admin/staff/{user_id}/unlock")
def unlock(user_id: int, session: SessionDep, user: PageAdminUser, client: ClientDep) -> RedirectResponse:
    """Lift a lock-out after failed logins."""
    target = _staff_action(session, user_id)
    auth.unlock_user(session, user=target, by=user, client=client)
    return _done("/admin/staff", "unlocked", target.username)


@router.post("/admin/staff/{user_id}/revoke")
def revoke(user_id: int, session: SessionDep, user: PageAdminUser, client: ClientDep) -> RedirectResponse:
    """Revoke the account's bearer tokens and end its sessions."""
    target = _staff_action(session, user_id)
    auth.revoke_credentials(session, user=target, by=user, client=client)
    return _done("/admin/staff", "revoked", target.username)


@router.post("/admin/staff/revoke-all")
def revoke_all(request: Request, session: SessionDep, user: PageAdminUser, client: ClientDep,
               include_department_tokens: Annotated[str, Form(max_length=10)] = "",
               confirm: Annotated[str, Form(max_length=10)] = "") -> RedirectResponse:
    """Revoke every staff member's tokens and sessions (optionally the department systems' too)."""
    if confirm != "yes":
        raise ValidationFailed(details=[{"field": "confirm", "message": "取り消す前に確認のチェックを入れてください"}])
    auth.revoke_all_credentials(session, include_department_tokens=bool(include_department_tokens), by=user,
                                client=client, keep_session_id=request.state.staff_session.id)
    return _done("/admin/staff", "revoked_all")


@router.post("/admin/staff/{user_id}/reset-password", response_class=HTMLResponse)
def reset_password(request: Request, user_id: int, session: SessionDep, user: PageAdminUser, client: ClientDep,
                   password: Annotated[str, Form(max_length=500)] = "") -> HTMLResponse:
    """Set a typed password, or a random one shown once on the answer page."""
    target = _staff_action(session, user_id)
    new = auth.reset_password(session, user=target, password=password or None, by=user, client=client)
    return _page(request, "admin/secret_once.html", {
        "title": "パスワードを再設定しました", "subject": target.username,
        "secret": "" if password else new, "back": "/admin/staff",
        "note": "この職員のトークンとセッションは取り消されました。ロックも解除されています。"})


# --- department tokens -----------------------------------------------------------------------------------


@router.get("/admin/tokens", response_class=HTMLResponse)
def tokens_page(request: Request, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
                user: PageAdminUser, done: Annotated[str, Query(max_length=40)] = "",
                name: Annotated[str, Query(max_length=64)] = "") -> HTMLResponse:
    """The departments' API tokens with expiry and state; issue, rotate, revoke."""
    rows = [{"token": t, "state": departments.token_state(t), "created": _local(t.created_at, settings),
             "expires": _local(t.expires_at, settings) or "無期限",
             "department": defs.departments[t.user.department_id].name
             if t.user.department_id in defs.departments else t.user.department_id}
            for t in departments.list_all_tokens(session)]
    return _page(request, "admin/tokens.html", {
        "rows": rows, "message": DONE_MESSAGES.get(done, "").format(name=name), "timezone": settings.timezone,
        "departments": list(defs.departments.values()), "default_days": departments.DEFAULT_EXPIRES_DAYS})


def _token_shown(request: Request, issued: departments.IssuedToken, settings: Settings, note: str) -> HTMLResponse:
    return _page(request, "admin/secret_once.html", {
        "title": "課のトークンを発行しました", "subject": f"{issued.department_id}（トークン {issued.id}、"
                                                   f"有効期限 {_local(issued.expires_at, settings)}）",
        "secret": issued.token, "back": "/admin/tokens", "note": note})


@router.post("/admin/tokens", response_class=HTMLResponse)
def create_token(request: Request, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
                 user: PageAdminUser, client: ClientDep, department: TextField = "", label: TextField = "",
                 expires_days: TextField = "") -> HTMLResponse:
    """Issue a department token and show it once."""
    days = _int_field("expires_days", expires_days or str(departments.DEFAULT_EXPIRES_DAYS), "有効日数")
    issued = departments.create_token(session, defs=defs, department_id=department, label=label, expires_days=days,
                                      by=user, client=client)
    return _token_shown(request, issued, settings, "課のシステムに設定してください。")


@router.post("/admin/tokens/{token_id}/rotate", response_class=HTMLResponse)
def rotate_token(request: Request, token_id: int, session: SessionDep, settings: SettingsDep, defs: DefinitionsDep,
                 user: PageAdminUser, client: ClientDep, grace_hours: TextField = "0") -> HTMLResponse:
    """Issue a successor; the old token stops now or after the grace period."""
    grace = _int_field("grace_hours", grace_hours or "0", "猶予時間")
    issued, old = departments.rotate_token(session, defs=defs, token_id=token_id, grace_hours=grace, by=user,
                                           client=client)
    stop = _local(old.revoked_at or old.expires_at, settings)
    return _token_shown(request, issued, settings, f"以前のトークン {old.id} は {stop} に使えなくなります。")


@router.post("/admin/tokens/{token_id}/revoke")
def revoke_token(token_id: int, session: SessionDep, user: PageAdminUser, client: ClientDep) -> RedirectResponse:
    """Revoke a department token."""
    departments.revoke_token(session, token_id=token_id, by=user, client=client)
    return _done("/admin/tokens", "token_revoked", str(token_id))


def _int_field(field: str, value: str, label: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise ValidationFailed(details=[{"field": field, "message": f"{label}は整数で入力してください"}]) from None


# --- audit log -------------------------------------------------------------------------------------------


def _audit_filter(settings: Settings, actor: str, action: str, case_id: str, start: str, end: str
                  ) -> tuple[audit.AuditFilter, list[dict[str, str]]]:
    errors = []
    bounds: list[dt.datetime | None] = []
    for field, value, label in (("from", start, "開始日"), ("to", end, "終了日")):
        day = None
        if value:
            try:
                day = dt.date.fromisoformat(value)
            except ValueError:
                errors.append({"field": field, "message": f"{label}は 2026-04-06 の形で入力してください"})
        # Days are the city's local days: [from 00:00, to+1 00:00) in local time, stored as UTC.
        if day is not None and field == "to":
            day += dt.timedelta(days=1)
        bounds.append(dt.datetime.combine(day, dt.time(), settings.tz).astimezone(dt.UTC) if day else None)
    if action and action not in audit.ACTIONS:
        errors.append({"field": "action", "message": "操作の種類を一覧から選んでください"})
    flt = audit.AuditFilter(actor=actor.strip() or None, action=action or None, case_id=case_id.strip() or None,
                            since=bounds[0], until=bounds[1])
    return flt, errors


AuditQ = Annotated[str, Query(max_length=64)]


@router.get("/admin/audit", response_class=HTMLResponse)
def audit_page(request: Request, session: SessionDep, settings: SettingsDep, user: PageAdminUser,
               actor: AuditQ = "", action: AuditQ = "", case_id: AuditQ = "",
               start: Annotated[str, Query(alias="from", max_length=20)] = "",
               end: Annotated[str, Query(alias="to", max_length=20)] = "",
               cursor: Annotated[int | None, Query(ge=1, le=2**62)] = None) -> HTMLResponse:
    """Search the audit log by user, action, case and local date range; times shown in local time."""
    flt, errors = _audit_filter(settings, actor, action, case_id, start, end)
    rows = [] if errors else audit.search(session, flt=flt, cursor=cursor, limit=PAGE_SIZE)
    query = {"actor": actor, "action": action, "case_id": case_id, "from": start, "to": end}
    kept = {k: v for k, v in query.items() if v}
    entries = [{"entry": e, "at": e.at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M:%S"),
                "label": audit.ACTION_LABELS.get(e.action, e.action)} for e in rows]
    return _page(request, "admin/audit.html", {
        "entries": entries, "query": query, "errors": errors, "actions": audit.ACTION_LABELS,
        "timezone": settings.timezone, "csv_query": urlencode(kept),
        "next_query": urlencode({**kept, "cursor": rows[-1].id}) if len(rows) == PAGE_SIZE else "",
    }, status=422 if errors else 200)


@router.get("/admin/audit.csv")
def audit_csv(session: SessionDep, settings: SettingsDep, user: PageAdminUser, client: ClientDep,
              actor: AuditQ = "", action: AuditQ = "", case_id: AuditQ = "",
              start: Annotated[str, Query(alias="from", max_length=20)] = "",
              end: Annotated[str, Query(alias="to", max_length=20)] = "") -> Response:
    """The entries matching the page's filters as CSV (with a local-time column); the export is audited."""
    flt, errors = _audit_filter(settings, actor, action, case_id, start, end)
    if errors:
        raise ValidationFailed(details=errors)
    body = audit.export_csv(session, flt=flt, tz=settings.tz)
    audit.record(session, action=audit.EXPORT, actor=user, client=client,
                 target=("admin/audit.csv " + urlencode({k: v for k, v in (("actor", actor), ("action", action),
                         ("case_id", case_id), ("from", start), ("to", end)) if v}))[:200])
    return Response(body, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": 'attachment; filename="audit_log.csv"', **NO_STORE})
