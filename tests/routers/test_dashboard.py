"""The metrics API, the dashboard page and its exports, and the operators' /metrics, over HTTP on
visits seeded with hand-made event times (the service's clock is pinned with clock.simulated)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import events as ev
from app.models import AuditEntry, Case, QueueTicket, RoutingStep, SatisfactionResponse, User
from app.services import cases, clock, wait_estimate
from app.services.definitions import DefinitionRegistry
from tests.conftest import PASSWORD, login, make_user

JST = ZoneInfo("Asia/Tokyo")
DAY = dt.date(2026, 4, 6)
HTML = {"Accept": "text/html"}
NOW = dt.datetime(2026, 4, 6, 16, 0, tzinfo=JST)


def at(hh: int, mm: int = 0) -> dt.datetime:
    return dt.datetime(2026, 4, 6, hh, mm, tzinfo=JST)


@pytest.fixture(autouse=True)
def pinned_clock() -> Iterator[None]:
    """'Now' is 2026-04-06 16:00 in Japan for the service and for the figures of open visits."""
    with clock.simulated(lambda: NOW):
        yield


@pytest.fixture
def admin_headers(client: TestClient, db: Session) -> dict[str, str]:
    make_user(db, "boss", "admin")
    return login(client, "boss")


def seed_visit(db: Session, registry: DefinitionRegistry, answers: dict[str, Any], arrival: dt.datetime,
               steps: list[tuple[str, dt.datetime, dt.datetime]], *, called: dt.datetime, served: tuple[dt.datetime, dt.datetime],
               departure: dt.datetime | None, actor: str = "clerk", signed: bool = True) -> Case:
    """A visit with the given times: called to counter 1, served, departments' steps, departure."""
    user = db.scalar(select(User).where(User.username == actor))
    if user is None:
        make_user(db, actor, "counter")
        user = db.scalar(select(User).where(User.username == actor))
    case = cases.create_case(db, defs=registry.current, answers=answers, user=user, office="honcho", today=DAY,
                             now=arrival)
    cases.record_event(db, case, ev.TICKET_CALLED, actor=user, at=called, data={"counter": "1", "queue": ""})
    cases.record_event(db, case, ev.SERVICE_STARTED, actor=user, at=served[0], data={"counter": "1", "queue": ""})
    if signed:
        case.signed_at = served[0]
        cases.record_event(db, case, ev.SIGNED, actor=user, at=served[0] + dt.timedelta(minutes=5))
    cases.record_event(db, case, ev.SLIP_CREATED, actor=user, at=served[1], data={"steps": len(steps)})
    cases.record_event(db, case, ev.SERVICE_ENDED, actor=user, at=served[1], data={"counter": "1", "queue": ""})
    for i, (dept, claimed, done) in enumerate(steps):
        cases.record_event(db, case, ev.STEP_CLAIMED, at=claimed, data={"department": dept, "step_id": f"{case.id}-{i}"})
        cases.record_event(db, case, ev.STEP_DONE, at=done, data={"department": dept, "step_id": f"{case.id}-{i}"})
    if departure is not None:
        case.status = "closed"
        cases.record_event(db, case, ev.DEPARTURE, actor=user, at=departure, data={"missed": []})
    db.commit()
    return case


@pytest.fixture
def visits(db: Session, registry: DefinitionRegistry, model_case: dict[str, Any]) -> list[Case]:
    """Three visits of 2026-04-06: 60 and 90 minutes (closed) and one still open."""
    one = seed_visit(db, registry, model_case, at(9, 0), [("shimin", at(9, 31), at(9, 46)), ("kodomo", at(9, 47), at(9, 57))],
                     called=at(9, 10), served=(at(9, 10), at(9, 30)), departure=at(10, 0))
    two = seed_visit(db, registry, model_case, at(11, 30), [("shimin", at(11, 55), at(13, 15))],
                     called=at(11, 40), served=(at(11, 40), at(11, 55)), departure=at(13, 0))
    three = seed_visit(db, registry, model_case, at(15, 30), [], called=at(15, 45), served=(at(15, 45), at(15, 50)),
                       departure=None, signed=False)
    return [one, two, three]


def test_case_metrics_give_the_visits_figures_and_writing(client: TestClient, counter_headers: dict[str, str],
                                                          visits: list[Case]) -> None:
    res = client.get(f"/api/v1/cases/{visits[0].id}/metrics", headers=counter_headers)
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["total_minutes"] == 60 and body["service_minutes"] == 20 and body["waiting_minutes"] == 40
    assert body["wait_first_minutes"] == 10 and body["open"] is False
    assert body["back_office_minutes"] == {"kodomo": 10, "shimin": 15}
    assert body["counters_visited"] == 1 and body["tickets"] == 1 and body["staff"] == 1 and body["pamphlets"] == 1
    # Every name, address, birth date and phone is printed except the 本籍・筆頭者 the household file lacks
    # (the 転入届 asks for them); the signature is the other name written.
    assert body["writing"]["name"] == {"prefilled": 36, "by_hand": 2}
    assert body["writing"]["phone"]["by_hand"] == 0
    rows = {r["key"]: r for r in body["comparison"]}
    assert rows["total_minutes"] == {"key": "total_minutes", "label": "滞在時間（分）", "before": 138, "after": 60}
    assert rows["name_written"]["after"] == 2 and rows["departments_visited"]["after"] == 1

    open_visit = client.get(f"/api/v1/cases/{visits[2].id}/metrics", headers=counter_headers).json()
    assert open_visit["open"] is True and open_visit["total_minutes"] == 30  # 15:30 -> now (16:00)
    assert open_visit["writing"]["name"]["by_hand"] == 1  # not signed yet: only the 筆頭者
    assert client.get("/api/v1/cases/nope/metrics", headers=counter_headers).status_code == 404


