"""The card-reading API and the tablet's pairing endpoints (no card here: the bridge tests use the real stack)."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import AnswerSource, AuditEntry, CardPairing, Case
from app.services import card_pairing
from tests.conftest import make_user, page_login

READING = {"name": "番号　花子", "address": "大阪府大阪市北区梅田一丁目2番3号　梅田ハイツ301号室",
           "birth_date": "19921103", "sex": "2", "my_number": "234567890121"}


@pytest.fixture
def csrf(client: TestClient, db: Session) -> str:
    make_user(db, "clerk", "counter")
    return page_login(client, "clerk")


def _visit(client: TestClient, csrf: str, life_events: list[str]) -> str:
    res = client.post("/counter/visits", data={"life_events": life_events, "csrf_token": csrf},
                      headers={"Accept": "text/html"}, follow_redirects=False)
    assert res.status_code == 303, res.text
    return re.search(r"/counter/visits/([0-9a-f]+)", res.headers["location"]).group(1)


def _pair(client: TestClient, csrf: str, case_id: str, member_id: str | None = None) -> dict[str, Any]:
    res = client.post(f"/counter/visits/{case_id}/card-pairing", json={"member_id": member_id},
                      headers={"X-CSRF-Token": csrf})
    assert res.status_code == 200, res.text
    return res.json()


def test_pairing_code_is_shown_once_then_a_reading_fills_the_visit(client: TestClient, csrf: str, db: Session) -> None:
    case_id = _visit(client, csrf, ["move_in"])
    pairing = _pair(client, csrf, case_id)
    assert re.fullmatch(r"[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}", pairing["code"])
    assert pairing["expires_in"] == 300
    stored = db.scalar(select(CardPairing).where(CardPairing.case_id == case_id))
    assert pairing["code"].replace("-", "") not in stored.code_hash  # only the hash is kept
    status = client.get(f"/counter/visits/{case_id}/card-pairing/{pairing['pairing_id']}").json()
    assert status["status"] == "waiting"

    check = client.post("/api/v1/card-readings/check", json={"pairing_code": pairing["code"].lower()})
    assert check.status_code == 200 and check.json()["address_to"] == "前の住所（転入）"
    res = client.post("/api/v1/card-readings", json={"pairing_code": pairing["code"], **READING})
    assert res.status_code == 201, res.text
    assert res.json() == {"member_id": "m1", "warnings": [],
                          "fields": ["family_name", "given_name", "birth_date", "my_number", "sex",
                                     "move.previous_address"]}
    status = client.get(f"/counter/visits/{case_id}/card-pairing/{pairing['pairing_id']}").json()
    assert status["status"] == "used" and status["member_id"] == "m1"

    # The interview page marks what came from the card until the clerk confirms it.
    page = client.get(f"/counter/visits/{case_id}", headers={"Accept": "text/html"})
    marks = json.loads(re.search(r'id="card-marks">(.*?)</script>', page.text).group(1))
    assert marks["household.members[0].my_number"] == "カード" and marks["move.previous_address"] == "カード"
    assert len(marks) == 6
    assert client.post(f"/counter/visits/{case_id}/sources/confirm", headers={"X-CSRF-Token": csrf}).json() == {
        "confirmed": 6}
    db.expire_all()
    assert all(r.confirmed_at for r in db.scalars(select(AnswerSource).where(AnswerSource.case_id == case_id)))
    # The API shows the number masked, like every My Number.
    case = db.get(Case, case_id)
    assert case.answers["household"]["members"][0]["my_number"] == "234567890121"
    assert case.answers["move"]["previous_address"]["postal_code"] == "530-0001"


def test_a_spent_or_unknown_code_is_refused_and_counted(client: TestClient, csrf: str, db: Session) -> None:
    case_id = _visit(client, csrf, ["move_in"])
    code = _pair(client, csrf, case_id)["code"]
    assert client.post("/api/v1/card-readings", json={"pairing_code": code, **READING}).status_code == 201
    again = client.post("/api/v1/card-readings", json={"pairing_code": code, **READING})
    assert again.status_code == 404
    assert "ペアリングコード" in again.json()["message"]
    failures = db.scalars(select(AuditEntry).where(AuditEntry.action == "card_pairing_failed")).all()
    assert len(failures) == 1 and failures[0].case_id == case_id


def test_too_many_wrong_codes_from_one_address_are_stopped(client: TestClient, csrf: str) -> None:
    for _ in range(card_pairing.MAX_FAILURES):
        assert client.post("/api/v1/card-readings/check", json={"pairing_code": "AAAA-AAAA"}).status_code == 404
    res = client.post("/api/v1/card-readings/check", json={"pairing_code": "AAAA-AAAA"})
    assert res.status_code == 429
    assert "一時的に止めています" in res.json()["message"]


def test_an_expired_code_is_refused(client: TestClient, csrf: str, db: Session) -> None:
    case_id = _visit(client, csrf, ["move_in"])
    pairing = _pair(client, csrf, case_id)
    row = db.get(CardPairing, pairing["pairing_id"])
    row.expires_at = row.created_at - dt.timedelta(seconds=1)
    db.commit()
    assert client.post("/api/v1/card-readings", json={"pairing_code": pairing["code"], **READING}).status_code == 404
    assert client.get(f"/counter/visits/{case_id}/card-pairing/{pairing['pairing_id']}").json()["status"] == "expired"


def test_bad_readings_get_field_errors_and_store_nothing(client: TestClient, csrf: str, db: Session) -> None:
    case_id = _visit(client, csrf, ["move_in"])
    code = _pair(client, csrf, case_id)["code"]
    wrong_digit = client.post("/api/v1/card-readings", json={"pairing_code": code, **READING, "my_number": "234567890122"})
    assert wrong_digit.status_code == 422
    assert wrong_digit.json()["errors"] == [{"field": "my_number", "message": "個人番号の検査用数字が一致しません"}]
    bad_date = client.post("/api/v1/card-readings", json={"pairing_code": code, **READING, "birth_date": "19921341"})
    assert bad_date.status_code == 422 and bad_date.json()["errors"][0]["field"] == "birth_date"
    short = client.post("/api/v1/card-readings", json={"pairing_code": code, **READING, "my_number": "123"})
    assert short.status_code == 422
    db.expire_all()
    assert not (db.get(Case, case_id).answers.get("household") or {}).get("members")
    assert db.scalar(select(CardPairing.used_at).where(CardPairing.case_id == case_id)) is None
    # The code was not spent by the refused readings.
    assert client.post("/api/v1/card-readings", json={"pairing_code": code, **READING}).status_code == 201


def test_an_address_that_cannot_be_placed_is_left_to_the_clerk(client: TestClient, csrf: str, db: Session) -> None:
    case_id = _visit(client, csrf, ["childcare"])
    code = _pair(client, csrf, case_id)["code"]
    res = client.post("/api/v1/card-readings", json={"pairing_code": code, **READING, "address": "どこか遠い町1-2"})
    assert res.status_code == 201
    assert res.json()["warnings"] == ["カードの住所を郵便番号に結びつけられませんでした。住所は手で入力してください"]
    assert "address" not in db.get(Case, case_id).answers


def test_pairing_for_an_unknown_member_or_without_csrf_is_refused(client: TestClient, csrf: str) -> None:
    case_id = _visit(client, csrf, ["move_in"])
    res = client.post(f"/counter/visits/{case_id}/card-pairing", json={"member_id": "m9"}, headers={"X-CSRF-Token": csrf})
    assert res.status_code == 422
    assert client.post(f"/counter/visits/{case_id}/card-pairing", json={}).status_code == 403
