"""The counter's side panel: the city's applications, and apart from them the visit's steps outside the city hall
(年金事務所, 家庭裁判所, 税務署, 法務局, banks) with place and deadline."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest

from app.forms.loader import DefinitionSet, load_definitions
from app.services import counter
from app.settings import PROJECT_ROOT
from app.templating import get_templates


@pytest.fixture(scope="module")
def shipped() -> DefinitionSet:
    return load_definitions(PROJECT_ROOT / "form_definitions")


def household(name: str) -> dict[str, Any]:
    return json.loads((PROJECT_ROOT / "bench" / "households" / f"{name}.json").read_text(encoding="utf-8"))


def test_a_death_lists_the_external_steps_apart_with_place_and_deadline(shipped: DefinitionSet) -> None:
    panel = counter.panel(shipped, household("model_death"), missing_paths=[])
    assert not any(a["id"].startswith("ext_") for a in panel.applications)
    assert "sosaihi" in {a["id"] for a in panel.applications}
    steps = {e["id"]: e for e in panel.externals}
    assert set(steps) == {"ext_mikyu_nenkin", "ext_sozoku_hoki", "ext_jun_kakutei", "ext_sozokuzei",
                          "ext_sozoku_toki", "ext_ginko"}
    # Sorted by deadline, the one without a deadline (banks) last.
    assert panel.externals[0]["id"] == "ext_mikyu_nenkin" and panel.externals[-1]["id"] == "ext_ginko"
    assert steps["ext_sozoku_hoki"]["place"] == "亡くなった方の最後の住所地の家庭裁判所"
    # Died 2025-12-15: 14 days end on 12/29, in the city's closing days → the next open day, Mon 2026-01-05.
    assert steps["ext_mikyu_nenkin"]["deadline"] == dt.date(2026, 1, 5)
    assert steps["ext_jun_kakutei"]["deadline"] == dt.date(2026, 4, 15)  # 4 months (準確定申告)
    assert steps["ext_sozokuzei"]["deadline"] == dt.date(2026, 10, 15)  # 10 months (相続税)
    assert steps["ext_ginko"]["deadline"] is None


def test_the_panel_shows_the_external_steps_in_their_own_section(shipped: DefinitionSet) -> None:
    panel = counter.panel(shipped, household("model_death"), missing_paths=[])
    html = get_templates().env.get_template("counter/_panel.html").render(panel=panel, case=None)
    city, _, outside = html.partition('<section class="externals"')
    assert outside, "no section for the steps outside the city hall"
    assert "市役所の外の手続き" in outside and '<span class="count">6件</span>' in outside
    assert re.findall(r'data-ext="([a-z_]+)"', outside)[:2] == ["ext_mikyu_nenkin", "ext_sozoku_hoki"]
    for words in ("年金事務所（街角の年金相談センターでも可）", "不動産の所在地を管轄する法務局（登記所）",
                  "亡くなった方の住所地を所轄する税務署", "口座のある銀行・信用金庫・ゆうちょ銀行などの窓口",
                  "令和8年1月5日", "令和8年10月15日", "相続の開始を知った日の翌日から10か月以内"):
        assert words in outside, words
    # The city's own applications stay in the list above, without the external ones.
    assert "葬祭費" in city and "年金事務所" not in city and 'data-app="ext_' not in city


def test_a_move_in_has_no_external_section(shipped: DefinitionSet) -> None:
    panel = counter.panel(shipped, household("model_move_in_family"), missing_paths=[])
    assert panel.applications and panel.externals == []
    html = get_templates().env.get_template("counter/_panel.html").render(panel=panel, case=None)
    assert "市役所の外の手続き" not in html
