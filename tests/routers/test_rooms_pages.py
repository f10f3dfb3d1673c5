"""The department screen, reception and the phone page's content, through the app (no browser): who may
see what, refusals shown on the page, the phone page's one sentence in the resident's language, the
satisfaction question first once everything is done."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.forms import translations
from app.models import RoutingStep
from app.services import routing
from app.services.definitions import DefinitionRegistry
from tests.conftest import PASSWORD, make_user
from tests.routers.test_resident import assert_no_personal_data

HTML = {"Accept": "text/html"}


def browser_login(client: TestClient, name: str, landing: str) -> str:
    """Log in through the form; returns the CSRF token of the page the user lands on."""
    form = client.get("/login", headers=HTML)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    res = client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": token, "next": "/counter"},
                      headers=HTML, follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"] == landing, res.headers
    page = client.get(landing, headers=HTML, follow_redirects=True)
    assert page.status_code == 200, page.text
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]


@pytest.fixture
def visit(client: TestClient, counter_headers: dict[str, str], db: Session, registry: DefinitionRegistry,
          model_case_raw: dict[str, Any]) -> dict[str, Any]:
    body = client.post("/api/v1/cases", json=model_case_raw, headers=counter_headers).json()
    client.post("/api/v1/queue/tickets", json={"life_events": ["birth"]}, headers=counter_headers)
    steps = routing.build_slip(db, defs=registry.current, case=routing.get_case_or_raise(db, body["id"]), actor=None)
    db.commit()
    return {"token": body["status_token"], "case_id": body["id"], "steps": {s.department_id: s.id for s in steps}}


def test_department_screen_shows_the_day_and_refusals_on_the_page(client: TestClient, db: Session,
                                                                   visit: dict[str, Any]) -> None:
    make_user(db, "desk_kodomo", "department", "kodomo")
    csrf = browser_login(client, "desk_kodomo", "/department")
    page = client.get("/department/kodomo", headers=HTML)
    assert page.status_code == 200 and "こども福祉課　本日の手続き" in page.text
    kodomo = visit["steps"]["kodomo"]
    assert f'id="step-{kodomo}"' in page.text and "市民課の完了待ち" in page.text
    # Claiming before 市民課 is done: refused on the page, in Japanese, nothing changed.
    res = client.post(f"/department/kodomo/steps/{kodomo}/claim", data={"csrf_token": csrf}, headers=HTML)
    assert res.status_code == 409 and "先に 市民課（受付待ち） の手続きが完了している必要があります" in res.text
    assert db.scalar(select(RoutingStep.status).where(RoutingStep.id == kodomo)) == "pending"
    # Without the CSRF token nothing happens.
    assert client.post(f"/department/kodomo/steps/{kodomo}/claim", data={}, headers=HTML).status_code == 403
    # The screen's refresh answers only a version when nothing changed.
    first = client.get("/department/kodomo/desk.json").json()
    assert "html" in first and client.get(f"/department/kodomo/desk.json?v={first['version']}").json() == {
        "version": first["version"]}
    # Another department's screen and step, and the counter pages, are refused.
    assert client.get("/department/shimin", headers=HTML).status_code == 403
    assert client.get("/counter", headers=HTML).status_code == 403
    assert client.get("/reception", headers=HTML).status_code == 403


def test_reception_form_errors_stay_on_the_page(client: TestClient, db: Session) -> None:
    make_user(db, "reception1", "counter")
    csrf = browser_login(client, "reception1", "/counter")
    page = client.get("/reception", headers=HTML)
    assert page.status_code == 200 and "整理券を印刷する" in page.text
    res = client.post("/reception/tickets", data={"csrf_token": csrf, "life_events": ["move_in"], "priority_reason": "x"},
                      headers=HTML)
    assert res.status_code == 422 and "優先の理由は表示されている中から選んでください" in res.text
    assert 'value="move_in" checked' in res.text
    res = client.post("/reception/tickets", data={"csrf_token": csrf, "life_events": ["move_in"]}, headers=HTML,
                      follow_redirects=False)
    assert res.status_code == 303
    ticket = client.get(res.headers["location"], headers=HTML)
    assert ticket.status_code == 200 and "<svg" in ticket.text and "/q/" in ticket.text


def test_phone_page_in_vietnamese_says_what_to_do(client: TestClient, db: Session, visit: dict[str, Any],
                                                  model_case_raw: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    steps = {s.department_id: s for s in db.scalars(select(RoutingStep).where(RoutingStep.case_id == visit["case_id"]))}
    steps["shimin"].status = "done"
    kodomo = steps["kodomo"]
    kodomo.status, kodomo.counter, kodomo.resident_reason = "needs_resident", "8", "本人確認書類を確認させてください"
    db.commit()
    data = client.get(f"/api/v1/status/{visit['token']}?lang=vi").json()
    assert data["headline"] == "Vui lòng đến Phòng Phúc lợi Trẻ em (Tòa nhà chính, tầng 2 (2F)), quầy số 8."
    assert data["come_back"][0]["reason"] == "Chúng tôi cần kiểm tra giấy tờ tùy thân của bạn"
    texts = {s["department"]: s["status_text"] for s in data["steps"]}
    assert texts["shimin"] != "終わりました" and all(not re.search(r"[ぁ-ん]", t) for t in texts.values())
    common = next(g for g in data["document_groups"] if g["department"] == "")
    assert common["items"][0].startswith("Giấy tờ tùy thân")
    # Application titles and documents come from form_definitions/i18n/vi.yaml: nothing left in Japanese.
    titles = {s["department"]: s["applications"] for s in data["steps"]}
    assert "Trợ cấp nhi đồng" in titles["kodomo"] and "Thông báo chuyển đến" in titles["shimin"]
    items = [i for g in data["document_groups"] for i in g["items"]]
    assert items and not any(re.search(r"[ぁ-んァ-ヶ一-龯]", i) for i in items), items
    assert data["documents_note"] == ""
    # Korean is complete too; a text a city has not translated yet falls back to Japanese, visibly.
    ko = client.get(f"/api/v1/status/{visit['token']}?lang=ko").json()
    assert not any(i.endswith("[日本語]") for g in ko["document_groups"] for i in g["items"]) and not ko["documents_note"]
    real = translations.catalogs_for
    monkeypatch.setattr(translations, "catalogs_for", lambda defs: {
        **real(defs), "pt": dataclasses.replace(real(defs)["pt"], documents={})})
    pt = client.get(f"/api/v1/status/{visit['token']}?lang=pt").json()
    assert any(i.endswith("[日本語]") for g in pt["document_groups"] for i in g["items"]) and pt["documents_note"]
    html = client.get(f"/q/{visit['token']}?lang=vi").text
    assert data["headline"] in html and '<h1 id="ticket-heading">' in html
    assert_no_personal_data(html, model_case_raw)


def test_all_done_puts_the_satisfaction_question_first(client: TestClient, db: Session, visit: dict[str, Any]) -> None:
    for step in db.scalars(select(RoutingStep).where(RoutingStep.case_id == visit["case_id"])):
        step.status = "done"
    db.commit()
    html = client.get(f"/q/{visit['token']}").text
    assert "手続きはすべて終わりました。お帰りいただけます" in html
    assert html.index('id="satisfaction"') < html.index('id="steps-title"')
    assert 'id="documents" hidden' in html  # nothing left to bring
    res = client.post(f"/q/{visit['token']}/satisfaction", data={"score": "5"}, follow_redirects=True)
    assert res.status_code == 200
    assert res.text.index("ご回答ありがとうございました") < res.text.index('id="steps-title"')


def test_easy_japanese_puts_furigana_over_the_definitions_text(client: TestClient, db: Session,
                                                               visit: dict[str, Any]) -> None:
    kodomo = db.scalar(select(RoutingStep).where(RoutingStep.case_id == visit["case_id"],
                                                 RoutingStep.department_id == "kodomo"))
    assert kodomo is not None
    kodomo.status, kodomo.counter = "needs_resident", "8"
    kodomo.resident_reason = "本人確認書類を確認させてください。口座<b>の確認"
    db.commit()
    data = client.get(f"/api/v1/status/{visit['token']}?lang=ja-x-easy").json()
    shimin = next(s for s in data["steps"] if s["department"] == "shimin")
    assert shimin["applications_html"][0] == "<ruby>転入<rt>てんにゅう</rt></ruby><ruby>届<rt>とどけ</rt></ruby>"
    reason = data["come_back"][0]["reason_html"]
    # The chosen phrase comes from the catalog (hiragana); the clerk's words get readings, and stay escaped.
    assert "<ruby>口座<rt>こうざ</rt></ruby>&lt;b&gt;の<ruby>確認<rt>かくにん</rt></ruby>" in reason
    common = next(g for g in data["document_groups"] if g["department"] == "")
    assert "<ruby>" in common["items_html"][0] or "<ruby>" not in common["items"][0]
    html = client.get(f"/q/{visit['token']}?lang=ja-x-easy").text
    assert "<ruby>転入<rt>てんにゅう</rt></ruby>" in html and "<b>" not in html


def test_email_opt_in_from_the_phone_page(client: TestClient, db: Session, visit: dict[str, Any]) -> None:
    from app.models import NoticeSubscription

    page = client.get(f"/q/{visit['token']}?lang=en")
    assert 'action="/q/' in page.text and "Get notices" in page.text
    bad = client.post(f"/q/{visit['token']}/notices/email", data={"email": "nope", "lang": "en"})
    assert bad.status_code == 200 and "Please check the e-mail address." in bad.text
    ok = client.post(f"/q/{visit['token']}/notices/email", data={"email": "someone@example.org", "lang": "en"})
    assert ok.status_code == 200 and "Registered. We will send you notices." in ok.text
    assert "someone@example.org" not in ok.text
    row = db.scalar(select(NoticeSubscription).where(NoticeSubscription.case_id == visit["case_id"]))
    assert row is not None and row.target == "someone@example.org" and row.language == "en"
    # Encrypted at rest: the stored column does not hold the address.
    from sqlalchemy import text
    raw = db.execute(text("SELECT target FROM notice_subscriptions WHERE id = :id"), {"id": row.id}).scalar_one()
    assert "someone@example.org" not in raw
    # A push subscription is JSON from the browser.
    res = client.post(f"/q/{visit['token']}/notices/push?lang=vi",
                      json={"endpoint": "https://push.example/abc", "keys": {"p256dh": "x", "auth": "y"}})
    assert res.status_code == 201
    assert client.post(f"/q/{visit['token']}/notices/push", json={"endpoint": 3}).status_code == 422
