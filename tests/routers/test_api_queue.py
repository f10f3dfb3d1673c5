"""Queue API v1: reception issues a ticket, counters call / recall / skip / requeue / transfer / serve."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import events
from app.models import Case, CaseEvent
from tests.conftest import login, make_user


def issue(client: TestClient, headers: dict[str, str], **body: object) -> dict[str, object]:
    res = client.post("/api/v1/queue/tickets", json={"life_events": ["move_in"], **body}, headers=headers)
    assert res.status_code == 201, res.text
    return res.json()


def test_reception_issues_a_draft_visit_and_its_ticket(client: TestClient, counter_headers: dict[str, str], db: Session) -> None:
    first = issue(client, counter_headers)
    second = issue(client, counter_headers, life_events=["birth"], priority_reason="accessibility")
    assert first["status"] == "waiting" and first["position"] == 1
    assert first["resident_url"] == f"http://127.0.0.1:8000/q/{first['status_token']}"
    assert second["priority"] == 1 and second["position"] == 1  # accessibility goes first
    assert second["ticket_number"] == first["ticket_number"] + 1  # type: ignore[operator]
    case = db.get(Case, first["case_id"])
    assert case is not None and case.answers["life_events"] == ["move_in"] and not case.complete
    listed = client.get("/api/v1/queue/tickets", headers=counter_headers).json()["tickets"]
    assert [t["case_id"] for t in listed] == [second["case_id"], first["case_id"]]


def test_issue_validation_is_japanese_and_per_field(client: TestClient, counter_headers: dict[str, str]) -> None:
    res = client.post("/api/v1/queue/tickets", json={"life_events": ["move_in"], "queue": "nosuch"}, headers=counter_headers)
    assert res.status_code == 422
    assert res.json()["errors"] == [{"field": "queue", "message": "この課の待ち列はありません"}]
    res = client.post("/api/v1/queue/tickets", json={"life_events": ["move_in"], "priority_reason": "vip"},
                      headers=counter_headers)
    assert res.status_code == 422 and res.json()["errors"][0]["field"] == "priority_reason"
    res = client.post("/api/v1/queue/tickets", json={"life_events": []}, headers=counter_headers)
    assert res.status_code == 422 and res.json()["errors"][0]["field"] == "life_events"
    res = client.post("/api/v1/queue/tickets", json={"life_events": ["wedding"]}, headers=counter_headers)
    assert res.status_code == 422 and "life_events" in res.json()["errors"][0]["field"]


def test_counter_flow(client: TestClient, counter_headers: dict[str, str], db: Session) -> None:
    a = issue(client, counter_headers)
    b = issue(client, counter_headers)
    res = client.post("/api/v1/queue/call-next", json={"counter": "3"}, headers=counter_headers).json()
    assert res["ticket"]["case_id"] == a["case_id"] and res["ticket"]["counter"] == "3"
    assert res["message"].endswith("番の方を3番窓口に呼びました")
    again = client.post(f"/api/v1/queue/tickets/{a['case_id']}/recall", headers=counter_headers).json()
    assert again["call_count"] == 2
    skipped = client.post(f"/api/v1/queue/tickets/{a['case_id']}/skip", json={"version": again["version"]},
                          headers=counter_headers).json()
    assert skipped["status"] == "skipped"
    stale = client.post(f"/api/v1/queue/tickets/{a['case_id']}/requeue", json={"version": again["version"]},
                        headers=counter_headers)
    assert stale.status_code == 409 and stale.json()["current_version"] == skipped["version"]
    nxt = client.post("/api/v1/queue/call-next", json={"counter": "4"}, headers=counter_headers).json()
    assert nxt["ticket"]["case_id"] == b["case_id"]
    started = client.post(f"/api/v1/queue/tickets/{b['case_id']}/start", headers=counter_headers).json()
    assert started["status"] == "serving"
    moved = client.post(f"/api/v1/queue/tickets/{b['case_id']}/transfer", json={"to_queue": "kodomo"},
                        headers=counter_headers).json()
    assert (moved["status"], moved["queue"]) == ("waiting", "kodomo")
    kodomo = client.post("/api/v1/queue/call-next", json={"counter": "8", "queue": "kodomo"}, headers=counter_headers).json()
    assert kodomo["ticket"]["case_id"] == b["case_id"]
    client.post(f"/api/v1/queue/tickets/{b['case_id']}/start", headers=counter_headers)
    done = client.post(f"/api/v1/queue/tickets/{b['case_id']}/finish", headers=counter_headers).json()
    assert done["status"] == "done"
    empty = client.post("/api/v1/queue/call-next", json={"counter": "3"}, headers=counter_headers).json()
    assert empty == {"ticket": None, "message": "お待ちの方はいません"}
    back = client.post(f"/api/v1/queue/tickets/{a['case_id']}/requeue", headers=counter_headers).json()
    assert back["status"] == "waiting"
    kinds = list(db.scalars(select(CaseEvent.kind).where(CaseEvent.case_id == b["case_id"]).order_by(CaseEvent.id)))
    assert kinds[-7:] == [events.TICKET_CALLED, events.SERVICE_STARTED, events.SERVICE_ENDED, events.TICKET_TRANSFERRED,
                          events.TICKET_CALLED, events.SERVICE_STARTED, events.SERVICE_ENDED]
    report = client.get("/api/v1/queue/estimate-error", headers=counter_headers).json()
    assert report["count"] == 2 and report["mean_absolute_error_minutes"] is not None


def test_wrong_transitions_and_unknown_tickets(client: TestClient, counter_headers: dict[str, str]) -> None:
    a = issue(client, counter_headers)
    res = client.post(f"/api/v1/queue/tickets/{a['case_id']}/finish", headers=counter_headers)
    assert res.status_code == 409 and res.json()["message"] == "対応中の整理券だけを終了できます"
    res = client.post("/api/v1/queue/tickets/nosuch/skip", headers=counter_headers)
    assert res.status_code == 404 and res.json()["message"] == "この整理券は見つかりません"
    res = client.post("/api/v1/queue/call-next", json={"counter": ""}, headers=counter_headers)
    assert res.status_code == 422 and res.json()["errors"] == [{"field": "counter", "message": "窓口番号を入力してください"}]


def test_queue_api_needs_counter_staff(client: TestClient, db: Session) -> None:
    assert client.post("/api/v1/queue/call-next", json={"counter": "1"}).status_code == 401
    make_user(db, "kodomo1", "department", "kodomo")
    headers = login(client, "kodomo1")
    assert client.post("/api/v1/queue/call-next", json={"counter": "1"}, headers=headers).status_code == 403
    assert client.post("/api/v1/queue/tickets", json={"life_events": ["move_in"]}, headers=headers).status_code == 403
