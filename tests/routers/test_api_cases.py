"""Staff API v1: cases are created from the answers document, read back unchanged, and guarded."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import AuditEntry, Case
from app.services import auth
from tests.conftest import login, make_user, without_comments

NAME_KEYS = ("family_name", "given_name", "family_name_kana", "given_name_kana", "birth_date")


def _count(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(Case)) or 0


def _errors(res: Any) -> dict[str, str]:
    body = res.json()
    return {e["field"]: e["message"] for e in body["errors"]}


def test_model_household_is_accepted_and_read_back_unchanged(
    client: TestClient, counter_headers: dict[str, str], model_case_raw: dict[str, Any]
) -> None:
    res = client.post("/api/v1/cases", json=model_case_raw, headers=counter_headers)
    assert res.status_code == 201, res.text
    created = res.json()
    assert created["ticket_number"] >= 1
    assert created["ticket_label"] == f"{created['ticket_number']:03d}"
    assert len(created["status_token"]) >= 16
    assert created["version"] == 1
    assert created["complete"] is True and created["missing"] == []

    # Numbers are masked unless the caller asks to see them (an audited reveal).
    masked = client.get(f"/api/v1/cases/{created['id']}", headers=counter_headers).json()["answers"]
    assert masked["household"]["members"][0]["my_number"] == "********9018"
    assert masked["bank_account"]["account_number"] == "****567"
    res = client.get(f"/api/v1/cases/{created['id']}?reveal=all", headers=counter_headers)
    assert res.status_code == 200
    answers = res.json()["answers"]
    # The whole document comes back as it was sent, the survey baseline included ("$comment"s are dropped).
    assert answers == without_comments(model_case_raw)
    for sent, got in zip(model_case_raw["household"]["members"], answers["household"]["members"], strict=True):
        for key in NAME_KEYS:
            assert got[key].encode("utf-8") == sent[key].encode("utf-8")


def test_names_with_variation_sequences_and_non_bmp_survive(
    client: TestClient, counter_headers: dict[str, str], model_case: dict[str, Any]
) -> None:
    head = model_case["household"]["members"][0]
    head["family_name"] = "葛\U000e0102城"
    head["given_name"] = "\U00020bb7太"  # 𠮷太
    model_case["household"]["members"][1]["family_name"] = "渡邉\U000e0110"
    res = client.post("/api/v1/cases", json=model_case, headers=counter_headers)
    assert res.status_code == 201, res.text
    raw = client.get(f"/api/v1/cases/{res.json()['id']}", headers=counter_headers).content
    members = json.loads(raw)["answers"]["household"]["members"]
    assert members[0]["family_name"] == "葛\U000e0102城"
    assert members[0]["given_name"] == "\U00020bb7太"
    assert members[1]["family_name"] == "渡邉\U000e0110"


def test_input_helpers_normalise_kana_dates_and_fill_the_address(
    client: TestClient, counter_headers: dict[str, str], model_case: dict[str, Any]
) -> None:
    child = model_case["household"]["members"][2]
    child["family_name_kana"] = "あまがさき"  # hiragana
    child["given_name_kana"] = "ｲﾁﾛｳ"  # half-width katakana
    child["birth_date"] = "H29.9.20"  # 和暦
    model_case["visit_date"] = "令和8年4月6日"
    model_case["address"] = {"postal_code": "６６１００１２", "block": "二丁目4番5号"}
    model_case["household"]["members"][0]["my_number"] = "1234 5678 9018"
    res = client.post("/api/v1/cases?reveal=my_number", json=model_case, headers=counter_headers)
    assert res.status_code == 201, res.text
    answers = res.json()["answers"]
    got = answers["household"]["members"][2]
    assert (got["family_name_kana"], got["given_name_kana"], got["birth_date"]) == ("アマガサキ", "イチロウ", "2017-09-20")
    assert answers["visit_date"] == "2026-04-06"
    assert answers["address"] == {"postal_code": "661-0012", "prefecture": "兵庫県", "city": "尼崎市",
                                  "town": "南塚口町", "block": "二丁目4番5号"}
    assert answers["household"]["members"][0]["my_number"] == "123456789018"


def test_invalid_answers_give_one_japanese_message_per_field_and_store_nothing(
    client: TestClient, counter_headers: dict[str, str], model_case: dict[str, Any], db: Session
) -> None:
    before = _count(db)
    members = model_case["household"]["members"]
    members[0]["my_number"] = "123456789012"  # wrong check digit
    model_case["address"]["postal_code"] = "12-345"
    members[2]["birth_date"] = "2099-01-01"
    del members[1]["given_name"]
    members[3]["relationship"] = "cousin"
    res = client.post("/api/v1/cases", json=model_case, headers=counter_headers)
    assert res.status_code == 422
    body = res.json()
    assert body["error"] == "validation_error"
    errors = _errors(res)
    assert len(errors) == len(body["errors"])  # one message per field
    assert set(errors) == {
        "household.members[0].my_number",
        "address.postal_code",
        "household.members[2].birth_date",
        "household.members[1].given_name",
        "household.members[3].relationship",
    }
    assert "検査用数字" in errors["household.members[0].my_number"]
    assert "郵便番号" in errors["address.postal_code"]
    assert "未来" in errors["household.members[2].birth_date"]
    assert errors["household.members[1].given_name"] == "名を入力してください"
    assert "世帯主" in errors["household.members[3].relationship"]
    assert _count(db) == before


def test_unknown_postal_code_and_mismatched_prefecture_are_rejected(
    client: TestClient, counter_headers: dict[str, str], model_case: dict[str, Any]
) -> None:
    model_case["address"]["postal_code"] = "000-0000"
    model_case["move"]["previous_address"]["prefecture"] = "東京都"
    errors = _errors(client.post("/api/v1/cases", json=model_case, headers=counter_headers))
    assert errors["address.postal_code"] == "この郵便番号は見つかりません"
    assert errors["move.previous_address.prefecture"] == "郵便番号の都道府県（大阪府）と一致しません"


def test_unknown_keys_and_non_object_bodies_are_422(client: TestClient, counter_headers: dict[str, str],
                                                      model_case: dict[str, Any]) -> None:
    model_case["household"]["members"][0]["favourite_colour"] = "blue"
    errors = _errors(client.post("/api/v1/cases", json=model_case, headers=counter_headers))
    assert errors == {"household.members[0].favourite_colour": "未知の項目です"}
    res = client.post("/api/v1/cases", json=[1, 2], headers=counter_headers)
    assert res.status_code == 422
    res = client.post("/api/v1/cases", content=b"{not json", headers={**counter_headers,
                                                                      "Content-Type": "application/json"})
    assert res.status_code == 422


def test_stale_version_gets_409_and_nothing_is_overwritten(
    client: TestClient, counter_headers: dict[str, str], model_case: dict[str, Any]
) -> None:
    case = client.post("/api/v1/cases", json=model_case, headers=counter_headers).json()
    first = json.loads(json.dumps(model_case))
    first["phone"] = "06-6111-2222"
    res = client.put(f"/api/v1/cases/{case['id']}/answers", json={"version": 1, "answers": first},
                     headers=counter_headers)
    assert res.status_code == 200 and res.json()["version"] == 2
    stale = json.loads(json.dumps(model_case))
    stale["phone"] = "080-9999-0000"
    res = client.put(f"/api/v1/cases/{case['id']}/answers", json={"version": 1, "answers": stale},
                     headers=counter_headers)
    assert res.status_code == 409
    assert res.json()["current_version"] == 2
    assert "他の端末" in res.json()["message"]
    stored = client.get(f"/api/v1/cases/{case['id']}", headers=counter_headers).json()
    assert stored["answers"]["phone"] == "06-6111-2222" and stored["version"] == 2


def test_draft_saves_partial_answers_and_lists_what_is_missing(
    client: TestClient, counter_headers: dict[str, str]
) -> None:
    res = client.post("/api/v1/cases?draft=true", json={"life_events": ["move_in"]}, headers=counter_headers)
    assert res.status_code == 201, res.text
    body = res.json()
    assert body["complete"] is False
    assert {"address", "phone", "move.moved_on"} <= set(body["missing"])
    res = client.post("/api/v1/cases", json={"life_events": ["move_in"]}, headers=counter_headers)
    assert res.status_code == 422
    assert _errors(res)["address"] == "住所を入力してください"


def test_todays_list_shows_cases_in_ticket_order(
    client: TestClient, counter_headers: dict[str, str], model_case: dict[str, Any]
) -> None:
    ids = [client.post("/api/v1/cases", json=model_case, headers=counter_headers).json()["id"] for _ in range(3)]
    listed = client.get("/api/v1/cases", headers=counter_headers).json()["cases"]
    mine = [c for c in listed if c["id"] in ids]
    assert [c["id"] for c in mine] == ids
    assert [c["ticket_number"] for c in mine] == sorted(c["ticket_number"] for c in mine)
    assert "answers" not in mine[0]


def test_authentication_and_roles(client: TestClient, db: Session, model_case: dict[str, Any]) -> None:
    assert client.get("/api/v1/cases").status_code == 401
    assert client.get("/api/v1/cases", headers={"Authorization": "Bearer nope"}).status_code == 401
    make_user(db, "kodomo1", "department", department="kodomo")
    dept = login(client, "kodomo1")
    res = client.get("/api/v1/cases", headers=dept)
    assert res.status_code == 403
    assert res.json()["message"] == "この操作を行う権限がありません"
    make_user(db, "boss", "admin")
    assert client.get("/api/v1/cases", headers=login(client, "boss")).status_code == 200
    res = client.post("/api/v1/auth/token", json={"username": "boss", "password": "wrong password!"})
    assert res.status_code == 401
    assert res.json()["message"] == "ユーザー名またはパスワードが違います"


def test_repeated_login_failures_lock_the_account(client: TestClient, db: Session) -> None:
    make_user(db, "victim", "counter")
    for _ in range(5):
        assert client.post("/api/v1/auth/token", json={"username": "victim", "password": "x" * 12}).status_code == 401
    res = client.post("/api/v1/auth/token", json={"username": "victim", "password": "correct horse battery staple"})
    # Locked answers exactly like a wrong password: the answer must not tell that the account exists.
    assert res.status_code == 401
    assert res.json()["message"] == "ユーザー名またはパスワードが違います"


def test_many_failures_from_one_address_are_refused_for_a_while(client: TestClient, db: Session) -> None:
    # Trying one user name many times from one address is stopped even though no account exists.
    make_user(db, "real-clerk", "counter")
    for _ in range(auth.LOGIN_BURST):
        assert client.post("/api/v1/auth/token", json={"username": "guess", "password": "x" * 12}).status_code == 401
    res = client.post("/api/v1/auth/token", json={"username": "guess", "password": "x" * 12})
    assert res.status_code == 429
    assert "一時的に止めています" in res.json()["message"]
    # Another clerk at the same address is not affected.
    res = client.post("/api/v1/auth/token", json={"username": "real-clerk", "password": "correct horse battery staple"})
    assert res.status_code == 200
    # The block lifts by itself as the failures age.
    for entry in db.scalars(select(AuditEntry)):
        entry.at = entry.at - auth.LOGIN_LEAK * 2
    db.commit()
    res = client.post("/api/v1/auth/token", json={"username": "guess", "password": "x" * 12})
    assert res.status_code == 401


def test_unknown_case_is_404(client: TestClient, counter_headers: dict[str, str]) -> None:
    res = client.get("/api/v1/cases/" + "0" * 32, headers=counter_headers)
    assert res.status_code == 404
    assert res.json()["message"] == "この案件は見つかりません"
