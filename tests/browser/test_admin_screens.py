"""The administrators' screens in Chromium: the admin menu, the staff list (disable, unlock, a new password
shown once) and the audit log in local time. Refresh the README's screenshots with
`KAKANAI_SCREENSHOTS=docs/screens .venv/bin/python -m pytest tests/browser/test_admin_screens.py`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from app.forms.loader import load_definitions
from app.models import User
from app.services import audit, auth, departments
from tests.browser.conftest import TABLET, LiveServer, screenshot
from tests.conftest import PASSWORD


@pytest.fixture
def page(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    context = browser.new_context(viewport=TABLET, device_scale_factor=1, locale="ja-JP")
    context.set_default_timeout(30_000)
    yield context.new_page()
    context.close()


def _seed(live: LiveServer) -> None:
    """Fictional staff in several states, a department token and some audit entries at known times."""
    defs = load_definitions(live.settings.definitions_dir)
    now = dt.datetime.now(dt.UTC)
    with live.session() as s:
        for name, role, shown, dept in (("yamada", "counter", "山田 花子", None), ("kimura", "counter", "木村 一郎", None),
                                        ("kodomo1", "department", "こども課 職員", "kodomo")):
            auth.create_user(s, username=name, password=PASSWORD, role=role, display_name=shown, department_id=dept)
        s.flush()
        s.scalar(select(User).where(User.username == "kimura")).locked_until = now + dt.timedelta(minutes=12)  # type: ignore[union-attr]
        clerk = s.scalar(select(User).where(User.username == "clerk"))
        clerk.last_login_at = now - dt.timedelta(hours=1)  # type: ignore[union-attr]
        departments.create_token(s, defs=defs, department_id="kodomo", label="kodomo-system", by_name="cli:ops")
        for minutes, actor, action, case, target in (
            (50, "clerk", audit.CASE_CREATED, "3f2a9c1d7e8b4a6f9d0c1b2a3e4f5a6b", ""),
            (45, "clerk", audit.CASE_READ, "3f2a9c1d7e8b4a6f9d0c1b2a3e4f5a6b", "counter/interview"),
            (30, "clerk", audit.PDF_DOWNLOAD, "3f2a9c1d7e8b4a6f9d0c1b2a3e4f5a6b", "bundle"),
            (20, "kimura", audit.LOGIN_FAILED, None, ""),
            (5, "dept-kodomo", audit.DEPARTMENT_FETCH, "3f2a9c1d7e8b4a6f9d0c1b2a3e4f5a6b", "steps"),
        ):
            entry = audit.record(s, action=action, actor_name=actor, case_id=case, target=target,
                                 outcome="bad_password" if action == audit.LOGIN_FAILED else "ok",
                                 client=audit.Client(ip="10.0.0.21", user_agent="tablet"))
            entry.at = now - dt.timedelta(minutes=minutes)
        s.commit()


def test_admin_screens(page: Any, live_server: LiveServer) -> None:
    base = live_server.url
    _seed(live_server)
    page.goto(f"{base}/login")
    page.get_by_label("ユーザー名").fill("admin")
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    page.wait_for_url(f"{base}/counter")
    menu = page.get_by_role("navigation", name="管理メニュー")
    assert menu.get_by_role("link", name="職員").is_visible()
    menu.get_by_role("link", name="職員").click()
    page.wait_for_url(f"{base}/admin/staff")
    kimura = page.get_by_role("row").filter(has_text="kimura")
    assert "ロック中" in kimura.inner_text()
    # Disable one account (CSRF token from the form), then see it in the list.
    page.get_by_role("button", name="yamada を無効にする").click()
    page.wait_for_url(f"{base}/admin/staff?*")
    assert "yamada を無効にしました" in page.locator("p.notice").inner_text()
    assert "無効" in page.get_by_role("row").filter(has_text="yamada").inner_text()
    screenshot(page, "admin_staff")
    # A new password, shown once.
    row = page.get_by_role("row").filter(has_text="kimura")
    row.locator("summary").click()
    row.get_by_role("button", name="kimura のパスワードを再設定する").click()
    secret = page.locator("p.secret").inner_text().strip()
    assert len(secret) >= 16
    screenshot(page, "admin_password_once")
    with live_server.session() as s:
        user = s.scalar(select(User).where(User.username == "kimura"))
        assert user is not None and user.locked_until is None
        auth.authenticate(s, username="kimura", password=secret)

    page.goto(f"{base}/admin/tokens")
    assert "kodomo-system" in page.get_by_role("table").inner_text()
    screenshot(page, "admin_tokens")

    menu = page.get_by_role("navigation", name="管理メニュー")
    menu.get_by_role("link", name="監査ログ").click()
    page.wait_for_url(f"{base}/admin/audit")
    table = page.get_by_role("table").inner_text()
    local_now = dt.datetime.now(live_server.settings.tz)
    assert local_now.strftime("%Y-%m-%d") in table or (local_now - dt.timedelta(hours=1)).strftime("%Y-%m-%d") in table
    assert "アカウント無効化" in table and "ログイン失敗" in table
    page.get_by_label("職員（ユーザー名）").fill("clerk")
    page.get_by_label("操作").select_option("pdf_download")
    page.get_by_role("button", name="検索").click()
    page.wait_for_url(f"{base}/admin/audit?*")
    rows = page.locator("tbody tr")
    assert rows.count() == 1 and "PDFの取得" in rows.first.inner_text()
    page.get_by_label("操作").select_option("")
    page.get_by_label("職員（ユーザー名）").fill("")
    page.get_by_role("button", name="検索").click()
    page.wait_for_url(f"{base}/admin/audit?*")
    screenshot(page, "admin_audit")
