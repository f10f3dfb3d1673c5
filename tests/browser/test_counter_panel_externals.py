"""The interview's side panel lists the visit's steps outside the city hall (年金事務所, 法務局, 税務署, banks) with
place and deadline, apart from the city's own applications; axe-core finds nothing critical or serious."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.browser.axe import violations as axe_violations
from tests.browser.conftest import SCREENSHOT_DIR, LiveServer
from tests.browser.test_life_event_documents import _create, _log_in
from tests.browser.test_life_event_documents import tablet as tablet


def test_the_side_panel_shows_external_steps_of_a_death(live_server: LiveServer, tablet: Any) -> None:
    case_id = _create(live_server, "model_death")
    _log_in(tablet, live_server.url)
    tablet.goto(f"{live_server.url}/counter/visits/{case_id}")
    panel = tablet.locator("#panel")
    section = panel.locator("section.externals")
    section.scroll_into_view_if_needed()
    assert section.is_visible()
    assert "市役所の外の手続き" in section.locator("h3").inner_text()
    ids = section.locator("[data-ext]").evaluate_all("els => els.map(e => e.dataset.ext)")
    assert ids == ["ext_mikyu_nenkin", "ext_sozoku_hoki", "ext_jun_kakutei", "ext_sozokuzei", "ext_sozoku_toki",
                   "ext_ginko"]
    text = section.inner_text()
    for words in ("年金事務所", "家庭裁判所", "税務署", "法務局", "銀行", "令和8年1月5日", "令和8年3月16日"):
        assert words in text, words
    # The city's applications are listed above it, without the external steps.
    city = panel.locator("ol.apps").inner_text()
    assert "葬祭費" in city and "年金事務所" not in city
    assert axe_violations(tablet) == []
    if SCREENSHOT_DIR:  # the panel scrolls inside the screen: unstick it for the picture only
        panel.evaluate("el => Object.assign(el.style, {position: 'static', maxHeight: 'none', overflow: 'visible'})")
        section.screenshot(path=str(Path(SCREENSHOT_DIR) / "interview_panel_external_steps.png"))
