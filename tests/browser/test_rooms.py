"""The building around the counter, in real headless Chromium against a real uvicorn: a department clerk
works a step on the department screen and the resident's phone changes; a department's call appears on
the waiting-room board (and is announced); reception prints a ticket whose QR code opens the phone page."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import events
from app.models import Case, QueueTicket, RoutingStep
from app.services import auth, cases, queue, routing
from app.services.clock import local_today
from app.services.definitions import DefinitionRegistry
from tests.browser.conftest import SCREENSHOT_DIR, TABLET, LiveServer, running_server, screenshot
from tests.conftest import MODEL_CASE, PASSWORD

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 640}
TV = {"width": 1920, "height": 1080}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """uvicorn with the change watcher polling fast, and one clerk per department involved."""
    with running_server(tmp_path_factory, "rooms", live_poll_interval=0.3) as live:
        with Session(live.engine) as s:
            for dep in ("shimin", "kodomo"):
                auth.create_user(s, username=f"{dep}1", password=PASSWORD, role="department", department_id=dep,
                                 display_name=f"{dep} 職員")
            s.commit()
        yield live


def model_visit(server: LiveServer) -> tuple[str, str]:
    """The model household interviewed, its ticket served at the counter and its routing slip built."""
    registry = DefinitionRegistry(server.settings.definitions_dir)
    registry.load()
    defs = registry.current
    model = json.loads(MODEL_CASE.read_text(encoding="utf-8"))
    with Session(server.engine) as s:
        case = cases.create_case(s, defs=defs, answers=model, user=None, office=server.settings.office_code,
                                 today=local_today(server.settings))
        queue.issue_ticket(s, case=case)
        queue.start_service(s, case_id=case.id, counter="1")
        queue.finish_service(s, case_id=case.id)
        routing.build_slip(s, defs=defs, case=case, actor=None)
        s.commit()
        return case.id, case.status_token


def context(browser: Any, viewport: dict[str, int], **extra: Any) -> Any:
    ctx = browser.new_context(viewport=viewport, locale="ja-JP", **extra)
    ctx.set_default_timeout(15_000)
    return ctx


def log_in(page: Any, base: str, username: str, landing: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("ユーザー名").fill(username)
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    page.wait_for_url(f"{base}{landing}")


def card(page: Any, step_id: int) -> Any:
    return page.locator(f"#step-{step_id}")


def step_of(server: LiveServer, case_id: str, department: str) -> RoutingStep:
    with Session(server.engine) as s:
        step = s.scalar(select(RoutingStep).where(RoutingStep.case_id == case_id, RoutingStep.department_id == department))
        assert step is not None
        return step


def test_department_clerk_claims_and_finishes_and_the_phone_changes(server: LiveServer, browser: Any) -> None:
    case_id, token = model_visit(server)
    shimin = step_of(server, case_id, "shimin")
    kodomo = step_of(server, case_id, "kodomo")
    assert kodomo.depends_on == ["shimin"]

    phone_ctx = context(browser, PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    tablet_ctx = context(browser, TABLET, has_touch=True)
    try:
        phone = phone_ctx.new_page()
        phone.goto(f"{server.url}/q/{token}")
        steps = phone.locator("#steps-list")
        # Only 市民課 can start; the others say they come later, after whom.
        expect(steps.locator(".step[data-department=shimin]").locator(".badge")).to_have_text("順番を待っています")
        expect(steps.locator(".step[data-department=kodomo]").locator(".badge")).to_have_text(
            "市民課の手続きが終わってから始まります")
        expect(steps.locator(".step[data-department=shimin]").locator(".step-wait")).to_contain_text("始まるまで約")
        assert steps.locator(".step-later").count() >= 1
        # 持ち物: grouped by department, identity proof once.
        docs = phone.locator("#documents")
        expect(docs.locator("h3").first).to_have_text("どの窓口でも使うもの")
        assert phone.content().count("本人確認書類（マイナンバーカード、運転免許証、在留カードなど）") == 1
        expect(phone.locator("h1")).to_contain_text("受付番号")
        # The counter is done with them and nobody needs them: they may go home (issue 16).
        expect(phone.locator("#headline")).to_have_text("お帰りいただけます。残りの手続きの準備ができたらお知らせします")
        screenshot(phone, "phone_after_interview")

        desk = tablet_ctx.new_page()
        log_in(desk, server.url, "shimin1", "/department/shimin")
        expect(desk.locator("h1")).to_contain_text("市民課")
        ready = desk.locator(".col-ready")
        expect(ready.locator(f"#step-{shimin.id}")).to_be_visible()
        # The counter clerk's memo and the print links of the step's forms are on the card.
        expect(card(desk, shimin.id).locator("a.print").first).to_be_visible()
        screenshot(desk, "department_ready")
        card(desk, shimin.id).get_by_role("button", name=re.compile("受け付ける")).click()
        expect(desk.locator(".col-in_progress").locator(f"#step-{shimin.id}")).to_be_visible()
        expect(steps.locator(".step[data-department=shimin]").locator(".badge")).to_have_text("担当の課で手続きをしています")

        card(desk, shimin.id).get_by_role("button", name=re.compile("完了にする")).click()
        expect(desk.locator(".col-done").locator(f"#step-{shimin.id}")).to_be_visible()
        # The phone changed without a reload: 市民課 done, こども福祉課 can start now.
        expect(steps.locator(".step[data-department=shimin]").locator(".badge")).to_have_text("終わりました")
        expect(steps.locator(".step[data-department=kodomo]").locator(".badge")).to_have_text("順番を待っています")
        assert step_of(server, case_id, "shimin").status == "done"

        # こども福祉課's screen shows the step as ready now, and a needs-resident reason reaches the phone.
        desk.locator("form[action='/logout'] button").click()
        desk.wait_for_url(f"{server.url}/login")
        desk2 = tablet_ctx.new_page()
        log_in(desk2, server.url, "kodomo1", "/department/kodomo")
        k = card(desk2, kodomo.id)
        expect(desk2.locator(".col-ready").locator(f"#step-{kodomo.id}")).to_be_visible()
        if kodomo.note:  # the counter clerk's memo (the order constraint) is on the card
            expect(k.locator(".memo")).to_contain_text(kodomo.note.splitlines()[0])
        k.get_by_role("button", name=re.compile("受け付ける")).click()
        k = card(desk2, kodomo.id)
        k.locator("summary", has_text="本人に来てもらう").click()
        k.get_by_label("理由（住民の画面に表示されます）").select_option("本人確認書類を確認させてください")
        k.get_by_label("補足（個人情報は書かないでください）").fill("口座の確認のため")
        k.get_by_role("button", name="本人の来庁待ちにする").click()
        expect(desk2.locator(".col-needs_resident").locator(f"#step-{kodomo.id}")).to_be_visible()
        expect(phone.locator("#headline")).to_have_text("こども福祉課（本庁舎2階）8番窓口へお越しください")
        expect(phone.locator("#come-back")).to_contain_text("本人確認書類を確認させてください。口座の確認のため")
        screenshot(desk2, "department_needs_resident")
        screenshot(phone, "phone_come_to_counter")

        phone.goto(f"{server.url}/q/{token}?lang=vi")
        expect(phone.locator("#headline")).to_have_text(
            "Vui lòng đến Phòng Phúc lợi Trẻ em (Tòa nhà chính, tầng 2 (2F)), quầy số 8.")
        screenshot(phone, "phone_vi")
        phone.goto(f"{server.url}/q/{token}?lang=ja-x-easy")
        expect(phone.locator("#come-back ruby").first).to_be_visible()
        screenshot(phone, "phone_easy_japanese")

        # A refused action comes back on the page (a stale version), nothing half-done.
        res = desk2.request.post(f"{server.url}/department/kodomo/steps/{kodomo.id}/resume",
                                 form={"csrf_token": desk2.locator("input[name=csrf_token]").first.input_value(),
                                       "version": "1"})
        assert res.status == 409 and "他の職員が先に" in res.text()
        # Another department's screen is refused.
        other = desk2.request.get(f"{server.url}/department/shimin", headers={"Accept": "text/html"})
        assert other.status == 403
    finally:
        phone_ctx.close()
        tablet_ctx.close()


def test_a_department_call_appears_on_the_board(server: LiveServer, browser: Any) -> None:
    case_id, token = model_visit(server)
    shimin = step_of(server, case_id, "shimin")
    tv_ctx = context(browser, TV)
    tablet_ctx = context(browser, TABLET, has_touch=True)
    phone_ctx = context(browser, PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    try:
        tv = tv_ctx.new_page()
        tv.goto(f"{server.url}/board")
        expect(tv.locator("main")).to_be_visible()
        phone = phone_ctx.new_page()
        phone.goto(f"{server.url}/q/{token}")

        desk = tablet_ctx.new_page()
        log_in(desk, server.url, "shimin1", "/department/shimin")
        card(desk, shimin.id).get_by_role("button", name=re.compile("受け付ける")).click()
        c = card(desk, shimin.id)
        c.get_by_label("呼ぶ窓口").select_option("2")
        c.get_by_role("button", name=re.compile("窓口へ呼ぶ")).click()
        expect(card(desk, shimin.id).locator(".call-badge")).to_contain_text("呼出中　2番窓口")

        with Session(server.engine) as s:
            ticket = s.get(QueueTicket, case_id)
            assert ticket is not None
            label = f"{ticket.number:03d}"
            assert (ticket.status, ticket.queue, ticket.counter) == ("called", "shimin", "2")
        row = tv.locator("#calling li", has_text=label)
        expect(row).to_contain_text("2番窓口")
        expect(row).to_contain_text("市民課（本庁舎1階）")
        tv.wait_for_function("() => window.boardAnnouncements.length > 0")
        spoken = tv.evaluate("() => window.boardAnnouncements")
        assert spoken[-1] == f"受付番号、{ticket.number}番の方。市民課、2番窓口へお越しください。"
        expect(phone.locator("#headline")).to_have_text("市民課（本庁舎1階） 2番窓口へお越しください")
        screenshot(tv, "board_department_call")

        # The resident arrives: the call leaves the board's "calling" list.
        card(desk, shimin.id).get_by_role("button", name=re.compile("来庁した")).click()
        expect(tv.locator("#calling li", has_text=label)).to_have_count(0)
        card(desk, shimin.id).get_by_role("button", name=re.compile("完了にする")).click()
        with Session(server.engine) as s:
            ticket = s.get(QueueTicket, case_id)
            assert ticket is not None and ticket.status == "done"
            for step in s.scalars(select(RoutingStep).where(RoutingStep.case_id == case_id)):
                step.status = "done"
            # Every change the phone hears about is an event (the routing service writes one per step).
            case = s.get(Case, case_id)
            assert case is not None
            cases.record_event(s, case, events.STEP_DONE, data={"department": "all"})
            s.commit()
        # Everything done: the page reloads itself with the satisfaction question at the top, in view.
        expect(phone.locator("#headline")).to_have_text("手続きはすべて終わりました。お帰りいただけます",
                                                        timeout=15_000)
        expect(phone.locator("#satisfaction")).to_be_in_viewport()
        expect(phone.locator("#documents")).to_be_hidden()
        screenshot(phone, "phone_all_done")
        phone.get_by_role("button", name=re.compile("^5")).click()
        expect(phone.locator("#satisfaction h2")).to_have_text("ご回答ありがとうございました")
        expect(phone.locator("#satisfaction h2")).to_be_in_viewport()
    finally:
        tv_ctx.close()
        tablet_ctx.close()
        phone_ctx.close()


def test_reception_prints_a_ticket_whose_qr_opens_the_phone_page(server: LiveServer, browser: Any) -> None:
    tablet_ctx = context(browser, TABLET, has_touch=True)
    phone_ctx = context(browser, PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    try:
        page = tablet_ctx.new_page()
        page.add_init_script("window.print = function () { window.printed = (window.printed || 0) + 1; };")
        log_in(page, server.url, "clerk", "/counter")
        page.goto(f"{server.url}/reception")
        # Nothing chosen: a field error in Japanese, no ticket.
        page.get_by_role("button", name="整理券を印刷する").click()
        expect(page.locator("#events-error")).to_have_text("ご用件を1つ以上選んでください")
        page.locator("label.event-button", has_text="転入").click()
        page.locator("label.event-button", has_text="保育").click()
        page.get_by_label("配慮が必要（車いす・妊娠中・お子さん連れ・体調など）").check()
        screenshot(page, "reception")
        page.get_by_role("button", name="整理券を印刷する").click()
        page.wait_for_url("**/reception/tickets/*")
        page.wait_for_function("() => window.printed === 1")
        number = page.locator("#ticket-number").inner_text()
        assert re.fullmatch(r"\d{3}", number)
        expect(page.locator(".priority")).to_have_text("優先")
        assert page.locator(".qr svg").count() == 1
        # The receipt is 80 mm wide when printed.
        page.emulate_media(media="print")
        width = page.locator("#receipt").evaluate("el => el.getBoundingClientRect().width")
        assert abs(width - 80 / 25.4 * 96) < 2
        expect(page.locator(".bar")).to_be_hidden()
        page.emulate_media(media="screen")
        screenshot(page, "reception_ticket")
        page.set_viewport_size({"width": 360, "height": 900})
        page.emulate_media(media="print")
        if SCREENSHOT_DIR:
            page.locator("#receipt").screenshot(path=str(Path(SCREENSHOT_DIR) / "reception_ticket_print.png"))

        # The QR code's URL is the phone page (the printed base URL; the path is what the test server serves).
        url = page.locator("#resident-link").get_attribute("href")
        assert url and url.startswith(server.settings.public_base_url)
        path = url[len(server.settings.public_base_url.rstrip("/")):]
        phone = phone_ctx.new_page()
        phone.goto(f"{server.url}{path}")
        expect(phone.locator("#ticket-number")).to_have_text(number)
        expect(phone.locator("#headline")).to_have_text(
            "待合室でお待ちください。順番が来たらこの画面と表示板でお知らせします")
        with Session(server.engine) as s:
            ticket = s.scalar(select(QueueTicket).where(QueueTicket.number == int(number),
                                                        QueueTicket.day == local_today(server.settings)))
            assert ticket is not None and ticket.priority_reason == "accessibility" and ticket.priority >= 1
    finally:
        tablet_ctx.close()
        phone_ctx.close()
