"""Dates on the numeric keypad alone: one tap for the era, then 年・月・日 digits; the server stores ISO and
reports a date that does not exist (2月30日) or lies outside its era (令和 before 2019-05-01) at the field."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from app.models import Case
from tests.browser.conftest import LiveServer, screenshot_of
from tests.browser.test_counter_flow import log_in, page, section, start, wait_saved

pytestmark = pytest.mark.browser
__all__ = ["page"]  # the tablet fixture, imported for this module


def keypad(field: Any, era: str, y: str, m: str, d: str) -> None:
    field.get_by_label(era, exact=True).check()
    field.get_by_label("年", exact=True).fill(y)
    field.get_by_label("月", exact=True).fill(m)
    field.get_by_label("日", exact=True).fill(d)


def test_a_birth_date_entered_with_the_era_chooser_and_digits_is_stored_as_iso(
        page: Any, live_server: LiveServer) -> None:
    log_in(page, live_server.url)
    case_id = start(page, "転入（引っ越してきた）")
    members = section(page, "members")
    members.get_by_role("button", name="＋ 世帯員を追加").click()
    item = members.locator(".items > .item").first
    item.get_by_label("氏", exact=True).fill("尼崎")
    birth = item.locator(".field[data-key=birth_date]")
    for digit in ("y", "m", "d"):  # the numeric keypad on a tablet
        assert birth.locator(f"input[data-date-part={digit}]").get_attribute("inputmode") == "numeric"
    keypad(birth, "平成", "2", "6", "15")
    assert birth.get_by_label("生年月日").input_value() == "平成2年6月15日"
    expect(birth.locator("[data-preview]")).to_have_text("＝ 平成2年6月15日（1990-06-15）")
    moved = page.locator(".field[data-path='move.moved_on']")
    keypad(moved, "西暦", "2026", "4", "1")
    page.locator("#save-state").click()
    wait_saved(page)
    expect(moved.locator("[data-preview]")).to_have_text("＝ 令和8年4月1日（2026-04-01）")
    screenshot_of(page, birth, "6_date_keypad")
    with live_server.session() as s:
        stored = s.get(Case, case_id).answers
    assert stored["household"]["members"][0]["birth_date"] == "1990-06-15"
    assert stored["move"]["moved_on"] == "2026-04-01"

    # After a reload the stored ISO date comes back as era buttons and digits.
    page.reload()
    birth = section(page, "members").locator(".items > .item").first.locator(".field[data-key=birth_date]")
    assert birth.locator("input[data-date-part=era]:checked").get_attribute("value") == "H"
    assert [birth.get_by_label(x, exact=True).input_value() for x in ("年", "月", "日")] == ["2", "6", "15"]

    # The 和暦 shorthand typed into the text still works, and fills the digits.
    birth.get_by_label("生年月日").fill("S63.1.7")
    assert birth.locator("input[data-date-part=era]:checked").get_attribute("value") == "S"
    assert [birth.get_by_label(x, exact=True).input_value() for x in ("年", "月", "日")] == ["63", "1", "7"]
    page.locator("#save-state").click()
    wait_saved(page)
    with live_server.session() as s:
        assert s.get(Case, case_id).answers["household"]["members"][0]["birth_date"] == "1988-01-07"


@pytest.mark.parametrize(("era", "y", "m", "d", "message"), [
    ("令和", "1", "4", "30", "令和元年4月30日は令和の期間外です"),
    ("令和", "8", "2", "30", "令和8年2月30日は存在しない日付です"),
])
def test_an_impossible_date_gets_a_field_error(page: Any, live_server: LiveServer, era: str, y: str, m: str, d: str,
                                               message: str) -> None:
    log_in(page, live_server.url)
    case_id = start(page, "転入（引っ越してきた）")
    moved = page.locator(".field[data-path='move.moved_on']")
    keypad(moved, era, y, m, d)
    page.locator("#save-state").click()
    expect(moved.locator(".error")).to_contain_text(message)
    expect(moved.get_by_label("引っ越した日（異動日）")).to_have_attribute("aria-invalid", "true")
    expect(moved.locator("[data-preview]")).to_have_text("")
    # The digits stay for correction; fixing the day clears the error and stores the date.
    moved.get_by_label("日", exact=True).fill("28" if m == "2" else "1")
    moved.get_by_label("月", exact=True).fill(m if m == "2" else "5")
    page.locator("#save-state").click()
    expect(moved.locator(".error")).to_have_text("")
    wait_saved(page)
    with live_server.session() as s:
        assert s.get(Case, case_id).answers["move"]["moved_on"] == ("2026-02-28" if m == "2" else "2019-05-01")
