"""The counter's documents page for the new life events: external steps, the handbook, the fee total."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.settings import PROJECT_ROOT
from tests.browser.conftest import TABLET, LiveServer, screenshot
from tests.conftest import PASSWORD


@pytest.fixture
def tablet(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=TABLET, locale="ja-JP")
    context.set_default_timeout(30_000)
    page = context.new_page()
    yield page
    context.close()


def _create(live: LiveServer, name: str) -> str:
    raw = json.loads((PROJECT_ROOT / "bench" / "households" / f"{name}.json").read_text(encoding="utf-8"))
    with httpx.Client(base_url=live.url) as http:
        token = http.post("/api/v1/auth/token", data={"username": "clerk", "password": PASSWORD}).json()["access_token"]
        res = http.post("/api/v1/cases", json=raw, headers={"Authorization": f"Bearer {token}"})
        assert res.status_code == 201, res.text
        return res.json()["id"]


def _log_in(page: Any, base: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("ユーザー名").fill("clerk")
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    page.wait_for_url(f"{base}/counter")


def test_death_documents_page_lists_external_steps_and_opens_the_handbook(live_server: LiveServer, tablet: Any) -> None:
    case_id = _create(live_server, "model_death")
    _log_in(tablet, live_server.url)
    tablet.goto(f"{live_server.url}/counter/visits/{case_id}/documents")
    external = tablet.locator("#external-steps")
    assert external.is_visible()
    text = external.inner_text()
    for words in ("家庭裁判所", "税務署", "法務局", "年金事務所", "令和8年3月16日まで"):
        assert words in text
    link = tablet.locator("#print-handbook")
    assert "おくやみハンドブック" in link.inner_text()
    with httpx.Client(base_url=live_server.url, cookies={c["name"]: c["value"] for c in tablet.context.cookies()}) as http:
        pdf = http.get(link.get_attribute("href"))
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    screenshot(tablet, "documents_death")


def test_certificates_documents_page_shows_copies_and_the_fee_total(live_server: LiveServer, tablet: Any) -> None:
    case_id = _create(live_server, "model_certificates")
    _log_in(tablet, live_server.url)
    tablet.goto(f"{live_server.url}/counter/visits/{case_id}/documents")
    assert tablet.locator("#fee-total").inner_text() == "手数料の合計　1,650円"
    assert "2通 × 300円 = 600円" in tablet.locator("table.list").first.inner_text()
    screenshot(tablet, "documents_certificates")
