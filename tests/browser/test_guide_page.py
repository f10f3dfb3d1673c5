"""The public 手続きガイド on a phone (390×844) in ja and en: answers → procedures, axe-core, and the QR to the counter."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest

from app.routers.guide import qr_code_svg
from tests.browser.axe import violations as axe_violations
from tests.browser.conftest import LiveServer, screenshot
from tests.conftest import PASSWORD

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=PHONE, device_scale_factor=1, locale="ja-JP")
    context.set_default_timeout(30_000)
    yield context.new_page()
    context.close()




@pytest.mark.parametrize(("lang", "event_label", "button", "heading"), [
    ("ja", "市外へ引っ越す（転出）", "必要な手続きを見る", "必要な手続き"),
    ("en", "I am moving to another city", "Show the procedures", "Procedures you need"),
])
def test_guide_answers_to_procedures_on_a_phone(live_server: LiveServer, phone: Any, lang: str, event_label: str,
                                                button: str, heading: str) -> None:
    page = phone
    page.goto(f"{live_server.url}/guide?lang={lang}")
    assert page.evaluate("document.documentElement.lang") == lang
    assert axe_violations(page) == []
    page.get_by_label(event_label).check()
    page.get_by_label({"ja": "小学生・中学生", "en": "Elementary or junior high school"}[lang]).select_option("1")
    page.get_by_label({"ja": "国民健康保険に入っている", "en": "I have National Health Insurance"}[lang]).check()
    page.get_by_role("button", name=button).click()
    page.wait_for_selector("#result")
    assert heading in page.locator("#result-title").inner_text()
    apps = page.eval_on_selector_all("[data-app]", "els => els.map(e => e.dataset.app)")
    assert sorted(apps) == sorted(["jumin_tenshutsu", "kokuho_soshitsu", "jido_teate_shometsu",
                                   "kodomo_iryo_soshitsu", "tenshutsu_gaku"])
    # No horizontal scrolling on the phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert axe_violations(page) == []
    screenshot(page, f"guide_{lang}")


def test_the_guide_qr_starts_the_counter_interview_with_the_events(live_server: LiveServer, phone: Any) -> None:
    page = phone
    page.goto(f"{live_server.url}/guide?lang=ja&events=move_within&events=divorce&lone_parent=1")
    url = page.locator(".qr-url").inner_text().strip()
    assert urlparse(url).query == "events=move_within&events=divorce"
    drawn = page.locator(".qr-code svg path").get_attribute("d")
    assert drawn == re.search(r' d="([^"]+)"', qr_code_svg(url)).group(1)  # the QR carries exactly this URL
    # Staff scan it on the counter tablet (already logged in): the start form has the events ticked.
    page.goto(f"{live_server.url}/login")
    page.get_by_label("ユーザー名").fill("clerk")
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    page.wait_for_url(f"{live_server.url}/counter")
    page.goto(f"{live_server.url}/counter?{urlparse(url).query}")
    checked = page.eval_on_selector_all("input[name=life_events]:checked", "els => els.map(e => e.value)")
    assert sorted(checked) == ["divorce", "move_within"]
    page.get_by_role("button", name="整理券を発行して聞き取りを始める").click()
    page.wait_for_url("**/counter/visits/*")
    events = page.eval_on_selector_all('[data-path="life_events"] input:checked', "els => els.map(e => e.value)")
    assert sorted(events) == ["divorce", "move_within"]
    assert page.locator("#section-marriage_divorce").is_visible()
    assert not page.locator("#section-death").is_visible()


@pytest.mark.parametrize(("lang", "expected"), [
    ("ko", ("전입 신고", "전출 증명서", "시민과", "이사한 날부터 14일 이내", "상속세 신고 (세무서)")),
    ("pt", ("Notificação de mudança para a cidade", "Certificado de mudança (saída)", "Divisão de Registro de Moradores",
            "Até 14 dias após a mudança", "Declaração do imposto sobre herança")),
])
def test_the_guide_in_korean_and_portuguese_on_a_phone(live_server: LiveServer, phone: Any, lang: str,
                                                       expected: tuple[str, ...]) -> None:
    page = phone
    page.goto(f"{live_server.url}/guide?lang={lang}&events=move_in&events=death&school=1&elderly=75")
    page.wait_for_selector("#result")
    # Open what to bring and the notes of the move-in notification (as a resident would tap them).
    for summary in page.locator('[data-app="jumin_tennyu"] summary').all():
        summary.click()
    text = page.locator("#result").inner_text()
    for words in expected:
        assert words in text, words
    assert "[日本語]" not in text  # every text has its translation
    # The name to show at the counter; the city's steps first, those outside the city hall after them.
    assert page.locator('.title-ja[lang="ja"]').first.inner_text() == "転入届"
    assert page.locator(".guide-step").last.get_attribute("class") == "guide-step external"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert axe_violations(page) == []
    screenshot(page, f"guide_{lang}")
