"""Leaving early: once the counter is done and nobody needs them, the phone says the resident may go home,
each finished department is a notice, and their visit time ends there although the departments go on."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import events, i18n
from app.forms.loader import DefinitionSet
from app.models import CaseEvent
from app.services import departments, notify
from app.services.definitions import DefinitionRegistry
from tests.routers.test_counter_pages import HTML, JSON, _png, autosave, clerk, screen_answers, start_visit

__all__ = ["clerk"]  # the counter pages' logged-in clerk fixture

# The headline in every resident language, with the open steps' titles in the middle.
MAY_LEAVE = {
    "ja": "お帰りいただけます。残りの手続きの準備ができたらお知らせします",
    "ja-x-easy": "かえっても いいです。のこりの てつづきの じゅんびが できたら おしらせします",
    "en": "You may go home. We will let you know when these are ready: the remaining procedures.",
    "vi": "Bạn có thể về nhà. Chúng tôi sẽ báo cho bạn khi đã sẵn sàng: các thủ tục còn lại.",
    "zh-Hans": "您可以先回家。以下准备好后，我们会通知您：其余手续。",
    "ko": "먼저 돌아가셔도 됩니다. 준비가 되면 알려 드리겠습니다: 남은 절차",
    "pt": "Você pode ir para casa. Avisaremos quando estiver pronto: os demais procedimentos.",
}


@pytest.fixture
def defs(registry: DefinitionRegistry) -> DefinitionSet:
    return registry.current


def _dept(db: Session, defs: DefinitionSet, department: str) -> dict[str, str]:
    issued = departments.create_token(db, defs=defs, department_id=department)
    db.commit()
    return {"Authorization": f"Bearer {issued.token}"}


@pytest.fixture
def served(client: TestClient, counter_headers: dict[str, str], model_case_raw: dict[str, Any]) -> dict[str, Any]:
    """The model household through ticket, call, interview, slip and the end of the counter's service."""
    ticket = client.post("/api/v1/queue/tickets", json={"life_events": model_case_raw["life_events"]},
                         headers=counter_headers).json()
    case_id = ticket["case_id"]
    client.post("/api/v1/queue/call-next", json={"counter": "1"}, headers=counter_headers)
    client.post(f"/api/v1/queue/tickets/{case_id}/start", json={"counter": "1"}, headers=counter_headers)
    case = client.get(f"/api/v1/cases/{case_id}", headers=counter_headers).json()
    saved = client.put(f"/api/v1/cases/{case_id}/answers", json={"version": case["version"], "answers": model_case_raw},
                       headers=counter_headers)
    assert saved.status_code == 200, saved.text
    slip = client.post(f"/api/v1/cases/{case_id}/routing-slip", headers=counter_headers).json()
    assert client.post(f"/api/v1/queue/tickets/{case_id}/finish", headers=counter_headers).status_code == 200
    return {"case_id": case_id, "token": case["status_token"], "steps": {s["department"]: s for s in slip["steps"]}}


def test_phone_says_the_resident_may_leave_in_every_language(client: TestClient, counter_headers: dict[str, str],
                                                             served: dict[str, Any]) -> None:
    assert set(MAY_LEAVE) == set(i18n.LANGUAGES)
    # Five departments are open: the headline says "the remaining procedures", the list names them.
    for lang, text in MAY_LEAVE.items():
        status = client.get(f"/api/v1/status/{served['token']}?lang={lang}").json()
        assert status["may_leave"] is True and status["headline"] == text, (lang, status["headline"])
    page = client.get(f"/q/{served['token']}?lang=ja").text
    assert "お帰りいただけます。" in page


def test_with_two_procedures_left_the_phone_names_them(client: TestClient, db: Session, defs: DefinitionSet,
                                                       served: dict[str, Any]) -> None:
    for dep in ("hoiku", "gakumu", "kenko"):
        headers = _dept(db, defs, dep)
        url = f"/api/v1/departments/{dep}/steps/{served['steps'][dep]['id']}"
        assert client.post(f"{url}/claim", headers=headers).status_code == 200
        assert client.post(f"{url}/done", headers=headers).status_code == 200
    shimin = _dept(db, defs, "shimin")
    url = f"/api/v1/departments/shimin/steps/{served['steps']['shimin']['id']}"
    client.post(f"{url}/claim", headers=shimin)
    client.post(f"{url}/done", headers=shimin)
    ja = client.get(f"/api/v1/status/{served['token']}?lang=ja").json()
    assert ja["headline"] == "お帰りいただけます。児童手当、子ども医療費助成の準備ができたらお知らせします"
    en = client.get(f"/api/v1/status/{served['token']}?lang=en").json()
    assert en["headline"].startswith("You may go home. We will let you know when these are ready: ")


