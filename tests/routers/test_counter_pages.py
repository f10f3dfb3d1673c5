"""Counter pages over HTTP: login with CSRF, sessions that time out, starting a visit, autosave with
field errors and conflicts, the side panel, review, signature and the PDFs."""

from __future__ import annotations

import copy
import datetime as dt
import io
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import AuditEntry, Case, CaseEvent, QueueTicket, RoutingStep, StaffSession
from tests.conftest import PASSWORD, make_user

HTML = {"Accept": "text/html"}
JSON = {"Accept": "application/json"}


def _login_csrf(client: TestClient) -> str:
    page = client.get("/login", headers=HTML)
    assert page.status_code == 200
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def post_login_form(client: TestClient, name: str, password: str = PASSWORD) -> Any:
    """Log in through the login form like a browser does."""
    token = _login_csrf(client)
    return client.post("/login", data={"username": name, "password": password, "csrf_token": token, "next": "/counter"},
                       headers=HTML, follow_redirects=False)


def csrf_of(client: TestClient, path: str = "/counter") -> str:
    """The session's CSRF token as a page carries it."""
    page = client.get(path, headers=HTML)
    assert page.status_code == 200, page.text
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


@pytest.fixture
def clerk(client: TestClient, db: Session) -> str:
    """A counter clerk logged in through the pages; returns the CSRF token."""
    make_user(db, "madoguchi", "counter")
    res = post_login_form(client, "madoguchi")
    assert res.status_code == 303, res.text
    return csrf_of(client)


def start_visit(client: TestClient, csrf: str, events: list[str]) -> str:
    res = client.post("/counter/visits", data={"csrf_token": csrf, "life_events": events}, headers=HTML,
                      follow_redirects=False)
    assert res.status_code == 303, res.text
    return res.headers["location"].split("/")[3].split("?")[0]


def autosave(client: TestClient, csrf: str, case_id: str, answers: dict[str, Any], version: int) -> Any:
    return client.post(f"/counter/visits/{case_id}/answers", json={"answers": answers, "version": version},
                       headers={**JSON, "X-CSRF-Token": csrf})


def screen_answers(model: dict[str, Any]) -> dict[str, Any]:
    """The model household as the screen sends it (no survey baseline, no comments)."""
    doc = copy.deepcopy(model)
    doc.pop("survey_baseline", None)
    doc.pop("$comment", None)
    return doc


def test_pages_redirect_to_login_without_a_session(client: TestClient) -> None:
    res = client.get("/counter", headers=HTML, follow_redirects=False)
    assert res.status_code == 303
    assert res.headers["location"].startswith("/login?next=%2Fcounter")


