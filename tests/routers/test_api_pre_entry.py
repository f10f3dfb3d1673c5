"""Pre-entry API: a draft written from the phone (no login), handed over once at the counter."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.models import AnswerSource, Case, PreEntryDraft, PreEntryOriginal
from app.services import pre_entry
from tests.conftest import login, make_user, page_login

CODE = re.compile(r"^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{4}-[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{4}$")


def resident_part(model: dict[str, Any]) -> dict[str, Any]:
    """The model household as a resident enters it (no annotations, no survey counts, no visit date)."""
    return {k: v for k, v in model.items() if not k.startswith("$") and k not in ("survey_baseline", "visit_date")}


def new_draft(client: TestClient, lang: str = "ja") -> tuple[str, dict[str, str]]:
    res = client.post("/pre/api/drafts", json={"lang": lang})
    assert res.status_code == 201, res.text
    body = res.json()
    assert CODE.match(body["code"]), body
    assert dt.datetime.fromisoformat(body["expires_at"]) > dt.datetime.now(dt.UTC) + dt.timedelta(days=6)
    return body["code"], {"X-Draft-Token": body["token"]}


def test_create_write_and_hand_over_the_model_household(client: TestClient, db: Session, model_case: dict[str, Any]) -> None:
    code, token = new_draft(client)
    doc = resident_part(model_case)
    # Written in parts, as the phone does: the household first, then the rest.
    res = client.put(f"/pre/api/drafts/{code}/answers", headers=token,
                     json={"answers": {"life_events": doc["life_events"], "household": doc["household"]}})
    assert res.status_code == 200, res.text
    assert res.json()["errors"] == []
    assert "household.members[3].childcare.preferred_facilities" in res.json()["stored"]
    rest = {k: v for k, v in doc.items() if k not in ("life_events", "household")}
    res = client.put(f"/pre/api/drafts/{code}/answers", headers=token, json={"answers": rest})
    assert res.status_code == 200 and res.json()["errors"] == [], res.text
    assert "bank_account.account_number" in res.json()["stored"]

    make_user(db, "clerk", "counter")
    staff = login(client, "clerk")
    res = client.post("/api/v1/cases/from-pre-entry", headers=staff, json={"code": code.replace("-", "").lower()})
    assert res.status_code == 201, res.text
    case_id = res.json()["case_id"]
    assert res.json()["answered"] == 60  # every answer of the household but life_events
    case = db.get(Case, case_id)
    db.refresh(case)
    stored = {k: v for k, v in case.answers.items() if k != "visit_date"}
    assert stored == doc
    marks = db.scalars(select(AnswerSource).where(AnswerSource.case_id == case_id)).all()
    assert {m.source for m in marks} == {"resident"}
    assert "household.members.m4.birth_date" in {m.path for m in marks}
    assert db.get(PreEntryOriginal, case_id) is not None
    # Used once: the code no longer works, and the phone is told it was handed over.
    again = client.post("/api/v1/cases/from-pre-entry", headers=staff, json={"code": code})
    assert again.status_code == 404 and "すでに窓口で使われています" in again.json()["message"]
    state = client.get(f"/pre/api/drafts/{code}", headers=token)
    assert state.json()["state"] == "handed_over"
    row = db.scalar(select(PreEntryDraft).where(PreEntryDraft.handed_over_at.is_not(None)))
    assert row is not None and row.answers is None
    late = client.put(f"/pre/api/drafts/{code}/answers", headers=token, json={"answers": {"phone": "090-0000-0000"}})
    assert late.status_code == 404


def test_hand_over_with_the_staff_page_session_and_csrf(client: TestClient, db: Session) -> None:
    code, token = new_draft(client)
    client.put(f"/pre/api/drafts/{code}/answers", headers=token, json={"answers": {"life_events": ["move_in"]}})
    make_user(db, "clerk", "counter")
    csrf = page_login(client, "clerk")
    refused = client.post("/api/v1/cases/from-pre-entry", json={"code": code})
    assert refused.status_code == 403
    res = client.post("/api/v1/cases/from-pre-entry", json={"code": code}, headers={"X-CSRF-Token": csrf})
    assert res.status_code == 201, res.text


def test_department_staff_and_anonymous_callers_cannot_hand_over(client: TestClient, db: Session) -> None:
    code, _ = new_draft(client)
    assert client.post("/api/v1/cases/from-pre-entry", json={"code": code}).status_code == 401
    make_user(db, "kodomo", "department", "kodomo")
    res = client.post("/api/v1/cases/from-pre-entry", headers=login(client, "kodomo"), json={"code": code})
    assert res.status_code == 403


def test_invalid_fields_are_listed_and_the_valid_part_is_stored(client: TestClient, db: Session) -> None:
    code, token = new_draft(client)
    res = client.put(f"/pre/api/drafts/{code}/answers", headers=token, json={"answers": {
        "life_events": ["move_in"], "phone": "090-1234-5678",
        "household": {"members": [{"id": "m1", "family_name": "港", "given_name": "一", "birth_date": "1990-02-31",
                                   "my_number": "123456789012"}]}}})
    assert res.status_code == 200, res.text
    fields = {e["field"]: e["message"] for e in res.json()["errors"]}
    assert set(fields) == {"household.members[0].birth_date", "household.members[0].my_number"}
    assert all(re.search(r"[ぁ-んァ-ヶ一-龥]", m) for m in fields.values())  # Japanese messages
    assert {"phone", "household.members[0].family_name"} <= set(res.json()["stored"])
    assert "household.members[0].birth_date" not in res.json()["stored"]
    # A later write merges: the member keeps its name, null removes a value.
    res = client.put(f"/pre/api/drafts/{code}/answers", headers=token, json={"answers": {
        "phone": None, "household": {"members": [{"id": "m1", "birth_date": "1990-02-28"}]}}})
    assert res.json()["errors"] == []
    draft = db.scalar(select(PreEntryDraft))
    db.refresh(draft)
    assert "phone" not in draft.answers
    assert draft.answers["household"]["members"][0] == {"id": "m1", "family_name": "港", "given_name": "一",
                                                        "birth_date": "1990-02-28"}


def test_wrong_token_unknown_code_and_bad_bodies(client: TestClient) -> None:
    code, _ = new_draft(client)
    wrong = client.put(f"/pre/api/drafts/{code}/answers", headers={"X-Draft-Token": "nope"}, json={"answers": {}})
    assert wrong.status_code == 403
    assert client.put(f"/pre/api/drafts/{code}/answers", json={"answers": {}}).status_code == 403
    unknown = client.put("/pre/api/drafts/2222-2222/answers", headers={"X-Draft-Token": "x"}, json={"answers": {}})
    assert unknown.status_code == 404 and "見つかりません" in unknown.json()["message"]
    code2, token2 = new_draft(client)
    for body in ({"answers": []}, {"nothing": 1}, [1, 2]):
        res = client.put(f"/pre/api/drafts/{code2}/answers", headers=token2, json=body)
        assert res.status_code == 422, (body, res.text)
    res = client.put(f"/pre/api/drafts/{code2}/answers", headers={**token2, "Content-Type": "application/json"},
                     content=b"{not json")
    assert res.status_code == 422


def test_unknown_code_at_the_counter_is_404_in_japanese(client: TestClient, counter_headers: dict[str, str]) -> None:
    res = client.post("/api/v1/cases/from-pre-entry", headers=counter_headers, json={"code": "ABCD-EFGH"})
    assert res.status_code == 404 and "事前入力コード" in res.json()["message"]
    res = client.post("/api/v1/cases/from-pre-entry", headers=counter_headers, json={"code": "??"})
    assert res.status_code == 422


def test_an_expired_draft_is_gone(client: TestClient, db: Session, counter_headers: dict[str, str]) -> None:
    code, token = new_draft(client)
    client.put(f"/pre/api/drafts/{code}/answers", headers=token, json={"answers": {"phone": "090-1234-5678"}})
    db.execute(text("UPDATE pre_entry_drafts SET expires_at = :past"),
               {"past": dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)})
    db.commit()
    res = client.post("/api/v1/cases/from-pre-entry", headers=counter_headers, json={"code": code})
    assert res.status_code == 404
    assert db.scalar(select(PreEntryDraft)) is None  # deleted on read


def test_the_retention_purge_removes_expired_drafts(db: Session) -> None:
    from app.services import retention

    now = dt.datetime.now(dt.UTC)
    pre_entry.create_draft(db, lang="en", ip="192.0.2.1", secret="s", limits=pre_entry.Limits(),
                           now=now - dt.timedelta(days=8))
    pre_entry.create_draft(db, lang="en", ip="192.0.2.1", secret="s", limits=pre_entry.Limits(), now=now)
    retention.purge(db, older_than_days=90, now=now)
    assert len(db.scalars(select(PreEntryDraft)).all()) == 1


def test_drafts_per_address_per_hour_are_limited(client: TestClient, settings: Any) -> None:
    for _ in range(settings.pre_entry_drafts_per_hour):
        new_draft(client)
    res = client.post("/pre/api/drafts", json={"lang": "ja"})
    assert res.status_code == 429
    assert "1時間" in res.json()["message"]


def test_body_size_members_and_string_length_caps(client: TestClient, settings: Any) -> None:
    code, token = new_draft(client)
    big = {"answers": {"phone": "0" * (settings.pre_entry_max_bytes + 10)}}
    res = client.put(f"/pre/api/drafts/{code}/answers", headers=token, json=big)
    assert res.status_code == 413 and "大きすぎます" in res.json()["message"]
    members = [{"id": f"m{i}", "family_name": "港"} for i in range(1, settings.pre_entry_max_members + 2)]
    res = client.put(f"/pre/api/drafts/{code}/answers", headers=token, json={"answers": {"household": {"members": members}}})
    assert res.status_code == 422 and res.json()["errors"][0]["field"] == "household.members"
    res = client.put(f"/pre/api/drafts/{code}/answers", headers=token,
                     json={"answers": {"household": {"members": [{"id": "m1", "employer": "あ" * 600}]}}})
    assert res.status_code == 200
    assert res.json()["errors"] == [{"field": "household.members[0].employer", "message": "500文字以内で入力してください"}]


def test_the_draft_is_encrypted_at_rest(client: TestClient, db: Session, model_case: dict[str, Any]) -> None:
    code, token = new_draft(client)
    res = client.put(f"/pre/api/drafts/{code}/answers", headers=token, json={"answers": resident_part(model_case)})
    assert res.json()["errors"] == []
    raw = db.execute(text("SELECT * FROM pre_entry_drafts")).one()
    dumped = json.dumps([str(v) for v in raw], ensure_ascii=False)
    for secret in ("尼崎", "アマガサキ", "123456789018", "南塚口町", "090-1234-5678", code.replace("-", "")):
        assert secret not in dumped
    make_user(db, "clerk", "counter")
    res = client.post("/api/v1/cases/from-pre-entry", headers=login(client, "clerk"), json={"code": code})
    original = db.execute(text("SELECT answers FROM pre_entry_originals")).scalar_one()
    assert "尼崎" not in original and original.startswith("enc:v1:")


def test_the_code_is_read_from_what_a_scanner_types() -> None:
    assert pre_entry.normalise_code("KAKANAI-PRE:ABCD-EFGH") == "ABCDEFGH"
    assert pre_entry.normalise_code(" abcd-efgh\n") == "ABCDEFGH"
    assert pre_entry.normalise_code("https://city.example/counter?pre=ABCDEFGH") == "ABCDEFGH"
    assert pre_entry.normalise_code("ABC") == ""
    assert pre_entry.normalise_code(pre_entry.qr_content("K2M3N4P5")) == "K2M3N4P5"


def test_odd_documents_get_field_errors_never_a_500(client: TestClient) -> None:
    code, token = new_draft(client)
    odd: list[Any] = [
        {"household": "x"}, {"household": {"members": "x"}}, {"household": {"members": [1, None, "a", []]}},
        {"household": {"members": [{"id": 5, "birth_date": 19900101}]}}, {"life_events": "move_in"},
        {"address": {"postal_code": ["530"]}}, {"move": None}, {"": 1, "$comment": "x", "survey_baseline": {"a": 1}},
        {"household": {"members": [{"id": "m1", "school": {"grade": {"deep": [1, 2]}}}]}},
        {"phone": "\u202e0901234"}, {"roles": {"x": 1}}, {"visit_date": "1900-01-01"},
    ]
    for answers in odd:
        res = client.put(f"/pre/api/drafts/{code}/answers", headers=token, json={"answers": answers})
        assert res.status_code in (200, 422), (answers, res.status_code, res.text)
    res = client.put(f"/pre/api/drafts/{code}/answers", headers=token, json={"answers": {"phone": "090-1234-5678"}})
    assert res.status_code == 200 and res.json()["stored"] == ["phone"]
    # What a resident may not set never reaches the draft.
    res = client.put(f"/pre/api/drafts/{code}/answers", headers=token,
                     json={"answers": {"roles": {"jumin_tennyu": {"todokede": "m1"}}, "survey_baseline": {"name_written": 1}}})
    assert res.json()["stored"] == []