def test_visits_json_aggregates_closed_visits_with_median_and_p90(client: TestClient, admin_headers: dict[str, str],
                                                                   visits: list[Case]) -> None:
    res = client.get("/api/v1/metrics/visits", params={"from": "2026-04-06", "to": "2026-04-06"}, headers=admin_headers)
    assert res.status_code == 200, res.text
    body = res.json()
    assert len(body["visits"]) == 3
    total = body["summary"]["total"]
    assert total["count"] == 2 and total["median"] == 75 and total["p90"] == 87  # 60 and 90, linear
    assert body["percentiles"].startswith("linear interpolation")
    second = next(v for v in body["visits"] if v["case_number"] == visits[1].case_number)
    assert second["lunch_minutes"] == 60 and second["waiting_minutes"] == 75  # lunch is waited through
    assert second["back_office_minutes"] == {"shimin": 20}  # 11:55-12:00 and 13:00-13:15


def test_visits_csv_has_one_line_per_visit_and_is_audited(client: TestClient, admin_headers: dict[str, str],
                                                          visits: list[Case], db: Session) -> None:
    res = client.get("/api/v1/metrics/visits.csv", params={"from": "2026-04-06"}, headers=admin_headers)
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("text/csv")
    text = res.content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["case_number"] for r in rows] == [v.case_number for v in visits]
    assert rows[0]["total_minutes"] == "60.0" and rows[0]["back_office_shimin_minutes"] == "15.0"
    assert rows[0]["name_by_hand"] == "2" and rows[2]["open"] == "1"
    assert "Yamada" not in text and "山田" not in text  # no names in the export
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "export"))
    assert entry is not None and "visits.csv" in entry.target


def test_period_errors_are_field_level_japanese(client: TestClient, admin_headers: dict[str, str]) -> None:
    res = client.get("/api/v1/metrics/visits", params={"from": "2026-04-07", "to": "2026-04-06"}, headers=admin_headers)
    assert res.status_code == 422
    assert res.json()["errors"] == [{"field": "from", "message": "開始日は終了日より前にしてください"}]
    res = client.get("/api/v1/metrics/visits.csv", params={"to": "4/6"}, headers=admin_headers)
    assert res.status_code == 422 and res.json()["errors"][0]["field"] == "to"
    res = client.get("/api/v1/metrics/report", params={"from": "2024-01-01", "to": "2026-04-06"}, headers=admin_headers)
    assert res.status_code == 422 and "366日以内" in res.json()["errors"][0]["message"]


def test_metrics_api_is_for_administrators(client: TestClient, counter_headers: dict[str, str]) -> None:
    assert client.get("/api/v1/metrics/visits", headers=counter_headers).status_code == 403
    assert client.get("/api/v1/metrics/report").status_code == 401


def test_report_has_every_figure_the_dashboard_shows(client: TestClient, admin_headers: dict[str, str],
                                                      visits: list[Case], db: Session) -> None:
    db.add(SatisfactionResponse(case_id=visits[0].id, score=5))
    db.add(SatisfactionResponse(case_id=visits[1].id, score=3))
    db.commit()
    body = client.get("/api/v1/metrics/report", params={"from": "2026-04-06"}, headers=admin_headers).json()
    assert body["baseline"]["total_minutes"] == 138
    assert body["today"]["day"] == "2026-04-06" and body["today"]["visits"] == 3 and body["today"]["open"] == 1
    cmp = {r["key"]: r for r in body["period"]["comparison"]}
    assert cmp["total_minutes"]["after_median"] == 75 and cmp["number_tickets"]["after_median"] == 1
    assert body["per_day"]["2026-04-06"]["visits"] == 2
    assert body["per_life_event"]["move_in"]["total"]["median"] == 75
    # Writing saved per life event: both closed visits are move-ins, so it equals the period's prefilled names.
    assert body["per_life_event"]["move_in"]["writing_saved"]["name"] == body["period"]["writing"]["name"]["prefilled_total"]
    assert body["per_life_event"]["move_in"]["writing_saved"]["total"] == sum(
        w["prefilled_total"] for w in body["period"]["writing"].values())
    assert body["per_department"]["shimin"]["steps"] == 2 and body["per_department"]["shimin"]["back_office"]["median"] == 17.5
    assert body["stages"]["wait_call"]["median"] == 10
    assert body["wait_by_hour"]["9"]["median"] == 10 and body["wait_by_hour"]["15"]["median"] == 15
    assert sum(b["count"] for b in body["visit_time_histogram"]) == 2
    assert body["satisfaction"]["distribution"] == {"1": 0, "2": 0, "3": 1, "4": 0, "5": 1}
    assert body["period"]["writing"]["name"] == {"prefilled_total": 72, "by_hand_total": 4}


