"""/docs and /redoc in real headless Chromium with every request outside the server blocked (a city
network has no internet): both pages render the API's operations from the packaged assets alone."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import SCREENSHOT_DIR, LiveServer

pytestmark = pytest.mark.browser


def _viewport_shot(page: Any, name: str) -> None:
    # The documentation pages are very long: keep what the browser window shows.
    if SCREENSHOT_DIR:
        Path(SCREENSHOT_DIR).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOT_DIR) / f"{name}.png"))


@pytest.fixture
def offline_page(browser: Any, live_server: LiveServer) -> Iterator[tuple[Any, list[str]]]:
    """A page whose requests to anything but the live server are aborted and listed."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    outside: list[str] = []

    def only_local(route: Any) -> None:
        url = route.request.url
        if url.startswith(live_server.url + "/") or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page, outside
    finally:
        context.close()
    assert not errors, errors


def test_swagger_ui_renders_operations_offline(offline_page: tuple[Any, list[str]], live_server: LiveServer) -> None:
    page, outside = offline_page
    page.goto(f"{live_server.url}/docs")
    page.wait_for_selector(".opblock-summary", timeout=20_000)
    summaries = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/v1/cases" in summaries
    assert "/api/v1/cases/{case_id}/answers" in summaries
    assert page.locator(".opblock").count() > 20
    # The answers document's schema is there for an integrator to read.
    page.locator(".opblock-post .opblock-summary-path", has_text=re.compile(r"^/api/v1/cases$")).first.click()
    page.wait_for_selector(".opblock-body .body-param__example, .opblock-body .microlight", timeout=10_000)
    body = page.locator(".opblock.is-open").first.inner_text()
    assert "household" in body and "life_events" in body
    page.locator(".opblock.is-open").first.scroll_into_view_if_needed()
    _viewport_shot(page, "api_docs_swagger")
    assert outside == []


def test_redoc_renders_operations_offline(offline_page: tuple[Any, list[str]], live_server: LiveServer) -> None:
    page, outside = offline_page
    page.goto(f"{live_server.url}/redoc")
    page.wait_for_selector("[data-section-id^='tag/cases']", timeout=30_000)
    text = page.locator("#redoc").inner_text()
    assert "来庁（案件）を登録し、整理券を発行する" in text
    assert "/api/v1/cases/{case_id}/answers" in text
    page.locator("[data-section-id^='tag/cases']").first.scroll_into_view_if_needed()
    _viewport_shot(page, "api_docs_redoc")
    assert outside == []
