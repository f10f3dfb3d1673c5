"""The counter tablet, in real Chromium: an invalid My Number blocks signing, the server's field error stays
on screen, and after logout nothing personal is left in the tablet's storage."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import pytest
from playwright.sync_api import expect

from app.services import cases
from tests.browser.conftest import TABLET, LiveServer, screenshot
from tests.browser.test_counter_flow import log_in, model, start

pytestmark = pytest.mark.browser

STORAGE = """async () => ({
  local: Object.keys(localStorage).map((k) => k + '=' + localStorage.getItem(k)),
  session: Object.keys(sessionStorage).map((k) => k + '=' + sessionStorage.getItem(k)),
  idb: indexedDB.databases ? (await indexedDB.databases()).map((d) => d.name) : [],
})"""


@pytest.fixture
def page(browser: Any, live_server: LiveServer) -> Any:
    context = browser.new_context(viewport=TABLET, device_scale_factor=1, has_touch=True, locale="ja-JP")
    context.set_default_timeout(30_000)
    pg = context.new_page()
    yield pg
    context.close()


def model_visit(live_server: LiveServer, answers: dict[str, Any]) -> str:
    """A visit whose interview is already complete (as if typed in), on the live server's database."""
    with live_server.session() as s:
        case = cases.create_case(s, defs=live_server.app.state.definitions.current, answers=answers, user=None,
                                 office=live_server.settings.office_code, today=dt.date(2026, 4, 6),
                                 client_date=True)
        s.commit()
        return case.id


def test_an_invalid_my_number_cannot_be_signed(page: Any, live_server: LiveServer) -> None:
    base = live_server.url
    log_in(page, base)
    case_id = model_visit(live_server, copy.deepcopy(model()))
    page.goto(f"{base}/counter/visits/{case_id}")
    field = page.locator(".field[data-path='household.members[0].my_number']")
    field.locator("input").fill("12345678901")  # 11 digits: only the server knows this is wrong
    page.locator("#save-state").click()
    page.wait_for_function("() => document.getElementById('save-state').textContent.length > 0")
    expect(field.locator(".error")).to_contain_text("12桁")
    # The page's own check (which only knows the check digit) must not wipe the server's message.
    page.wait_for_timeout(500)
    expect(field.locator(".error")).to_contain_text("12桁")
    page.goto(f"{base}/counter/visits/{case_id}/review")
    problems = page.locator("#problems-title")
    expect(problems).to_be_visible()
    assert "個人番号" in page.locator("ul.errors").inner_text()
    assert page.locator("#signature-pad").count() == 0
    screenshot(page, "review_blocked_invalid_my_number")


def test_after_logout_the_tablet_keeps_nothing_personal(page: Any, live_server: LiveServer) -> None:
    base = live_server.url
    log_in(page, base)
    start(page, "転入（引っ越してきた）")
    members = page.locator("#section-members")
    members.get_by_role("button", name="＋ 世帯員を追加").click()
    item = members.locator(".items > .item").nth(0)
    item.get_by_label("氏", exact=True).fill("尼崎")
    item.get_by_label("個人番号（マイナンバー）").fill("123456789019")  # wrong check digit: kept as a draft
    page.locator("#save-state").click()
    page.wait_for_function("() => Object.keys(localStorage).some((k) => k.startsWith('kakanai:draft:'))")
    held = page.evaluate(STORAGE)
    assert any("尼崎" in v for v in held["local"])  # the draft really held personal data ...
    assert not any("123456789019" in v for v in held["local"])  # ... but never the My Number (its mask only)
    assert any("********9019" in v for v in held["local"])
    page.get_by_role("button", name="ログアウト").click()
    page.wait_for_url("**/login")
    left = page.evaluate(STORAGE)
    assert left == {"local": [], "session": [], "idb": []}, left
    assert json.dumps(left).find("尼崎") < 0