def test_login_requires_the_form_token_and_sets_a_strict_httponly_cookie(client: TestClient, db: Session) -> None:
    make_user(db, "madoguchi", "counter")
    _login_csrf(client)
    forged = client.post("/login", data={"username": "madoguchi", "password": PASSWORD, "csrf_token": "forged"},
                         headers=HTML, follow_redirects=False)
    assert forged.status_code == 403
    assert "kakanai_session" not in forged.cookies
    res = post_login_form(client, "madoguchi")
    assert res.status_code == 303 and res.headers["location"] == "/counter"
    cookie = next(h for h in res.headers.get_list("set-cookie") if h.startswith("kakanai_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie


def test_wrong_password_shows_a_japanese_message_and_is_audited(client: TestClient, db: Session) -> None:
    make_user(db, "madoguchi", "counter")
    res = post_login_form(client, "madoguchi", "wrong password!")
    assert res.status_code == 401
    assert "ユーザー名またはパスワードが違います" in res.text
    assert 'value="madoguchi"' in res.text  # the name typed stays in the form
    db.expire_all()
    assert db.scalar(select(AuditEntry).where(AuditEntry.action == "login_failed")) is not None


def test_login_next_only_accepts_local_paths(client: TestClient, db: Session) -> None:
    make_user(db, "madoguchi", "counter")
    token = _login_csrf(client)
    res = client.post("/login", data={"username": "madoguchi", "password": PASSWORD, "csrf_token": token,
                                      "next": "//evil.example/x"}, headers=HTML, follow_redirects=False)
    assert res.headers["location"] == "/counter"


def test_state_changes_without_the_csrf_token_are_refused(client: TestClient, clerk: str) -> None:
    res = client.post("/counter/visits", data={"life_events": ["move_in"]}, headers=HTML, follow_redirects=False)
    assert res.status_code == 403
    assert "画面の有効期限が切れています" in res.text
    res = client.post("/counter/visits", data={"life_events": ["move_in"], "csrf_token": "x" * 43}, headers=HTML)
    assert res.status_code == 403


def test_inactive_session_is_logged_out(client: TestClient, clerk: str, db: Session) -> None:
    row = db.scalar(select(StaffSession))
    row.last_seen_at = row.last_seen_at - dt.timedelta(minutes=31)
    db.commit()
    res = client.get("/counter", headers=HTML, follow_redirects=False)
    assert res.status_code == 303
    assert "expired=1" in res.headers["location"]
    login_page = client.get(res.headers["location"], headers=HTML)
    assert "一定時間操作がなかったため" in login_page.text
    db.expire_all()
    assert db.scalar(select(StaffSession)).ended_at is not None


def test_logout_ends_the_session(client: TestClient, clerk: str) -> None:
    res = client.post("/logout", data={"csrf_token": clerk}, headers=HTML, follow_redirects=False)
    assert res.status_code == 303
    assert client.get("/counter", headers=HTML, follow_redirects=False).status_code == 303


def test_department_staff_cannot_use_the_counter(client: TestClient, db: Session) -> None:
    make_user(db, "kodomo1", "department", department="kodomo")
    post_login_form(client, "kodomo1")
    assert client.get("/counter", headers=HTML).status_code == 403


def test_start_visit_issues_a_ticket_shown_big(client: TestClient, clerk: str, db: Session) -> None:
    case_id = start_visit(client, clerk, ["move_in", "childcare"])
    page = client.get(f"/counter/visits/{case_id}?new=1", headers=HTML)
    case = db.get(Case, case_id)
    assert f'<p class="ticket-number">{case.ticket_number:03d}</p>' in page.text
    assert case.answers["life_events"] == ["move_in", "childcare"]
    # The interview is generated from interview.yaml: its labels and sections are there.
    for label in ("引っ越した日（異動日）", "前の住所", "世帯の方", "個人番号（マイナンバー）"):
        assert label in page.text
    listing = client.get("/counter", headers=HTML)
    assert f">{case.ticket_number:03d}</a>" in listing.text and "聞き取り中" in listing.text


def test_start_visit_without_a_life_event_says_so(client: TestClient, clerk: str) -> None:
    res = client.post("/counter/visits", data={"csrf_token": clerk}, headers=HTML)
    assert res.status_code == 422
    assert "手続きのきっかけを1つ以上選んでください" in res.text


def test_labels_are_tied_to_inputs(client: TestClient, clerk: str) -> None:
    case_id = start_visit(client, clerk, ["move_in"])
    html = client.get(f"/counter/visits/{case_id}", headers=HTML).text
    ids = set(re.findall(r'<(?:input|textarea) id="([^"]+)"', html))
    for target in re.findall(r'<label for="([^"]+)"', html):
        assert target in ids, target


def test_autosave_stores_valid_answers_and_reports_the_rest(client: TestClient, clerk: str, db: Session,
                                                            model_case_raw: dict[str, Any]) -> None:
    case_id = start_visit(client, clerk, ["move_in", "childcare"])
    doc = screen_answers(model_case_raw)
    doc["household"]["members"][1]["my_number"] = "234567890120"  # wrong check digit
    doc["household"]["members"][2]["given_name_kana"] = "いちろう"  # hiragana becomes katakana
    res = autosave(client, clerk, case_id, doc, 1)
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["saved"] is True and body["version"] == 2
    assert body["errors"] == [{"field": "household.members[1].my_number",
                               "message": "個人番号の検査用数字（最後の1桁）が正しくありません。番号を確かめてください"}]
    db.expire_all()
    stored = db.get(Case, case_id).answers
    assert "my_number" not in stored["household"]["members"][1]  # the invalid number is not stored...
    assert stored["household"]["members"][0]["my_number"] == "123456789018"  # ...everything else is
    assert stored["household"]["members"][2]["given_name_kana"] == "イチロウ"
    assert stored["household"]["members"][0]["family_name"] == "尼崎"
    # The screen gets the normalised value back and the numbers masked.
    assert body["normalised"]["household.members[2].given_name_kana"] == "イチロウ"
    assert body["normalised"]["household.members[0].my_number"] == "********9018"
    # The side panel lists the applications with their reasons.
    assert "児童手当" in body["panel_html"] and "転入届" in body["panel_html"]
    assert "<li>" in body["panel_html"]


def test_masked_numbers_sent_back_keep_the_stored_ones(client: TestClient, clerk: str, db: Session,
                                                      model_case_raw: dict[str, Any]) -> None:
    case_id = start_visit(client, clerk, ["move_in", "childcare"])
    doc = screen_answers(model_case_raw)
    assert autosave(client, clerk, case_id, doc, 1).status_code == 200
    masked = copy.deepcopy(doc)
    masked["household"]["members"][0]["my_number"] = "********9018"
    masked["bank_account"]["account_number"] = "****567"
    masked["phone"] = "090-1234-9999"
    res = autosave(client, clerk, case_id, masked, 2)
    assert res.json()["errors"] == []
    db.expire_all()
    stored = db.get(Case, case_id).answers
    assert stored["household"]["members"][0]["my_number"] == "123456789018"
    assert stored["bank_account"]["account_number"] == "1234567"
    assert stored["phone"] == "090-1234-9999"


def test_the_survey_baseline_is_not_dropped_by_the_screen(client: TestClient, clerk: str, db: Session,
                                                         counter_headers: dict[str, str],
                                                         model_case_raw: dict[str, Any]) -> None:
    created = client.post("/api/v1/cases", json=model_case_raw, headers=counter_headers).json()
    doc = screen_answers(model_case_raw)
    doc["phone"] = "06-1234-5678"
    assert autosave(client, clerk, created["id"], doc, created["version"]).status_code == 200
    db.expire_all()
    assert db.get(Case, created["id"]).answers["survey_baseline"]["name_written"] == 28


def test_a_stale_tab_gets_a_conflict_not_an_overwrite(client: TestClient, clerk: str, db: Session,
                                                      model_case_raw: dict[str, Any]) -> None:
    case_id = start_visit(client, clerk, ["move_in"])
    doc = screen_answers(model_case_raw)
    assert autosave(client, clerk, case_id, doc, 1).json()["version"] == 2
    stale = copy.deepcopy(doc)
    stale["phone"] = "03-0000-0000"
    res = autosave(client, clerk, case_id, stale, 1)
    assert res.status_code == 409
    assert res.json()["current_version"] == 2
    db.expire_all()
    assert db.get(Case, case_id).answers["phone"] == "090-1234-5678"
    assert client.get(f"/counter/visits/{case_id}/version", headers=JSON).json() == {"version": 2}


def test_visibility_follows_the_answers(client: TestClient, clerk: str, model_case_raw: dict[str, Any]) -> None:
    case_id = start_visit(client, clerk, ["move_in"])
    doc = screen_answers(model_case_raw)
    vis = autosave(client, clerk, case_id, doc, 1).json()["visibility"]
    assert vis["move.planned_on"]["asked"] is True  # card_special
    assert vis["household.members[0].residence_card.number"]["asked"] is False  # JP
    assert vis["household.members[2].school.grade"]["asked"] is True  # school age
    assert vis["household.members[0].school.grade"]["asked"] is False
    assert vis["birth.born_at"]["asked"] is False


def test_autosave_rejects_a_body_without_a_version(client: TestClient, clerk: str) -> None:
    case_id = start_visit(client, clerk, ["move_in"])
    res = client.post(f"/counter/visits/{case_id}/answers", json={"answers": {}},
                      headers={**JSON, "X-CSRF-Token": clerk})
    assert res.status_code == 422
    assert res.json()["errors"][0]["field"] == "version"


def test_postal_lookup(client: TestClient, clerk: str) -> None:
    assert client.get("/counter/postal?code=6610012", headers=JSON).json() == {
        "found": True, "postal_code": "661-0012", "prefecture": "兵庫県", "city": "尼崎市", "town": "南塚口町"}
    assert client.get("/counter/postal?code=0000000", headers=JSON).json()["found"] is False


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (300, 90), "white").save(buf, format="PNG")
    return buf.getvalue()


def test_review_sign_and_documents(client: TestClient, clerk: str, db: Session,
                                   model_case_raw: dict[str, Any]) -> None:
    case_id = start_visit(client, clerk, ["move_in", "childcare"])
    incomplete = client.get(f"/counter/visits/{case_id}/review", headers=HTML)
    assert "署名の前に、次の項目を入力してください" in incomplete.text
    assert autosave(client, clerk, case_id, screen_answers(model_case_raw), 1).json()["errors"] == []
    review = client.get(f"/counter/visits/{case_id}/review", headers=HTML)
    assert "聞き取った内容の確認" in review.text
    assert "尼崎" in review.text and "児童手当" in review.text
    assert "123456789018" not in review.text and "********9018" in review.text
    res = client.post(f"/counter/visits/{case_id}/signature", content=_png(),
                      headers={**JSON, "Content-Type": "image/png", "X-CSRF-Token": clerk})
    assert res.status_code == 200, res.text
    assert res.json()["next"] == f"/counter/visits/{case_id}/documents"
    docs = client.get(f"/counter/visits/{case_id}/documents", headers=HTML)
    assert "申請書ができました（8件）" in docs.text
    pdf = client.get(f"/counter/visits/{case_id}/bundle.pdf?download=true")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert pdf.headers["content-disposition"].startswith("attachment;")
    kinds = [e.kind for e in db.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id))]
    assert kinds.count("interview_ended") == 1 and "signed" in kinds and "bundle_printed" in kinds
    assert db.scalar(select(AuditEntry).where(AuditEntry.action == "pdf_download", AuditEntry.case_id == case_id))


