"""Real Chromium against a production-mode server on plain http (a host name, not loopback, so the
browser treats it as insecure): the Secure login cookie is refused, and the clerk sees the Japanese
「https で開いてください」 page instead of 「画面の有効期限が切れています」."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, running_server, screenshot
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

HOST = "madoguchi.kakanai.test"


def test_login_over_plain_http_in_production_says_open_https(tmp_path_factory: pytest.TempPathFactory) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install the Debian packages chromium and chromium-driver")
    from playwright.sync_api import sync_playwright

    with running_server(tmp_path_factory, "https-required", env="production", secret_key=SecretStr("p" * 40),
                        encryption_keys=SecretStr("k1:" + "B" * 43 + "=")) as live, sync_playwright() as p:
        port = live.url.rsplit(":", 1)[1]
        # The name resolves to the loopback server inside this browser only (no DNS, no outside traffic).
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {HOST} 127.0.0.1"])
        try:
            page = browser.new_context(viewport={"width": 1180, "height": 820}).new_page()
            page.goto(f"http://{HOST}:{port}/login")
            page.fill("#username", "clerk")
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_selector("#https-title")
            text = page.inner_text("main")
            assert "https で開いてください" in text
            assert "有効期限" not in text
            assert page.get_attribute("a.button.primary", "href") == f"https://{HOST}/login"
            screenshot(page, "https_required")
        finally:
            browser.close()
