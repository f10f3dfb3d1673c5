"""The phone's pre-entry pages: one question per screen, errors in the page language, hand-off screen."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.conftest import login, make_user


def start(client: TestClient, lang: str = "ja") -> None:
    res = client.post(f"/pre/start?lang={lang}", follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"] == "/pre/q"
    assert "kakanai_pre" in res.headers["set-cookie"] and "HttpOnly" in res.headers["set-cookie"]


def test_one_question_per_screen_and_the_first_applies(client: TestClient) -> None:
    assert "入力をはじめる" in client.get("/pre").text
    start(client)
    page = client.get("/pre/q")
    assert page.status_code == 200
    assert page.text.count('name="step"') == 1
    assert "手続きのきっかけ" in page.text
    res = client.post("/pre/q", data={"step": "life_events", "value": ["move_in"], "nav": "next"}, follow_redirects=False)
    assert res.status_code == 303 and "step=move.moved_on" in res.headers["location"]
    # Only what applies: a move-in asks the moving-out method, not the birth questions.
    steps = client.get("/pre/q?step=move.moving_out_method").text
    assert "転出の手続き" in steps


def test_errors_are_per_field_in_the_page_language(client: TestClient) -> None:
    start(client, "en")
    client.post("/pre/q", data={"step": "life_events", "value": ["move_in"], "nav": "next"})
    res = client.post("/pre/q?lang=en", data={"step": "household.members[0].birth_date", "value": "1990-02-31",
                                              "nav": "next"})
    assert res.status_code == 422
    assert "Please enter a valid date" in res.text
    assert 'aria-invalid="true"' in res.text
    res = client.post("/pre/q?lang=ja", data={"step": "household.members[0].birth_date", "value": "1990-02-31"})
    assert res.status_code == 422 and re.search(r'role="alert"[^>]*>.*日', res.text, re.S)


def test_members_can_be_added(client: TestClient) -> None:
    start(client)
    client.post("/pre/q", data={"step": "household.members[0].family_name", "value": "港"})
    res = client.post("/pre/q", data={"step": "members.more", "nav": "add"}, follow_redirects=False)
    assert "household.members%5B1%5D" in res.headers["location"] or "household.members[1]" in res.headers["location"]
    assert "2人目" in client.get(res.headers["location"]).text


def test_handoff_shows_the_code_and_after_hand_over_nothing_personal(client: TestClient, db: Session) -> None:
    start(client)
    client.post("/pre/q", data={"step": "household.members[0].family_name", "value": "港川"})
    page = client.get("/pre/handoff")
    code = re.search(r'class="pre-code"[^>]*>([A-Z0-9]{4}-[A-Z0-9]{4})<', page.text).group(1)
    assert "<svg" in page.text and "港川" not in page.text
    assert client.get("/pre/state").json() == {"state": "open"}
    make_user(db, "clerk", "counter")
    staff = TestClient(client.app)
    assert staff.post("/api/v1/cases/from-pre-entry", headers=login(staff, "clerk"), json={"code": code}).status_code == 201
    assert client.get("/pre/state").json() == {"state": "handed_over"}
    done = client.get("/pre/done")
    assert "窓口にお渡ししました" in done.text and "港川" not in done.text
    assert 'kakanai_pre=""' in done.headers["set-cookie"] or "Max-Age=0" in done.headers["set-cookie"]
    assert client.get("/pre/q", follow_redirects=False).headers["location"] == "/pre"


def test_too_many_starts_get_a_429_page(client: TestClient, settings: object) -> None:
    for _ in range(settings.pre_entry_drafts_per_hour):  # type: ignore[attr-defined]
        client.post("/pre/start", follow_redirects=False)
    res = client.post("/pre/start?lang=en", follow_redirects=False)
    assert res.status_code == 429 and "<html" in res.text


def test_counter_code_field_opens_the_visit_and_review_lists_what_the_clerk_changed(
        client: TestClient, db: Session, model_case: dict) -> None:
    from tests.conftest import page_login
    from tests.routers.test_api_pre_entry import new_draft, resident_part

    code, token = new_draft(client)
    assert client.put(f"/pre/api/drafts/{code}/answers", headers=token,
                      json={"answers": resident_part(model_case)}).json()["errors"] == []
    make_user(db, "clerk", "counter")
    csrf = page_login(client, "clerk")
    today = client.get("/counter")
    assert "事前入力コード" in today.text and "/static/vendor/zxing/zxing-library.min.js" in today.text
    assert "camera=(self)" in today.headers["permissions-policy"]
    wrong = client.post("/counter/pre-entry", data={"code": "ZZZZ-ZZZZ", "csrf_token": csrf})
    assert wrong.status_code == 404 and "見つかりません" in wrong.text
    # What a USB scanner types: the QR's whole text.
    res = client.post("/counter/pre-entry", data={"code": f"KAKANAI-PRE:{code}", "csrf_token": csrf},
                      follow_redirects=False)
    assert res.status_code == 303, res.text
    case_id = res.headers["location"].split("/counter/visits/")[1].split("?")[0]
    assert "本人入力" in client.get(f"/counter/visits/{case_id}").text
    review = client.get(f"/counter/visits/{case_id}/review").text
    assert "窓口で変えていません" in review
    staff = login(client, "clerk")
    case = client.get(f"/api/v1/cases/{case_id}?reveal=all", headers=staff).json()
    answers = case["answers"]
    answers["phone"] = "06-6489-0000"
    answers["household"]["members"][1]["my_number"] = "123456789018"
    res = client.put(f"/api/v1/cases/{case_id}/answers?draft=true", headers=staff,
                     json={"answers": answers, "version": case["version"]})
    assert res.status_code == 200, res.text
    review = client.get(f"/counter/visits/{case_id}/review").text
    section = review.split('id="pre-changes"')[1].split("</section>")[0]
    assert "（2件）" in section
    assert "090-1234-5678" in section and "06-6489-0000" in section
    assert "********0121" in section and "********9018" in section
    assert "234567890121" not in review and "123456789018" not in review


def test_questions_and_choices_in_the_page_language(client: TestClient) -> None:
    start(client, "vi")
    page = client.get("/pre/q?lang=vi").text
    assert "Điều gì đã xảy ra?" in page and "Chuyển đến (từ thành phố khác)" in page
    client.post("/pre/q?lang=vi", data={"step": "life_events", "value": ["move_in", "childcare"]})
    for step in ("move.moving_out_method", "household.members[0].relationship", "bank_account.account_type"):
        assert "[日本語]" not in client.get(f"/pre/q?lang=vi&step={step}").text, step


def test_an_oversized_screen_is_refused(client: TestClient, settings: object) -> None:
    start(client)
    big = "あ" * settings.pre_entry_max_bytes  # type: ignore[attr-defined]
    res = client.post("/pre/q", data={"step": "phone", "value": big})
    assert res.status_code == 413
    res = client.post("/pre/q", data={"step": "household.members[0].family_name", "value": "い" * 600})
    assert res.status_code == 422 and 'role="alert"' in res.text
    # A question that does not apply now stores nothing (and never lands on another question).
    res = client.post("/pre/q", data={"step": "household.members[0].employer", "value": "港商事"},
                      follow_redirects=False)
    assert res.headers["location"] == "/pre/q"
    assert "港商事" not in client.get("/pre/q?step=life_events").text


def test_easy_japanese_asks_in_plain_words(client: TestClient) -> None:
    start(client, "ja-x-easy")
    page = client.get("/pre/q?lang=ja-x-easy").text
    assert "なにが ありましたか" in page and "ほかの まちから ひっこして きた" in page
    assert "つぎへ" in page and "[日本語]" not in page
    assert "みょうじ" in client.get("/pre/q?lang=ja-x-easy&step=household.members[0].family_name").text


def test_a_death_visit_asks_in_the_page_language(client: TestClient) -> None:
    """Beyond a move-in: the questions after a death (おくやみ) are translated too, not shown in marked Japanese."""
    start(client, "vi")
    client.post("/pre/q?lang=vi", data={"step": "life_events", "value": ["death"]})
    asked = {
        "vi": ("Ngày mất", "Quan hệ của người thừa kế với người đã mất", "Vợ/chồng"),
        "ko": ("돌아가신 날", "돌아가신 분과 상속인의 관계", "배우자"),
    }
    for lang, (died_on, relationship, spouse) in asked.items():
        page = client.get(f"/pre/q?lang={lang}&step=death.died_on").text
        assert 'value="death.died_on"' in page  # the asked question itself, not another one
        assert died_on in page and "亡くなった日" not in page and "[日本語]" not in page, lang
        page = client.get(f"/pre/q?lang={lang}&step=death.heir_relationship").text
        assert relationship in page and spouse in page and "[日本語]" not in page, lang
    # The same screen in plain Japanese.
    assert "なくなった ひ" in client.get("/pre/q?lang=ja-x-easy&step=death.died_on").text