def test_signature_must_be_png(client: TestClient, clerk: str) -> None:
    case_id = start_visit(client, clerk, ["move_in"])
    res = client.post(f"/counter/visits/{case_id}/signature", content=b"GIF89a....",
                      headers={**JSON, "Content-Type": "image/png", "X-CSRF-Token": clerk})
    assert res.status_code == 422
    assert res.json()["errors"][0]["message"] == "署名はPNG画像で送ってください"


def test_unknown_case_page_is_a_japanese_404_page(client: TestClient, clerk: str) -> None:
    res = client.get("/counter/visits/nope", headers=HTML)
    assert res.status_code == 404
    assert "この案件は見つかりません" in res.text and "<html" in res.text


def test_a_half_typed_address_is_held_back_not_refused(client: TestClient, clerk: str, db: Session) -> None:
    case_id = start_visit(client, clerk, ["move_in"])
    doc = {"life_events": ["move_in"], "phone": "090-1234-5678",
           "address": {"postal_code": "661-0012", "prefecture": "兵庫県", "city": "尼崎市", "town": "南塚口町"}}
    res = autosave(client, clerk, case_id, doc, 1)
    assert res.status_code == 200, res.text
    assert res.json()["errors"] == [{"field": "address.block", "message": "丁目・番地を入力してください"}]
    db.expire_all()
    stored = db.get(Case, case_id).answers
    assert stored["phone"] == "090-1234-5678" and "address" not in stored


