"""The dashboard in real headless Chromium against a real uvicorn: after a few visits, every SVG chart
is drawn with a non-zero size and has bars; the page fits a tablet without horizontal scrolling."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import select

from app import events as ev
from app.models import SatisfactionResponse, User
from app.services import cases, clock
from app.services.definitions import DefinitionRegistry
from tests.browser.conftest import TABLET, LiveServer, screenshot
from tests.conftest import MODEL_CASE, PASSWORD

pytestmark = pytest.mark.browser

CHARTS = ("chart-stages", "chart-visit-times", "chart-wait-by-hour", "chart-wait-estimate", "chart-satisfaction")


@pytest.fixture(scope="module")
def seeded(live_server: LiveServer) -> list[str]:
    """Three closed visits of yesterday morning (inside office hours, whatever the machine's clock says)
    with calls, service, two departments and satisfaction answers."""
    registry = DefinitionRegistry(live_server.settings.definitions_dir)
    registry.load()
    answers = json.loads(MODEL_CASE.read_text(encoding="utf-8"))
    tz = live_server.settings.tz
    day = clock.local_today(live_server.settings) - dt.timedelta(days=1)
    ids = []
    with live_server.session() as s:
        clerk = s.scalar(select(User).where(User.username == "clerk"))
        for i, (wait, served, back) in enumerate(((5, 20, 15), (25, 30, 10), (40, 15, 25))):
            arrival = dt.datetime.combine(day, dt.time(9 + i, 10), tz)
            case = cases.create_case(s, defs=registry.current, answers=answers, user=clerk, office="honcho",
                                     today=day, now=arrival)
            t = arrival + dt.timedelta(minutes=wait)
            cases.record_event(s, case, ev.TICKET_CALLED, actor=clerk, at=t, data={"counter": "1"})
            cases.record_event(s, case, ev.SERVICE_STARTED, actor=clerk, at=t, data={"counter": "1"})
            end = t + dt.timedelta(minutes=served)
            cases.record_event(s, case, ev.SIGNED, actor=clerk, at=end - dt.timedelta(minutes=3))
            cases.record_event(s, case, ev.SLIP_CREATED, actor=clerk, at=end)
            cases.record_event(s, case, ev.SERVICE_ENDED, actor=clerk, at=end, data={"counter": "1"})
            for j, dept in enumerate(("shimin", "kodomo")):
                step = f"{case.id}-{dept}"
                cases.record_event(s, case, ev.STEP_CLAIMED, at=end + dt.timedelta(minutes=j * back),
                                   data={"department": dept, "step_id": step})
                cases.record_event(s, case, ev.STEP_DONE, at=end + dt.timedelta(minutes=(j + 1) * back),
                                   data={"department": dept, "step_id": step})
            cases.record_event(s, case, ev.DEPARTURE, actor=clerk, at=end + dt.timedelta(minutes=2 * back + 3))
            case.status = "closed"
            s.add(SatisfactionResponse(case_id=case.id, score=5 - i))
            ids.append(case.id)
        s.commit()
    return ids


@pytest.fixture
def page(browser: Any, live_server: LiveServer) -> Any:
    context = browser.new_context(viewport=TABLET, device_scale_factor=1, has_touch=True, locale="ja-JP")
    context.set_default_timeout(15_000)
    pg = context.new_page()
    yield pg
    context.close()


def test_the_dashboard_draws_its_charts(page: Any, live_server: LiveServer, seeded: list[str]) -> None:
    base = live_server.url
    page.goto(f"{base}/dashboard")
    page.wait_for_url("**/login**")  # the dashboard needs an administrator's session
    page.get_by_label("ユーザー名").fill("admin")
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    page.wait_for_url(f"{base}/dashboard")
    assert page.get_by_role("heading", name="来庁時間ダッシュボード").is_visible()
    for chart in CHARTS:
        svg = page.locator(f"svg#{chart}")
        box = svg.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 80, chart
        assert svg.is_visible()
    # Drawn bars, not empty frames: the seeded visits show up in every chart.
    assert "データがありません" in page.locator("svg#chart-wait-estimate").text_content()  # no tickets
    for chart in ("chart-stages", "chart-visit-times", "chart-wait-by-hour", "chart-satisfaction"):
        bars = page.locator(f"svg#{chart} rect.bar")
        assert bars.count() > 0, chart
        sizes = [bars.nth(i).bounding_box() for i in range(bars.count())]
        assert any(b is not None and b["width"] > 0 and b["height"] > 0 for b in sizes), chart
    assert page.locator("svg#chart-visit-times line.marker").count() == 1  # the survey's 138 minutes
    # Comparison with the survey: the period median next to the old way.
    row = page.locator("table.compare tr", has_text="整理券")
    assert row.locator("td").all_inner_texts() == ["3", "—", "1"]  # nobody came today yet
    # Light enough for the tablet: no horizontal scrolling, and no scripts needed.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    assert page.locator("script").count() == 0
    screenshot(page, "dashboard")
    # The CSV export link works from the page with the same session.
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").click()
    assert download.value.suggested_filename.startswith("metrics_")
