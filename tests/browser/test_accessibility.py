"""axe-core on every page a resident or a member of staff sees, in real Chromium: no critical or serious
violation on login, today, interview, review, documents, dashboard, the department screen, reception and
its ticket, the board and the phone page (Japanese and Vietnamese); tablet targets at least 44 px."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.services import auth, cases, queue, routing
from app.services.clock import local_today
from app.services.definitions import DefinitionRegistry
from tests.browser.axe import assert_clean
from tests.browser.conftest import TABLET, LiveServer, running_server
from tests.conftest import MODEL_CASE, PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with running_server(tmp_path_factory, "axe") as live:
        with Session(live.engine) as s:
            auth.create_user(s, username="kodomo1", password=PASSWORD, role="department", department_id="kodomo")
            s.commit()
        yield live


@pytest.fixture(scope="module")
def visit(server: LiveServer) -> dict[str, str]:
    registry = DefinitionRegistry(server.settings.definitions_dir)
    registry.load()
    with Session(server.engine) as s:
        case = cases.create_case(s, defs=registry.current, answers=json.loads(MODEL_CASE.read_text(encoding="utf-8")),
                                 user=None, office=server.settings.office_code, today=local_today(server.settings))
        queue.issue_ticket(s, case=case)
        routing.build_slip(s, defs=registry.current, case=case, actor=None)
        s.commit()
        return {"id": case.id, "token": case.status_token}


def tablet(browser: Any) -> Any:
    # bypass_csp: axe-core is injected as a script tag, which the pages' CSP (script-src 'self') would refuse.
    ctx = browser.new_context(viewport=TABLET, locale="ja-JP", has_touch=True, bypass_csp=True)
    ctx.set_default_timeout(15_000)
    return ctx


def log_in(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("ユーザー名").fill(username)
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    page.wait_for_load_state()


def small_targets(page: Any, selector: str) -> list[str]:
    """Buttons, links and form controls in `selector` smaller than 44×44 CSS px (inline text links excepted)."""
    return page.evaluate(
        """(selector) => Array.from(document.querySelectorAll(selector + ' :is(button, a.button, select, '
              + 'input:not([type=hidden]), summary, label.event-button, label.priority-button, a.print)'))
            .filter(el => el.offsetParent !== null)
            .map(el => [el, el.getBoundingClientRect()])
            .filter(([el, r]) => (r.height < 44 || r.width < 44) && !['checkbox', 'radio'].includes(el.type))
            .map(([el, r]) => el.outerHTML.slice(0, 80) + ` ${Math.round(r.width)}x${Math.round(r.height)}`)""",
        selector,
    )


def test_staff_pages(server: LiveServer, browser: Any, visit: dict[str, str]) -> None:
    ctx = tablet(browser)
    try:
        page = ctx.new_page()
        page.goto(f"{server.url}/login")
        assert_clean(page, "login")
        log_in(page, server.url, "clerk")
        page.goto(f"{server.url}/counter")
        assert_clean(page, "today")
        small = {"today": small_targets(page, "body")}
        for name in ("", "/review", "/documents"):
            page.goto(f"{server.url}/counter/visits/{visit['id']}{name}")
            assert_clean(page, name or "interview")
            small[name or "interview"] = small_targets(page, "body")
        assert {k: v for k, v in small.items() if v} == {}
        page.goto(f"{server.url}/reception")
        assert_clean(page, "reception")
        assert small_targets(page, "main") == []
        page.add_init_script("window.print = function () {};")
        page.locator("label.event-button").first.click()
        page.get_by_role("button", name="整理券を印刷する").click()
        page.wait_for_url("**/reception/tickets/*")
        assert_clean(page, "ticket")
        ctx.clear_cookies()

        log_in(page, server.url, "kodomo1")
        page.goto(f"{server.url}/department/kodomo")
        assert_clean(page, "department screen")
        assert small_targets(page, "main") == []
        ctx.clear_cookies()

        log_in(page, server.url, "admin")
        page.goto(f"{server.url}/dashboard")
        page.wait_for_load_state("networkidle")
        assert_clean(page, "dashboard")
    finally:
        ctx.close()


def test_resident_pages_and_board(server: LiveServer, browser: Any, visit: dict[str, str]) -> None:
    phone = browser.new_context(viewport={"width": 360, "height": 640}, is_mobile=True, has_touch=True, locale="ja-JP",
                                bypass_csp=True)
    tv = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="ja-JP", bypass_csp=True)
    try:
        page = phone.new_page()
        for lang in ("ja", "vi", "ja-x-easy"):
            page.goto(f"{server.url}/q/{visit['token']}?lang={lang}")
            assert page.locator("h1").count() == 1
            assert_clean(page, f"phone page ({lang})")
        board = tv.new_page()
        board.goto(f"{server.url}/board")
        assert board.locator("main").count() == 1 and board.locator("h1").count() == 1
        assert_clean(board, "board")
    finally:
        phone.close()
        tv.close()