def test_walk_in_visit_gets_one_ticket_served_at_this_counter(client: TestClient, clerk: str, db: Session) -> None:
    res = client.post("/counter/visits", data={"csrf_token": clerk, "life_events": ["move_in"], "counter_no": "3"},
                      headers=HTML, follow_redirects=False)
    case_id = res.headers["location"].split("/")[3].split("?")[0]
    ticket = db.get(QueueTicket, case_id)
    assert ticket.status == "serving" and ticket.counter == "3"
    kinds = [e.kind for e in db.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id))]
    assert kinds[:2] == ["arrival", "interview_started"] and "service_started" in kinds
    assert "窓口 3" in client.get("/counter", headers=HTML).text  # the counter number is remembered


def test_call_next_recall_skip_and_start_from_the_counter(client: TestClient, clerk: str, db: Session,
                                                          counter_headers: dict[str, str]) -> None:
    # Two residents took tickets at reception; the counter calls them in order.
    first = client.post("/api/v1/queue/tickets", json={"life_events": ["move_in"]}, headers=counter_headers)
    assert first.status_code == 201, first.text
    second = client.post("/api/v1/queue/tickets", json={"life_events": ["birth"]}, headers=counter_headers)
    first_id, second_id = first.json()["case_id"], second.json()["case_id"]
    assert "お待ち 2 人" in client.get("/counter", headers=HTML).text
    res = client.post("/counter/call-next", data={"csrf_token": clerk, "counter_no": "2"}, headers=HTML,
                      follow_redirects=False)
    assert res.headers["location"] == f"/counter/visits/{first_id}?called=1"
    page = client.get(res.headers["location"], headers=HTML)
    assert "呼出中" in page.text and "お客様が来られた（対応開始）" in page.text
    client.post(f"/counter/visits/{first_id}/queue/recall", data={"csrf_token": clerk}, headers=HTML)
    db.expire_all()
    assert db.get(QueueTicket, first_id).call_count == 2
    client.post(f"/counter/visits/{first_id}/queue/skip", data={"csrf_token": clerk}, headers=HTML)
    res = client.post("/counter/call-next", data={"csrf_token": clerk}, headers=HTML, follow_redirects=False)
    assert res.headers["location"] == f"/counter/visits/{second_id}?called=1"
    client.post(f"/counter/visits/{second_id}/queue/start", data={"csrf_token": clerk}, headers=HTML)
    db.expire_all()
    assert db.get(QueueTicket, first_id).status == "skipped"
    assert db.get(QueueTicket, second_id).status == "serving" and db.get(QueueTicket, second_id).counter == "2"
    res = client.post("/counter/call-next", data={"csrf_token": clerk}, headers=HTML, follow_redirects=False)
    assert res.headers["location"] == "/counter?nobody=1"
    assert client.post(f"/counter/visits/{second_id}/queue/teleport", data={"csrf_token": clerk},
                       headers=HTML).status_code == 404


