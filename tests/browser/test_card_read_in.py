"""The tablet and the counter card bridge together, in real Chromium: the tablet shows a one-time code, the
bridge reads the fictional card through pcscd + vpcd and posts it, the interview reloads with the answers
marked カード; and 本日の来庁予定 from a 転入予約 import opens a visit marked 転入予約."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from app.services import planned_visits
from app.services.clock import local_today
from tests.browser.conftest import TABLET, LiveServer, screenshot
from tests.browser.test_counter_flow import log_in, start
from tests.cardbridge.conftest import missing_stack, pcsc_stack
from tests.cardbridge.emulator import Person

pytestmark = pytest.mark.browser
SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "moving_in"


@pytest.fixture
def page(browser: Any, live_server: LiveServer) -> Any:
    context = browser.new_context(viewport=TABLET, device_scale_factor=1, has_touch=True, locale="ja-JP")
    context.set_default_timeout(30_000)
    pg = context.new_page()
    yield pg
    context.close()


def test_tablet_code_then_card_bridge_fills_the_interview(page: Any, live_server: LiveServer, tmp_path: Path) -> None:
    reason = missing_stack()
    if reason:
        pytest.skip(reason)
    base = live_server.url
    log_in(page, base)
    start(page, "転入")
    page.get_by_role("button", name="読み取りコードを表示").click()
    code_el = page.locator("#card-code-value")
    expect(code_el).to_have_text(re.compile(r"^[2-9A-Z]{4}-[2-9A-Z]{4}$"))
    screenshot(page, "card_pairing_code")
    code = code_el.inner_text()
    person = Person()
    with pcsc_stack(tmp_path, person) as stack:
        exe = shutil.which("kakanai", path=str(Path(sys.executable).parent))
        command = [exe] if exe else [sys.executable, "-m", "app.cli"]
        run = subprocess.run([*command, "card-bridge", "--server", base, "--wait", "15"],
                             input=f"{code}\n{person.pin}\n", env=stack.env(), capture_output=True, text=True,
                             timeout=90, check=False)
        assert run.returncode == 0, run.stdout + run.stderr
    # The tablet notices the code was used and reloads with the card's answers, marked カード.
    page.wait_for_selector(".source-mark", timeout=20_000)
    member = page.locator('.field[data-path="household.members[0].family_name"]')
    expect(member.locator("input")).to_have_value("番号")
    expect(member.locator(".source-mark")).to_have_text("カード")
    expect(page.locator('.field[data-path="move.previous_address"] .source-mark')).to_have_text("カード")
    expect(page.locator("#card-marks-notice")).to_contain_text("6 項目")
    member.scroll_into_view_if_needed()
    screenshot(page, "card_read_marked")
    page.get_by_role("button", name="お客様と確認した（印を消す）").click()
    expect(page.locator(".source-mark")).to_have_count(0)
    page.reload()
    expect(page.locator(".field .source-mark")).to_have_count(0)


def test_planned_visit_from_the_import_opens_with_marked_answers(page: Any, live_server: LiveServer) -> None:
    from app.importers.mapping import load_mapping

    today = local_today(live_server.settings)
    data = (SAMPLES / "export.csv").read_text(encoding="utf-8").replace("2026/04/06", today.strftime("%Y/%m/%d"))
    with live_server.session() as s:
        planned_visits.import_file(s, defs=live_server.app.state.definitions.current,
                                   mapping=load_mapping(SAMPLES / "mapping.yaml"), data=data.encode(),
                                   office=live_server.settings.office_code, user=None, today=today)
        s.commit()
    log_in(page, live_server.url)
    planned = page.locator("#planned")
    expect(planned).to_contain_text("本日の来庁予定　2件")
    expect(planned).to_contain_text("港 太郎")
    screenshot(page, "planned_today")
    planned.locator("tr", has_text="R2026-0001").get_by_role("button", name="受付する").click()
    page.wait_for_url("**/counter/visits/*")
    expect(page.locator('.field[data-path="household.members[2].given_name"] input')).to_have_value("一郎")
    expect(page.locator('.field[data-path="household.members[2].given_name"] .source-mark')).to_have_text("転入予約")
    expect(page.locator('.field[data-path="move.moved_on"] .source-mark')).to_have_text("転入予約")
