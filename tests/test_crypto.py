"""My Numbers and account numbers are encrypted at rest, with key ids and rotation."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, text, type_coerce, update
from sqlalchemy.orm import Session

from app import crypto
from app.crypto import KeyError_, KeyRing
from app.models import Case, JSONType
from app.services import cases
from app.services.definitions import DefinitionRegistry


def _spec(kid: str) -> str:
    return f"{kid}:{base64.b64encode(os.urandom(32)).decode()}"


@pytest.fixture
def restore_keyring() -> Iterator[None]:
    before = crypto.keyring()
    yield
    crypto.configure(before)


def test_round_trip_binds_the_field_and_detects_tampering() -> None:
    spec = _spec("a1")
    ring = KeyRing.parse(spec)
    token = ring.encrypt("123456789018", field="household.members.my_number")
    assert token.startswith("enc:v1:a1:") and "123456789018" not in token
    assert ring.decrypt(token, field="household.members.my_number") == "123456789018"
    with pytest.raises(KeyError_):
        ring.decrypt(token, field=".bank_account.account_number")
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(KeyError_):
        ring.decrypt(tampered, field="household.members.my_number")
    assert ring.encrypt("x", field="f") != ring.encrypt("x", field="f")  # fresh nonce each time


def test_bad_key_specs_are_refused() -> None:
    with pytest.raises(KeyError_):
        KeyRing.parse("")
    with pytest.raises(KeyError_):
        KeyRing.parse("a1:" + base64.b64encode(b"short").decode())
    with pytest.raises(KeyError_):
        KeyRing.parse("a1:not base64!")


def _create(db: Session, registry: DefinitionRegistry, answers: dict[str, Any]) -> Case:
    import datetime as dt

    case = cases.create_case(db, defs=registry.current, answers=answers, user=None, office="crypto",
                             today=dt.date(2026, 4, 6))
    db.flush()
    return case


def _raw(db: Session, case_id: str) -> str:
    return str(db.execute(text("SELECT answers FROM cases WHERE id = :id"), {"id": case_id}).scalar_one())


def test_database_holds_no_plain_my_number_or_account(db: Session, registry: DefinitionRegistry,
                                                       model_case_raw: dict[str, Any]) -> None:
    case = _create(db, registry, model_case_raw)
    raw = _raw(db, case.id)
    for m in model_case_raw["household"]["members"]:
        assert m["my_number"] not in raw
    assert model_case_raw["bank_account"]["account_number"] not in raw
    assert raw.count("enc:v1:") == 5
    db.expire_all()
    loaded = db.scalar(select(Case).where(Case.id == case.id))
    assert loaded is not None
    assert loaded.answers["household"]["members"][0]["my_number"] == "123456789018"
    assert loaded.answers["bank_account"]["account_number"] == "1234567"


def test_reencrypt_moves_stored_values_to_the_new_key(db: Session, registry: DefinitionRegistry,
                                                    model_case_raw: dict[str, Any], restore_keyring: None) -> None:
    """The primitive the rotation job (app/services/key_rotation.py) applies to each stored case."""
    old_spec = _spec("old")
    crypto.configure(KeyRing.parse(old_spec))
    case = _create(db, registry, model_case_raw)
    stored = db.execute(select(type_coerce(Case.answers, JSONType)).where(Case.id == case.id)).scalar_one()
    assert "enc:v1:old:" in json.dumps(stored)
    new_spec = _spec("new")
    ring = KeyRing.parse(f"{new_spec},{old_spec}")
    assert crypto.stale_values(stored, ring) == 5
    rotated, changed = crypto.reencrypt(stored, ring)
    assert changed == 5
    text_ = json.dumps(rotated)
    assert "enc:v1:old:" not in text_ and text_.count("enc:v1:new:") == 5
    assert crypto.stale_values(rotated, KeyRing.parse(new_spec)) == 0  # the old key can now be retired
    db.execute(update(Case).where(Case.id == case.id).values({Case.answers: type_coerce(rotated, JSONType)}))
    crypto.configure(KeyRing.parse(new_spec))
    db.expire_all()
    loaded = db.get(Case, case.id)
    assert loaded is not None and loaded.answers["household"]["members"][3]["my_number"] == "456789012346"


def test_a_case_under_an_unknown_key_answers_503_not_500(client: Any, counter_headers: dict[str, str],
                                                         model_case_raw: dict[str, Any], restore_keyring: None) -> None:
    """An instance not given the key a case was written with says so clearly (and recovers once it has it)."""
    old_spec = _spec("gone")
    crypto.configure(KeyRing.parse(old_spec))
    created = client.post("/api/v1/cases", json=model_case_raw, headers=counter_headers)
    assert created.status_code == 201
    crypto.configure(KeyRing.parse(_spec("other")))
    res = client.get(f"/api/v1/cases/{created.json()['id']}", headers=counter_headers)
    assert res.status_code == 503
    assert res.json()["message"].startswith("暗号鍵の設定がこの案件の保存内容と合わないため")
    crypto.configure(KeyRing.parse(old_spec))
    assert client.get(f"/api/v1/cases/{created.json()['id']}", headers=counter_headers).status_code == 200