def test_close_lists_what_was_missed_then_closes(client: TestClient, clerk: str, db: Session,
                                                model_case_raw: dict[str, Any]) -> None:
    case_id = start_visit(client, clerk, ["move_in", "childcare"])
    autosave(client, clerk, case_id, screen_answers(model_case_raw), 1)
    res = client.post(f"/counter/visits/{case_id}/close", data={"csrf_token": clerk}, headers=HTML)
    assert res.status_code == 409
    assert "まだ終わっていない手続きがあります" in res.text and "署名" in res.text
    client.post(f"/counter/visits/{case_id}/signature", content=_png(),
                headers={**JSON, "Content-Type": "image/png", "X-CSRF-Token": clerk})
    client.get(f"/counter/visits/{case_id}/documents", headers=HTML)  # builds the routing slip
    client.get(f"/counter/visits/{case_id}/bundle.pdf")
    res = client.post(f"/counter/visits/{case_id}/close", data={"csrf_token": clerk}, headers=HTML)
    assert res.status_code == 409 and "こども福祉課" in res.text  # departments have not finished
    for step in db.scalars(select(RoutingStep).where(RoutingStep.case_id == case_id)):
        step.status = "done"
    db.commit()
    res = client.post(f"/counter/visits/{case_id}/close", data={"csrf_token": clerk}, headers=HTML,
                      follow_redirects=False)
    assert res.status_code == 303
    db.expire_all()
    assert db.get(Case, case_id).status == "closed"
    client.post(f"/counter/visits/{case_id}/queue/finish", data={"csrf_token": clerk}, headers=HTML)
    db.expire_all()
    assert db.get(QueueTicket, case_id).status == "done"
