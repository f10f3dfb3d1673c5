"""The resident's phone page in real headless Chromium at 360×640, against a real uvicorn: it shows the
place in the queue, updates without a reload when the ticket is called (SSE, and polling when
EventSource is unavailable), and its HTML holds no personal data of the model household."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session

from app.models import RoutingStep
from app.services import cases, queue
from app.services.clock import local_today
from app.services.definitions import DefinitionRegistry
from tests.browser.conftest import LiveServer, running_server, screenshot
from tests.conftest import PASSWORD
from tests.routers.test_resident import assert_no_personal_data

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 640}


Server = LiveServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """uvicorn (one process, the change watcher on) on its own migrated database."""
    with running_server(tmp_path_factory, "resident", live_poll_interval=0.3) as live:
        yield live


def model_visit(server: Server, model: dict[str, Any]) -> str:
    """Another resident's ticket, then the model household's (interviewed, with a routing slip); its token."""
    defs = DefinitionRegistry(server.settings.definitions_dir)
    defs.load()
    today = local_today(server.settings)
    with Session(server.engine) as s:
        other = cases.create_case(s, defs=defs.current, answers={"life_events": ["birth"]}, user=None,
                                  office=server.settings.office_code, today=today, draft=True)
        queue.issue_ticket(s, case=other)
        case = cases.create_case(s, defs=defs.current, answers=model, user=None, office=server.settings.office_code,
                                 today=today)
        queue.issue_ticket(s, case=case)
        for position, (dep, status, apps) in enumerate([("shimin", "in_progress", ["jumin_tennyu"]),
                                                        ("kodomo", "pending", ["jido_teate", "kodomo_iryo-m3"]),
                                                        ("hoiku", "pending", ["hoiku_nyusho-m4"])]):
            s.add(RoutingStep(case_id=case.id, department_id=dep, position=position, applications=apps, status=status))
        s.commit()
        return case.status_token


def call_next(server: Server, counter: str) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as api:
        token = api.post("/api/v1/auth/token", data={"username": "clerk", "password": PASSWORD}).json()["access_token"]
        res = api.post("/api/v1/queue/call-next", json={"counter": counter}, headers={"Authorization": f"Bearer {token}"})
        assert res.status_code == 200 and res.json()["ticket"] is not None, res.text


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="ja-JP")
    context.set_default_timeout(10_000)
    yield context
    context.close()


def test_phone_page_updates_live_when_the_ticket_is_called(
    server: Server, phone: Any, model_case_raw: dict[str, Any],
) -> None:
    token = model_visit(server, model_case_raw)
    hub = server.app.state.live
    page = phone.new_page()
    page.goto(f"{server.url}/q/{token}")
    assert page.locator("#position").inner_text() == "あなたの前に1人待っています"
    assert page.locator("#wait").inner_text() == "あと約10分（目安）"
    assert page.locator(".step").count() == 3 and "市民課" in page.locator(".step").first.inner_text()
    # A 360-pixel phone: nothing wider than the screen, the ticket number large.
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.evaluate("() => parseFloat(getComputedStyle(document.getElementById('ticket-number')).fontSize)") >= 48
    assert_no_personal_data(page.content(), model_case_raw)
    screenshot(page, "resident_waiting")

    page.evaluate("() => { window.__notReloaded = true; }")
    wait_for(lambda: hub.subscriber_count >= 1)  # the page's EventSource is connected
    call_next(server, "2")  # the resident ahead of us
    page.wait_for_function("() => document.getElementById('wait').textContent === 'まもなくお呼びします'",
                           timeout=5_000)
    assert page.locator("#position").inner_text() == "あなたの前に0人待っています"
    call_next(server, "4")  # us
    page.wait_for_function("() => document.getElementById('headline').textContent === '4番窓口へお越しください'",
                           timeout=5_000)
    assert page.locator("#position").is_hidden() and page.locator("#wait").is_hidden()
    assert page.evaluate("() => window.__notReloaded") is True
    assert_no_personal_data(page.content(), model_case_raw)
    screenshot(page, "resident_called")
    page.close()
    wait_for(lambda: hub.subscriber_count == 0)  # the stream noticed the phone left


def test_phone_without_eventsource_polls(server: Server, phone: Any, model_case_raw: dict[str, Any]) -> None:
    token = model_visit(server, model_case_raw)
    phone.add_init_script("delete window.EventSource;")
    page = phone.new_page()
    page.goto(f"{server.url}/q/{token}?lang=en")
    position = page.locator("#position").inner_text()
    assert position.startswith("Waiting ahead of you:")
    ahead = int(position.rsplit(" ", 1)[1])
    page.evaluate("() => { window.__notReloaded = true; }")
    call_next(server, "5")
    # The JSON is polled every 5 seconds.
    page.wait_for_function(f"() => document.getElementById('position').textContent === 'Waiting ahead of you: {ahead - 1}'",
                           timeout=8_000)
    assert page.evaluate("() => window.__notReloaded") is True
    assert server.app.state.live.subscriber_count == 0  # no stream was opened
