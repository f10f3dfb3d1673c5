"""Pre-entry on a 390×844 phone in headless Chromium: the model household entered one question per screen,
handed over by its QR code (decoded from the screenshot), opened at the counter with 本人入力 marks; the
stored answers equal the model household and the phone's browser storage holds nothing afterwards."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select

from app.forms.paths import get_path
from app.models import AnswerSource, Case
from tests.browser.axe import assert_clean
from tests.browser.conftest import SCREENSHOT_DIR, TABLET, LiveServer, screenshot
from tests.browser.test_counter_flow import log_in, model, wait_saved

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
MAX_SCREENS = 200


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                                  locale="ja-JP")
    context.set_default_timeout(30_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def tablet(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=TABLET, device_scale_factor=1, has_touch=True, locale="ja-JP")
    context.set_default_timeout(30_000)
    yield context.new_page()
    context.close()



def answer_screen(page: Any, value: Any) -> None:
    """Give this screen's answer the way a person would (tap a choice, type text), then 次へ."""
    if value is not None:
        form = page.locator("form")
        if isinstance(value, dict):  # an address
            for part, text in value.items():
                page.locator(f"#q-{part}").fill(text)
        elif isinstance(value, list) and form.locator("input[type=checkbox]").count():
            for item in value:
                form.locator(f"input[type=checkbox][value='{item}']").check()
        elif isinstance(value, list):
            page.locator("#q-value").fill("\n".join(value))
        elif form.locator("input[type=radio]").count():
            form.locator(f"input[type=radio][value='{str(value).lower() if isinstance(value, bool) else value}']").check()
        else:
            page.locator("#q-value").fill(str(value))
    page.get_by_role("button", name="次へ", exact=True).click()


def decode_qr(page: Any) -> str:
    """Decode the QR code the phone shows from a screenshot of it (a real decoder, not the page's text)."""
    import zxingcpp

    png = page.locator("#pre-qr svg").screenshot()
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)).convert("L"))
    assert len(found) == 1, found
    return found[0].text


def test_model_household_entered_on_a_phone_and_handed_over_by_qr(live_server: LiveServer, phone: Any,
                                                                 tablet: Any) -> None:
    expected = model()
    for key in ("survey_baseline", "$comment"):
        expected.pop(key)
    base = live_server.url
    page = phone
    page.goto(f"{base}/pre")
    assert_clean(page, "pre start")
    page.get_by_role("button", name="入力をはじめる").click()
    page.wait_for_url("**/pre/q")

    seen: list[str] = []
    members_added = 1
    for _ in range(MAX_SCREENS):
        if "/pre/handoff" in page.url:
            break
        assert page.locator("input[name=step]").count() == 1  # one question per screen
        key = page.locator("input[name=step]").input_value()
        assert page.locator(".errors").count() == 0, (seen[-1:], page.locator(".errors").inner_text())
        seen.append(key)
        if key == "members.more":
            if members_added < len(expected["household"]["members"]):
                members_added += 1
                page.get_by_role("button", name="もう1人追加する").click()
            else:
                page.get_by_role("button", name="いいえ、次へ").click()
            page.wait_for_load_state()
            continue
        if key == "household.members[0].family_name":
            screenshot(page, "pre_1_phone_question")
            assert_clean(page, "pre question (text)")
        if key == "move.moving_out_method":
            assert_clean(page, "pre question (choice)")
        if key == "address":
            assert_clean(page, "pre question (address)")
        answer_screen(page, get_path(expected, key))
        page.wait_for_load_state()
    else:
        pytest.fail(f"no hand-off screen after {MAX_SCREENS} screens: {seen[-5:]}")
    # Only what applies: no birth, death or agent questions for a family moving in.
    assert not any(k.startswith(("birth.", "death.", "attendance.")) for k in seen)
    assert sum(1 for k in seen if k.endswith(".family_name") and k.startswith("household.")) == 4

    page.wait_for_url("**/pre/handoff")
    shown = page.locator(".pre-code").inner_text().strip()
    scanned = decode_qr(page)
    assert scanned.endswith(shown), (scanned, shown)
    assert_clean(page, "pre hand-off")
    screenshot(page, "pre_2_phone_qr")

    # At the counter a USB scanner types the QR's text and Enter into 事前入力コード.
    log_in(tablet, base)
    tablet.get_by_label("事前入力コード").fill(scanned)
    tablet.get_by_label("事前入力コード").press("Enter")
    tablet.wait_for_url("**/counter/visits/*")
    case_id = tablet.url.split("/counter/visits/")[1].split("?")[0]
    marks = tablet.locator(".field .source-mark", has_text="本人入力")
    assert marks.count() > 40
    if SCREENSHOT_DIR:  # the top of the interview and the first member, not the whole long page
        tablet.locator("#section-members").scroll_into_view_if_needed()
        tablet.screenshot(path=str(Path(SCREENSHOT_DIR) / "pre_3_counter_marks.png"))

    with live_server.session() as s:
        stored = s.get(Case, case_id).answers
        sources = set(s.scalars(select(AnswerSource.source).where(AnswerSource.case_id == case_id)))
    assert sources == {"resident"}
    assert stored["household"]["members"] == expected["household"]["members"]
    assert {k: v for k, v in stored.items() if k not in ("visit_date", "household")} == {
        k: v for k, v in expected.items() if k not in ("visit_date", "household")}

    # The clerk corrects one answer with the resident: the review lists it (resident's value → clerk's value).
    tablet.get_by_label("電話番号（日中に連絡がとれる番号）").fill("06-6489-0000")
    wait_saved(tablet)
    tablet.goto(f"{base}/counter/visits/{case_id}/review")
    changes = tablet.locator("#pre-changes")
    assert "（1件）" in changes.locator("h2").inner_text()
    row = changes.locator("tbody tr").first.inner_text()
    assert "090-1234-5678" in row and "06-6489-0000" in row
    if SCREENSHOT_DIR:
        changes.screenshot(path=str(Path(SCREENSHOT_DIR) / "pre_5_review_changes.png"))

    # The phone notices the hand-off by itself and keeps nothing personal.
    page.wait_for_url("**/pre/done", timeout=15_000)
    assert "窓口にお渡ししました" in page.locator("h1").inner_text()
    body = page.locator("body").inner_text()
    for personal in ("尼崎", "アマガサキ", "南塚口", "090-1234-5678", shown):
        assert personal not in body
    storage = page.evaluate("""async () => ({
        local: localStorage.length, session: sessionStorage.length,
        idb: (await indexedDB.databases()).map(d => d.name)})""")
    assert storage == {"local": 0, "session": 0, "idb": []}
    assert [c for c in page.context.cookies() if c["name"] == "kakanai_pre"] == []
    assert_clean(page, "pre done")
    # The code works once.
    tablet.goto(f"{base}/counter")
    tablet.get_by_label("事前入力コード").fill(shown)
    tablet.get_by_role("button", name="事前入力を開く").click()
    assert "すでに窓口で使われています" in tablet.locator("#pre-error").inner_text()