def test_needs_resident_takes_the_headline_and_notices_follow(client: TestClient, db: Session, defs: DefinitionSet,
                                                               served: dict[str, Any]) -> None:
    steps = served["steps"]
    hoiku = _dept(db, defs, "hoiku")
    url = f"/api/v1/departments/hoiku/steps/{steps['hoiku']['id']}"
    assert client.post(f"{url}/claim", headers=hoiku).status_code == 200
    assert client.post(f"{url}/done", headers=hoiku).status_code == 200
    status = client.get(f"/api/v1/status/{served['token']}?lang=en").json()
    assert status["may_leave"] is True
    notices = {n.key: n.body for n in notify.due(status, url="https://example.invalid/q", gettext=i18n.gettext_for("en"))}
    assert "ready:hoiku" in notices and notices["ready:hoiku"].endswith(": this procedure is finished.")
    assert "done" not in notices
    # A department that needs the resident: the phone sends them there instead (and so does a notice).
    gakumu = _dept(db, defs, "gakumu")
    url = f"/api/v1/departments/gakumu/steps/{steps['gakumu']['id']}"
    client.post(f"{url}/claim", headers=gakumu)
    asked = client.post(f"{url}/needs-resident", json={"reason": "内容を確認させてください"}, headers=gakumu)
    assert asked.status_code == 200, asked.text
    status = client.get(f"/api/v1/status/{served['token']}?lang=ja").json()
    assert status["may_leave"] is False and "窓口へお越しください" in status["headline"]
    keys = [n.key for n in notify.due(status, url="u", gettext=i18n.gettext_for("ja"))]
    assert "needs:gakumu" in keys and "ready:hoiku" in keys


def test_release_ends_the_residents_time_while_the_visit_stays_open(
        client: TestClient, db: Session, defs: DefinitionSet, counter_headers: dict[str, str],
        served: dict[str, Any]) -> None:
    case_id = served["case_id"]
    released = client.post(f"/api/v1/cases/{case_id}/release", headers=counter_headers)
    assert released.status_code == 200 and released.json()["released"] is True
    before = client.get(f"/api/v1/cases/{case_id}/metrics", headers=counter_headers).json()
    assert before["open"] is True
    # The departments finish later; the resident's total does not grow with them.
    for dep in ("shimin", "hoiku", "gakumu", "kenko", "kodomo"):
        step = served["steps"].get(dep)
        if step is None:
            continue
        headers = _dept(db, defs, dep)
        url = f"/api/v1/departments/{dep}/steps/{step['id']}"
        assert client.post(f"{url}/claim", headers=headers).status_code == 200, dep
        assert client.post(f"{url}/done", headers=headers).status_code == 200, dep
    after = client.get(f"/api/v1/cases/{case_id}/metrics", headers=counter_headers).json()
    # Without the release an open visit runs up to now; with it, the resident's time ends at the release.
    assert after["end_at"] == before["end_at"] and after["total_minutes"] == before["total_minutes"]
    kinds = [e.kind for e in db.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id))]
    assert kinds.count(events.RESIDENT_RELEASED) == 1
    again = client.post(f"/api/v1/cases/{case_id}/release", headers=counter_headers)
    assert again.status_code == 409 and "すべて終わっています" in again.json()["message"]


def test_release_is_refused_without_a_slip(client: TestClient, counter_headers: dict[str, str],
                                           model_case_raw: dict[str, Any]) -> None:
    res = client.post("/api/v1/cases", json=model_case_raw, headers=counter_headers)
    refused = client.post(f"/api/v1/cases/{res.json()['id']}/release", headers=counter_headers)
    assert refused.status_code == 409 and "回付票" in refused.json()["message"]


def test_finishing_at_the_counter_page_releases_the_resident(client: TestClient, clerk: str, db: Session,
                                                              model_case_raw: dict[str, Any]) -> None:
    case_id = start_visit(client, clerk, ["move_in", "childcare"])
    autosave(client, clerk, case_id, screen_answers(model_case_raw), 1)
    client.post(f"/counter/visits/{case_id}/signature", content=_png(),
                headers={**JSON, "Content-Type": "image/png", "X-CSRF-Token": clerk})
    client.get(f"/counter/visits/{case_id}/documents", headers=HTML)  # builds the routing slip
    client.post(f"/counter/visits/{case_id}/queue/finish", data={"csrf_token": clerk}, headers=HTML)
    kinds = [e.kind for e in db.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id))]
    assert events.SERVICE_ENDED in kinds and events.RESIDENT_RELEASED in kinds


def test_a_ticket_for_an_existing_visit_and_a_card_pairing_over_the_api(
        client: TestClient, counter_headers: dict[str, str], model_case_raw: dict[str, Any]) -> None:
    # What reception does after a pre-entry hand-off, and what a counter system does for the card bridge.
    case = client.post("/api/v1/cases?draft=true", json={"life_events": ["move_in"]}, headers=counter_headers).json()
    issued = client.post(f"/api/v1/queue/tickets/{case['id']}/issue", headers=counter_headers)
    assert issued.status_code == 201, issued.text
    assert issued.json()["case_id"] == case["id"] and issued.json()["status"] == "waiting"
    again = client.post(f"/api/v1/queue/tickets/{case['id']}/issue", headers=counter_headers)
    assert again.status_code == 409 and "すでに整理券" in again.json()["message"]
    assert client.post("/api/v1/queue/tickets/nope/issue", headers=counter_headers).status_code == 404
    pairing = client.post(f"/api/v1/cases/{case['id']}/card-pairings", json={"member_id": None}, headers=counter_headers)
    assert pairing.status_code == 201, pairing.text
    reading = {"name": "尼崎　花子", "address": "大阪府大阪市北区梅田一丁目2番3号", "birth_date": "19921103", "sex": "2",
               "my_number": "234567890121"}
    stored = client.post("/api/v1/card-readings", json={"pairing_code": pairing.json()["code"], **reading})
    assert stored.status_code == 201 and "my_number" in stored.json()["fields"]
    assert client.post(f"/api/v1/cases/{case['id']}/card-pairings", json={"member_id": "m9"},
                       headers=counter_headers).status_code == 422
    assert client.post(f"/api/v1/cases/{case['id']}/card-pairings", json={}).status_code == 401