def test_wait_estimate_error_agrees_with_the_queue_report(client: TestClient, admin_headers: dict[str, str],
                                                          visits: list[Case], db: Session) -> None:
    # Tickets issued at arrival with the wait we announced; the calls are in the seeded events.
    for case, estimate in zip(visits, (5.0, 30.0, 15.0), strict=True):
        db.add(QueueTicket(case_id=case.id, office="honcho", day=DAY, number=case.ticket_number, status="done",
                           issued_at=case.created_at, estimated_wait_minutes=estimate))
    db.commit()
    body = client.get("/api/v1/metrics/report", params={"from": "2026-04-06"}, headers=admin_headers).json()
    theirs = wait_estimate.estimate_error_report(db, office="honcho", day=DAY)
    ours = body["wait_estimate"]
    assert sorted(ours["errors"]) == [-20.0, 0.0, 5.0]  # 10-5, 10-30, 15-15
    assert ours["count"] == theirs["count"] == 3
    assert ours["error"]["median"] == theirs["p50_error_minutes"]
    assert ours["within_5_minutes"] == 2


def page_login(client: TestClient, name: str) -> None:
    page = client.get("/login", headers=HTML)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    res = client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": token, "next": "/dashboard"},
                      headers=HTML, follow_redirects=False)
    assert res.status_code == 303, res.text


def test_dashboard_page_shows_the_figures_and_five_charts(client: TestClient, db: Session, visits: list[Case]) -> None:
    res = client.get("/dashboard", headers=HTML, follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"].startswith("/login")
    make_user(db, "boss", "admin")
    page_login(client, "boss")
    res = client.get("/dashboard", params={"from": "2026-04-01", "to": "2026-04-06"}, headers=HTML)
    assert res.status_code == 200, res.text
    html = res.text
    for chart in ("chart-stages", "chart-visit-times", "chart-wait-by-hour", "chart-wait-estimate", "chart-satisfaction"):
        assert f'id="{chart}"' in html
    assert html.count("<svg") == 5 and html.count('class="bar"') >= 5
    assert "調査（従来）138分" in html  # the baseline line on the distribution of visit times
    assert "来庁 3 件（終了 2 件・対応中 1 件）" in html
    assert 'href="/dashboard/export.csv?from=2026-04-01&amp;to=2026-04-06"' in html
    assert "<script" not in html.split("</main>")[0].split("<main")[1]  # charts are plain SVG


def test_dashboard_is_for_administrators_only(client: TestClient, db: Session) -> None:
    make_user(db, "madoguchi", "counter")
    page_login(client, "madoguchi")
    assert client.get("/dashboard", headers=HTML).status_code == 403


def test_dashboard_exports_carry_the_same_figures(client: TestClient, db: Session, visits: list[Case],
                                                  admin_headers: dict[str, str]) -> None:
    make_user(db, "boss2", "admin")
    page_login(client, "boss2")
    exported = client.get("/dashboard/export.json", params={"from": "2026-04-06", "to": "2026-04-06"})
    assert exported.status_code == 200 and "attachment" in exported.headers["content-disposition"]
    api = client.get("/api/v1/metrics/report", params={"from": "2026-04-06"}, headers=admin_headers).json()
    mine = json.loads(exported.content)
    assert mine["period"] == api["period"] and mine["per_department"] == api["per_department"]
    res = client.get("/dashboard/export.csv", params={"from": "2026-04-06", "to": "2026-04-06"})
    rows = list(csv.DictReader(io.StringIO(res.content.decode("utf-8-sig"))))
    total = next(r for r in rows if r["section"] == "period" and r["measure"] == "total")
    assert (total["count"], total["median"], total["p90"]) == ("2", "75.0", "87.0")
    assert any(r["section"] == "period_vs_survey" and r["group"] == "total_minutes" and r["measure"] == "before"
               and r["median"] == "138" for r in rows)
    assert res.status_code == 200
    bad = client.get("/dashboard/export.csv", params={"from": "x"}, headers={"Accept": "application/json"})
    assert bad.status_code == 422


def test_prometheus_endpoint_counts_visits_steps_and_queue(client: TestClient, db: Session, visits: list[Case]) -> None:
    db.add(RoutingStep(case_id=visits[2].id, department_id="kodomo", status="pending"))
    db.add(QueueTicket(case_id=visits[2].id, office="honcho", day=DAY, number=3, status="waiting"))
    db.commit()
    res = client.get("/metrics")
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/plain")
    text = res.text
    assert 'kakanai_visits_today_total{office="honcho"} 3.0' in text
    assert 'kakanai_visits_today{office="honcho",status="closed"} 2.0' in text
    assert 'kakanai_routing_steps_open{department="kodomo",status="pending"} 1.0' in text
    assert 'kakanai_queue_waiting{office="honcho",queue="onestop"} 1.0' in text