def test_the_phone_in_english_tells_errors_in_english(live_server: LiveServer, phone: Any) -> None:
    page = phone
    page.goto(f"{live_server.url}/pre?lang=en")
    assert page.evaluate("document.documentElement.lang") == "en"
    page.get_by_role("button", name="Start").click()
    page.wait_for_url("**/pre/q")
    assert page.locator("h1").inner_text() == "What happened? (choose all that apply)"
    page.get_by_label("Moving in (you moved here from another city)").check()
    page.get_by_role("button", name="Next", exact=True).click()
    page.goto(f"{live_server.url}/pre/q?step=phone")
    page.get_by_role("textbox", name="Phone number (reachable during the day)").fill("call me")
    page.get_by_role("button", name="Next", exact=True).click()
    alert = page.get_by_role("alert")
    assert "Please enter the phone number in digits" in alert.inner_text()
    assert page.get_by_role("textbox", name="Phone number (reachable during the day)").get_attribute("aria-invalid") == "true"
    assert_clean(page, "pre question with an error (en)")
    screenshot(page, "pre_4_phone_error_en")


def test_a_death_visit_on_the_phone_in_vietnamese(live_server: LiveServer, phone: Any) -> None:
    """Beyond a move-in: after a death (おくやみ) the phone asks in the page language too."""
    page = phone
    page.goto(f"{live_server.url}/pre?lang=vi")
    page.locator("form[action^='/pre/start'] button[type=submit]").click()
    page.wait_for_url("**/pre/q")
    page.get_by_label("Tang sự (người thân qua đời)").check()
    page.locator("button[name=nav][value=next]").click()
    page.goto(f"{live_server.url}/pre/q?step=death.heir_relationship")
    assert page.locator("h1").inner_text() == "Quan hệ của người thừa kế với người đã mất"
    assert page.get_by_label("Vợ/chồng").count() == 1
    assert "[日本語]" not in page.locator("main").inner_text()
    assert_clean(page, "pre question of a death visit (vi)")
    screenshot(page, "pre_6_phone_death_vi")
