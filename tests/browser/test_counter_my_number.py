"""A My Number stays readable while the clerk reads it back (grouped 4-4-4 while the field has the focus or
「表示」 is pressed), is masked otherwise, and never reaches the tablet's browser storage."""

from __future__ import annotations

from typing import Any

import pytest

from app.models import Case
from tests.browser.conftest import LiveServer, screenshot_of
from tests.browser.test_counter_flow import log_in, page, section, start, wait_saved

pytestmark = pytest.mark.browser
__all__ = ["page"]  # the tablet fixture, imported for this module
NUMBER = "123456789018"  # the fictional model household's head


def storage(page: Any) -> str:
    return page.evaluate("() => JSON.stringify({l: {...localStorage}, s: {...sessionStorage}})")


def test_my_number_is_grouped_while_read_back_masked_otherwise_and_never_stored(
        page: Any, live_server: LiveServer) -> None:
    log_in(page, live_server.url)
    case_id = start(page, "転入（引っ越してきた）")
    members = section(page, "members")
    members.get_by_role("button", name="＋ 世帯員を追加").click()
    item = members.locator(".items > .item").first
    field = item.locator(".field[data-key=my_number]")
    box = item.get_by_label("個人番号（マイナンバー）")
    box.click()
    box.press_sequentially(NUMBER)  # digit by digit, as on the keypad
    assert box.input_value() == "1234 5678 9018"  # focused: readable, grouped 4-4-4
    assert "kakanai:draft" in storage(page)  # the draft is kept ...
    assert NUMBER not in storage(page) and "5678" not in storage(page)  # ... without the number
    screenshot_of(page, field, "7_my_number_read_back")
    item.get_by_label("氏", exact=True).click()  # focus leaves the field
    assert box.input_value() == "********9018"
    item.get_by_label("氏", exact=True).fill("尼崎")
    page.locator("#save-state").click()
    wait_saved(page)
    with live_server.session() as s:
        assert s.get(Case, case_id).answers["household"]["members"][0]["my_number"] == NUMBER
    assert box.input_value() == "********9018"
    # 「表示」 shows it without the keyboard; pressed again, it is masked.
    reveal = field.get_by_role("button", name="個人番号を表示")
    reveal.click()
    assert reveal.get_attribute("aria-pressed") == "true" and box.input_value() == "1234 5678 9018"
    reveal.click()
    assert reveal.get_attribute("aria-pressed") == "false" and box.input_value() == "********9018"
    box.focus()
    assert box.input_value() == "1234 5678 9018"
    item.get_by_label("氏", exact=True).focus()
    # An edit elsewhere saves the whole screen again: the number is sent as typed, and still never stored.
    item.get_by_label("名", exact=True).fill("太郎")
    assert NUMBER not in storage(page) and "5678" not in storage(page)
    page.locator("#save-state").click()
    wait_saved(page)
    with live_server.session() as s:
        member = s.get(Case, case_id).answers["household"]["members"][0]
    assert member["my_number"] == NUMBER and member["given_name"] == "太郎"
    assert NUMBER not in storage(page)
