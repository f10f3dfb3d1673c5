"""The resident's phone page, its JSON, languages, the satisfaction answer and the waiting-room board."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import events, i18n
from app.forms.wareki import format_wareki
from app.models import Case, CaseEvent, QueueTicket, RoutingStep, SatisfactionResponse
from app.services import queue

LANGS = list(i18n.LANGUAGES)


def personal_strings(raw: dict[str, Any]) -> set[str]:
    """Every name, kana, address part, birth date, number and employer of the model household."""
    found: set[str] = set()
    for member in raw["household"]["members"]:
        for key in ("family_name", "given_name", "family_name_kana", "given_name_kana", "my_number", "employer"):
            if member.get(key):
                found.add(member[key])
        found.add(member["family_name"] + member["given_name"])
        found.add(member["family_name"] + " " + member["given_name"])
        found.add("********" + member["my_number"][-4:])
        day = dt.date.fromisoformat(member["birth_date"])
        found |= {member["birth_date"], f"{day:%Y/%m/%d}", f"{day.year}年{day.month}月{day.day}日", format_wareki(day)}
        found.add((member.get("school") or {}).get("previous_school", ""))
        found |= set((member.get("childcare") or {}).get("preferred_facilities", []))
    for address in (raw["address"], raw["move"]["previous_address"]):
        found |= {address["postal_code"], address["postal_code"].replace("-", ""), address["prefecture"], address["city"],
                  address["town"], address["block"], address["building"]}
    found |= {raw["phone"], raw["phone"].replace("-", "")}
    found |= {v for k, v in raw["bank_account"].items() if k != "account_type"}
    found.discard("")
    return found


def assert_no_personal_data(text: str, raw: dict[str, Any]) -> None:
    leaked = sorted(s for s in personal_strings(raw) if s in text)
    assert not leaked, f"personal data on the resident page: {leaked}"


@pytest.fixture
def visit(client: TestClient, counter_headers: dict[str, str], db: Session, model_case_raw: dict[str, Any]) -> dict[str, Any]:
    """The model household after the interview: its ticket waits behind another one, and its slip has four steps."""
    earlier = client.post("/api/v1/queue/tickets", json={"life_events": ["birth"]}, headers=counter_headers).json()
    res = client.post("/api/v1/cases", json=model_case_raw, headers=counter_headers)
    assert res.status_code == 201, res.text
    body = res.json()
    case = db.get(Case, body["id"])
    assert case is not None
    queue.issue_ticket(db, case=case)
    # The routing slip's steps (built by the routing service in the app; made by hand here).
    for position, (dep, status, apps) in enumerate([
        ("shimin", "done", ["jumin_tennyu", "mynumber_keizoku-m1"]),
        ("kodomo", "needs_resident", ["jido_teate", "kodomo_iryo-m3", "kodomo_iryo-m4"]),
        ("hoiku", "in_progress", ["hoiku_nyusho-m4"]),
        ("gakumu", "pending", ["tennyu_gaku-m3"]),
    ]):
        db.add(RoutingStep(case_id=case.id, department_id=dep, position=position, stage=min(position, 1),
                           applications=apps, status=status,
                           resident_reason="児童手当の口座の確認のため" if status == "needs_resident" else "",
                           counter="8" if status == "needs_resident" else ""))
    db.commit()
    return {"token": body["status_token"], "case_id": body["id"], "earlier": earlier, "number": body["ticket_number"]}


def finish_steps(db: Session, case_id: str) -> None:
    for step in db.scalars(select(RoutingStep).where(RoutingStep.case_id == case_id)):
        step.status = "done"
    db.commit()


def test_page_shows_ticket_position_steps_and_what_to_bring(client: TestClient, visit: dict[str, Any]) -> None:
    res = client.get(f"/q/{visit['token']}", headers={"Accept-Language": "ja"})
    assert res.status_code == 200
    html = res.text
    assert f">{visit['number']:03d}<" in html
    assert "あなたの前に1人待っています" in html
    assert "あと約10分（目安）" in html  # 20 minutes (one-stop default) × 1 ahead ÷ 2 counters
    for name in ("市民課", "こども福祉課", "保育課", "教育委員会 学事課"):
        assert name in html
    for words in ("終わりました", "窓口へお越しください", "担当の課で手続きをしています", "順番を待っています"):
        assert words in html
    # When to come back, to which counter; application titles (never an instance title with a name).
    assert "こども福祉課（本庁舎2階）8番窓口" in html and "児童手当の口座の確認のため" in html
    assert "児童手当" in html and "転入学" in html
    # What to bring: documents of the determination, each once.
    data = client.get(f"/api/v1/status/{visit['token']}").json()
    assert data["documents"] and len(data["documents"]) == len(set(data["documents"]))
    assert "前の学校が発行した在学証明書" in data["documents"]
    # On the page: grouped by department, only departments still open (市民課 is done), identity proof once.
    groups = {g["department"]: g["items"] for g in data["document_groups"]}
    assert "shimin" not in groups and {"kodomo", "hoiku", "gakumu", ""} <= set(groups)
    assert "転出届をした方のマイナンバーカード（特例転入のため転出証明書は不要）" not in html
    assert html.count("本人確認書類（マイナンバーカード、運転免許証、在留カードなど）") == 1
    assert "請求者の本人確認書類" not in html and "保護者の本人確認書類" not in html
    assert "前の学校が発行した在学証明書" in groups["gakumu"] and "前の学校が発行した在学証明書" in html
    shown = [item for items in groups.values() for item in items]
    assert len(shown) == len(set(shown))
    assert data["ticket"]["position"] == 2 and data["ticket"]["estimated_wait_minutes"] == 10
    assert data["come_back"][0]["counter"] == "8"
    assert res.headers["cache-control"] == "no-store" and res.headers["referrer-policy"] == "no-referrer"
    assert "<script src=\"/static/resident/resident.js\"" in html and 'data-events-url="/q/' in html


@pytest.mark.parametrize("lang", LANGS)
def test_no_personal_data_in_any_language(client: TestClient, visit: dict[str, Any], model_case_raw: dict[str, Any],
                                          db: Session, lang: str) -> None:
    finish_steps(db, visit["case_id"])  # the satisfaction form is on the page too
    html = client.get(f"/q/{visit['token']}?lang={lang}").text
    json_text = client.get(f"/api/v1/status/{visit['token']}?lang={lang}").text
    assert "satisfaction" in json_text and 'name="score"' in html
    assert_no_personal_data(html, model_case_raw)
    assert_no_personal_data(json_text, model_case_raw)
    assert visit["case_id"] not in html and visit["case_id"] not in json_text


def test_the_personal_data_check_can_fail(model_case_raw: dict[str, Any]) -> None:
    with pytest.raises(AssertionError, match="尼崎"):
        assert_no_personal_data("<p>尼崎 太郎</p>", model_case_raw)
    assert "平成2年6月15日" in personal_strings(model_case_raw) and "123456789018" in personal_strings(model_case_raw)


def test_called_ticket_and_json_headers(client: TestClient, counter_headers: dict[str, str], visit: dict[str, Any]) -> None:
    client.post("/api/v1/queue/call-next", json={"counter": "2"}, headers=counter_headers)
    assert client.get(f"/api/v1/status/{visit['token']}").json()["ticket"]["ahead"] == 0
    client.post("/api/v1/queue/call-next", json={"counter": "3"}, headers=counter_headers)
    res = client.get(f"/api/v1/status/{visit['token']}?lang=en")
    assert res.headers["cache-control"] == "no-store" and res.headers["referrer-policy"] == "no-referrer"
    data = res.json()
    assert data["ticket"]["status"] == "called" and data["ticket"]["counter"] == "3"
    assert data["headline"] == "Please come to counter 3."
    assert data["lang"] == "en" and data["steps"][0]["department_name"] == "Citizens' Affairs Division"


@pytest.mark.parametrize(("header", "lang", "words"), [
    ("en-US,en;q=0.9", "en", "Waiting ahead of you: 1"),
    ("zh-CN,zh;q=0.9", "zh-Hans", "您前面还有1人"),
    ("ko-KR", "ko", "앞에 1명이 기다리고 있습니다"),
    ("vi", "vi", "Số người trước bạn: 1"),
    ("pt-BR,pt;q=0.8", "pt", "Pessoas na sua frente: 1"),
    ("fr-FR, ko;q=0.5, en;q=0.4", "ko", "앞에 1명이"),
    ("zh-TW", "ja", "あなたの前に1人待っています"),
    ("", "ja", "あなたの前に1人待っています"),
])
def test_language_from_accept_language(client: TestClient, visit: dict[str, Any], header: str, lang: str, words: str) -> None:
    html = client.get(f"/q/{visit['token']}", headers={"Accept-Language": header}).text
    assert words in html
    assert f'<html lang="{i18n.LANGUAGES[lang].html_lang}">' in html
    assert client.get(f"/api/v1/status/{visit['token']}", headers={"Accept-Language": header}).json()["lang"] == lang


def test_switcher_sets_a_cookie(client: TestClient, visit: dict[str, Any]) -> None:
    page = client.get(f"/q/{visit['token']}", headers={"Accept-Language": "en"})
    links = re.findall(r'href="\?lang=([^"]+)"', page.text)
    assert links == LANGS
    res = client.get(f"/q/{visit['token']}?lang=ja-x-easy", headers={"Accept-Language": "en"})
    assert "あなたの まえに 1にん まって います" in res.text and "lang=ja-x-easy" in res.headers["set-cookie"]
    # The cookie now wins over the browser's language.
    again = client.get(f"/q/{visit['token']}", headers={"Accept-Language": "en"})
    assert "あなたの まえに 1にん まって います" in again.text
    assert client.get(f"/api/v1/status/{visit['token']}").json()["lang"] == "ja-x-easy"


def test_unknown_token_gets_a_friendly_404(client: TestClient) -> None:
    for token in ("AAAAAAAAAAAAAAAA", "x", "a" * 300, "%E5%B0%BC"):
        res = client.get(f"/q/{token}", headers={"Accept": "text/html"})
        assert res.status_code == 404
        assert "この番号の受付は見つかりません" in res.text and res.headers["cache-control"] == "no-store"
    res = client.get("/q/AAAAAAAAAAAAAAAA?lang=en")
    assert res.status_code == 404 and "We cannot find this reception number" in res.text
    res = client.get("/api/v1/status/AAAAAAAAAAAAAAAA")
    assert res.status_code == 404 and res.json()["error"] == "not_found"
    assert client.get("/q/AAAAAAAAAAAAAAAA/events").status_code == 404


def test_satisfaction_is_asked_only_at_the_end_and_stored_once(
    client: TestClient, visit: dict[str, Any], db: Session,
) -> None:
    url = f"/api/v1/status/{visit['token']}/satisfaction"
    assert 'name="score"' not in client.get(f"/q/{visit['token']}").text
    early = client.post(url, json={"score": 5})
    assert early.status_code == 409 and early.json()["message"] == "手続きが終わってからお答えください"
    finish_steps(db, visit["case_id"])
    assert client.get(f"/api/v1/status/{visit['token']}").json()["satisfaction"] == {"asked": True, "answered": False}
    for bad, field in ((0, "score"), (6, "score"), ("abc", "score"), (None, "score"), (True, "score")):
        res = client.post(url, json={"score": bad})
        assert res.status_code == 422
        assert res.json()["errors"] == [{"field": field, "message": "満足度を1から5の中から選んでください"}]
    res = client.post(url, json={"score": 4, "comment": "あ" * 501})
    assert res.status_code == 422
    assert res.json()["errors"] == [{"field": "comment", "message": "ご意見は500文字以内でお書きください"}]
    assert db.get(SatisfactionResponse, visit["case_id"]) is None
    ok = client.post(url, json={"score": 4, "comment": " 説明が分かりやすかった\u0007 "}, headers={"Accept-Language": "vi"})
    assert ok.status_code == 201
    again = client.post(url, json={"score": 1})
    assert again.status_code == 409 and again.json()["message"] == "すでにお答えいただいています。ありがとうございました"
    db.expire_all()
    stored = db.get(SatisfactionResponse, visit["case_id"])
    assert stored is not None and (stored.score, stored.comment, stored.language) == (4, "説明が分かりやすかった", "vi")
    event = db.scalars(select(CaseEvent).where(CaseEvent.case_id == visit["case_id"], CaseEvent.kind == events.SATISFACTION)).one()
    assert event.data == {"score": 4}  # the comment stays out of the event log
    assert client.get(f"/api/v1/status/{visit['token']}").json()["satisfaction"] == {"asked": True, "answered": True}


def test_satisfaction_form_works_without_javascript(client: TestClient, visit: dict[str, Any], db: Session) -> None:
    db.get(Case, visit["case_id"]).status = "closed"  # type: ignore[union-attr]
    db.commit()
    page = client.get(f"/q/{visit['token']}?lang=en").text
    assert f'action="/q/{visit["token"]}/satisfaction"' in page and "How was your visit today?" in page
    bad = client.post(f"/q/{visit['token']}/satisfaction", data={"score": "9", "comment": "ok", "lang": "en"})
    assert bad.status_code == 422 and "Please choose a number from 1 to 5." in bad.text and ">ok</textarea>" in bad.text
    bad_ja = client.post(f"/q/{visit['token']}/satisfaction", data={"score": "", "lang": "ja"})
    assert bad_ja.status_code == 422 and "満足度を1から5の中から選んでください" in bad_ja.text
    res = client.post(f"/q/{visit['token']}/satisfaction", data={"score": "5", "comment": "", "lang": "en"},
                      follow_redirects=False)
    assert res.status_code == 303 and res.headers["location"] == f"/q/{visit['token']}?thanks=1"
    thanks = client.get(res.headers["location"]).text
    assert "Thank you for your answer." in thanks and 'name="score"' not in thanks
    assert db.get(SatisfactionResponse, visit["case_id"]).score == 5  # type: ignore[union-attr]
    twice = client.post(f"/q/{visit['token']}/satisfaction", data={"score": "1"}, follow_redirects=False)
    assert twice.status_code == 303
    db.expire_all()
    assert db.get(SatisfactionResponse, visit["case_id"]).score == 5  # type: ignore[union-attr]


def test_board_shows_called_numbers_without_personal_data(
    client: TestClient, counter_headers: dict[str, str], visit: dict[str, Any], model_case_raw: dict[str, Any], db: Session,
) -> None:
    # A screen for the whole room: Japanese whatever the display's browser prefers.
    assert "ただいま呼び出し中の番号はありません" in client.get("/board", headers={"Accept-Language": "en"}).text
    client.post("/api/v1/queue/call-next", json={"counter": "2"}, headers=counter_headers)
    client.post("/api/v1/queue/call-next", json={"counter": "3"}, headers=counter_headers)
    data = client.get("/board/data").json()
    assert [(c["number"], c["counter_text"]) for c in data["calling"]] == [(visit["number"], "3番窓口"),
                                                                           (visit["earlier"]["number"], "2番窓口")]
    ticket = db.get(QueueTicket, visit["case_id"])
    assert ticket is not None
    html = client.get("/board?lang=en").text
    assert f"{visit['number']:03d}" in html and "Counter 3" in html and "Now calling" in html
    assert_no_personal_data(html, model_case_raw)
    assert_no_personal_data(client.get("/board/data").text, model_case_raw)
    res = client.get("/board")
    assert res.headers["cache-control"] == "no-store"
