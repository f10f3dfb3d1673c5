"""The administrators' pages: staff accounts (disable, unlock, reset, revoke), department tokens, and the
audit log in local time with filters and a CSV that follows them; CSRF and the admin role on every form."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import AuditEntry, User
from app.services import audit, auth
from tests.conftest import PASSWORD, make_user, page_login

HTML = {"Accept": "text/html"}


def _uid(db: Session, name: str) -> int:
    return db.scalar(select(User.id).where(User.username == name))  # type: ignore[return-value]


def _post(client: TestClient, url: str, csrf: str, **data: str) -> object:
    return client.post(url, data={"csrf_token": csrf, **data}, headers=HTML, follow_redirects=False)


def test_admin_menu_is_in_the_header_for_admins_only(app: FastAPI, client: TestClient, db: Session) -> None:
    make_user(db, "boss", "admin")
    make_user(db, "tanaka", "counter")
    page_login(client, "boss")
    page = client.get("/counter", headers=HTML).text
    for href in ("/dashboard", "/admin/audit", "/admin/staff", "/admin/tokens"):
        assert f'href="{href}"' in page
    clerk = TestClient(app)
    page_login(clerk, "tanaka")
    assert "admin-menu" not in clerk.get("/counter", headers=HTML).text
    assert clerk.get("/admin/staff", headers=HTML).status_code == 403


def test_staff_page_disables_unlocks_resets_and_revokes(app: FastAPI, client: TestClient, db: Session) -> None:
    make_user(db, "boss", "admin")
    make_user(db, "tanaka", "counter")
    tanaka = TestClient(app)
    page_login(tanaka, "tanaka")
    csrf = page_login(client, "boss")
    page = client.get("/admin/staff", headers=HTML).text
    row = re.search(r"<th scope=\"row\">tanaka</th>.*?</tr>", page, re.S).group(0)  # type: ignore[union-attr]
    assert "窓口" in row and "有効" in row and re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", row)  # last login shown
    uid = _uid(db, "tanaka")

    assert _post(client, f"/admin/staff/{uid}/disable", "wrong").status_code == 403  # type: ignore[attr-defined]
    assert client.get("/counter", headers=HTML).status_code == 200  # a refused CSRF changes nothing
    res = _post(client, f"/admin/staff/{uid}/disable", csrf)
    assert res.status_code == 303  # type: ignore[attr-defined]
    done = client.get(res.headers["location"], headers=HTML).text  # type: ignore[attr-defined]
    assert "tanaka を無効にしました" in done
    assert tanaka.get("/counter", headers=HTML, follow_redirects=False).status_code == 303  # session ended
    assert client.post("/api/v1/auth/token", data={"username": "tanaka", "password": PASSWORD}).status_code == 401
    assert _post(client, f"/admin/staff/{uid}/enable", csrf).status_code == 303  # type: ignore[attr-defined]
    # Oneself cannot be disabled (a page with the reason, nothing changed).
    own = _post(client, f"/admin/staff/{_uid(db, 'boss')}/disable", csrf)
    assert own.status_code == 422 and "自分自身" in own.text  # type: ignore[attr-defined]

    user = db.get(User, uid)
    db.refresh(user)
    user.locked_until = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)  # type: ignore[union-attr]
    db.commit()
    assert "ロック中" in client.get("/admin/staff", headers=HTML).text
    assert _post(client, f"/admin/staff/{uid}/unlock", csrf).status_code == 303  # type: ignore[attr-defined]
    db.expire_all()
    assert auth.account_state(db.get(User, uid)) == "active"  # type: ignore[arg-type]

    shown = _post(client, f"/admin/staff/{uid}/reset-password", csrf)
    secret = re.search(r'class="secret"[^>]*>([^<]+)<', shown.text).group(1)  # type: ignore[union-attr, attr-defined]
    assert shown.headers["cache-control"] == "no-store"  # type: ignore[attr-defined]
    assert client.post("/api/v1/auth/token", data={"username": "tanaka", "password": secret}).status_code == 200
    typed = _post(client, f"/admin/staff/{uid}/reset-password", csrf, password="typed-by-admin-1")
    assert "typed-by-admin-1" not in typed.text and "入力されたパスワードを設定しました" in typed.text  # type: ignore[attr-defined]
    short = _post(client, f"/admin/staff/{uid}/reset-password", csrf, password="short")
    assert short.status_code == 422 and "10文字以上" in short.text  # type: ignore[attr-defined]

    token = client.post("/api/v1/auth/token", data={"username": "tanaka", "password": "typed-by-admin-1"}).json()
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    assert _post(client, f"/admin/staff/{uid}/revoke", csrf).status_code == 303  # type: ignore[attr-defined]
    assert client.get("/api/v1/auth/me", headers=bearer).status_code == 401
    refused = _post(client, "/admin/staff/revoke-all", csrf)
    assert refused.status_code == 422 and "確認" in refused.text  # type: ignore[attr-defined]
    elsewhere = TestClient(app)
    page_login(elsewhere, "boss")  # the same administrator on another tablet
    assert _post(client, "/admin/staff/revoke-all", csrf, confirm="yes").status_code == 303  # type: ignore[attr-defined]
    assert client.get("/admin/staff", headers=HTML).status_code == 200  # the session doing it survives
    assert elsewhere.get("/admin/staff", headers=HTML, follow_redirects=False).status_code == 303  # the other ended

    actions = list(db.scalars(select(AuditEntry.action).where(AuditEntry.actor == "boss").order_by(AuditEntry.id)))
    assert [a for a in actions if a != "login"] == ["user_disabled", "user_enabled", "user_unlocked", "password_reset",
                                                    "password_reset", "tokens_revoked", "tokens_revoked"]


def test_tokens_page_issues_rotates_and_revokes(client: TestClient, db: Session) -> None:
    make_user(db, "boss", "admin")
    csrf = page_login(client, "boss")
    issued = _post(client, "/admin/tokens", csrf, department="kodomo", label="kodomo-system", expires_days="30")
    token = re.search(r'class="secret"[^>]*>([^<]+)<', issued.text).group(1)  # type: ignore[union-attr, attr-defined]
    api = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/departments/kodomo/steps", headers=api).status_code == 200
    page = client.get("/admin/tokens", headers=HTML).text
    assert "kodomo-system" in page and "有効" in page
    tid = re.search(r'action="/admin/tokens/(\d+)/rotate"', page).group(1)  # type: ignore[union-attr]
    rotated = _post(client, f"/admin/tokens/{tid}/rotate", csrf, grace_hours="0")
    new = re.search(r'class="secret"[^>]*>([^<]+)<', rotated.text).group(1)  # type: ignore[union-attr, attr-defined]
    assert client.get("/api/v1/departments/kodomo/steps", headers=api).status_code == 401
    new_api = {"Authorization": f"Bearer {new}"}
    assert client.get("/api/v1/departments/kodomo/steps", headers=new_api).status_code == 200
    new_id = re.findall(r'action="/admin/tokens/(\d+)/revoke"', client.get("/admin/tokens", headers=HTML).text)[-1]
    assert _post(client, f"/admin/tokens/{new_id}/revoke", csrf).status_code == 303  # type: ignore[attr-defined]
    assert client.get("/api/v1/departments/kodomo/steps", headers=new_api).status_code == 401
    bad = _post(client, "/admin/tokens", csrf, department="kodomo", expires_days="abc")
    assert bad.status_code == 422 and "有効日数は整数" in bad.text  # type: ignore[attr-defined]


def test_audit_page_shows_local_time_and_filters_and_the_csv_follows(client: TestClient, db: Session) -> None:
    make_user(db, "boss", "admin")
    # 23:30 UTC on 6 April is 08:30 on 7 April in Tokyo: the local day decides which search finds it.
    at = dt.datetime(2026, 4, 6, 23, 30, tzinfo=dt.UTC)
    for actor, action in (("sato", audit.CASE_READ), ("sato", audit.PDF_DOWNLOAD), ("ito", audit.CASE_READ)):
        entry = audit.record(db, action=action, actor_name=actor, case_id="c0ffee", target="counter/review")
        entry.at = at
    db.commit()
    csrf = page_login(client, "boss")
    assert csrf
    page = client.get("/admin/audit", params={"actor": "sato", "from": "2026-04-07", "to": "2026-04-07"}, headers=HTML)
    rows = re.findall(r"<tr><td class=\"nowrap\">([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td>", page.text)
    assert rows == [("2026-04-07 08:30:00", "sato", "PDFの取得"), ("2026-04-07 08:30:00", "sato", "案件の閲覧")]
    utc_day = client.get("/admin/audit", params={"actor": "sato", "from": "2026-04-06", "to": "2026-04-06"}, headers=HTML)
    assert "該当する記録はありません" in utc_day.text
    by_action = client.get("/admin/audit", params={"action": "case_read", "case_id": "c0ffee"}, headers=HTML).text
    assert by_action.count("<td>案件の閲覧</td>") == 2 and "PDFの取得</td>" not in by_action
    bad = client.get("/admin/audit", params={"from": "7/4/2026"}, headers=HTML)
    assert bad.status_code == 422 and "開始日は 2026-04-06 の形で入力してください" in bad.text
    assert 'href="/admin/audit.csv?actor=sato&amp;from=2026-04-07&amp;to=2026-04-07"' in page.text

    res = client.get("/admin/audit.csv", params={"actor": "sato", "from": "2026-04-07", "to": "2026-04-07"}, headers=HTML)
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(res.text.lstrip("\ufeff"))))
    assert [(r["actor"], r["action"], r["at_local"]) for r in lines] == [
        ("sato", "case_read", "2026-04-07 08:30:00"), ("sato", "pdf_download", "2026-04-07 08:30:00")]
    export = db.scalar(select(AuditEntry).where(AuditEntry.action == audit.EXPORT).order_by(AuditEntry.id.desc()))
    assert export is not None and export.actor == "boss" and export.target.startswith("admin/audit.csv actor=sato")
