"""The keystroke model of the visit bench: answers of a document and the keys each costs with a Japanese IME."""

from __future__ import annotations

from typing import Any

from app.bench.keystrokes import Answer, KeystrokeModel, answers_of, interview_path, keystrokes
from app.bench.visit import card_facts, fields_typed, without_paths

MODEL = KeystrokeModel(keys_per_kana=2, kana_per_kanji=2, conversion_keys=2, choice=1)


def test_keys_per_kind() -> None:
    assert keystrokes(Answer("household.members.m1.birth_date", "date", "1990-06-15"), MODEL) == 8
    assert keystrokes(Answer("household.members.m1.my_number", "my_number", "123456789018"), MODEL) == 12
    assert keystrokes(Answer("household.members.m1.sex", "choice", "male"), MODEL) == 1
    # A name is typed as its フリガナ (アマガサキ: 5 kana × 2) and converted (2).
    assert keystrokes(Answer("household.members.m1.family_name", "name", "尼崎", "アマガサキ"), MODEL) == 12
    assert keystrokes(Answer("household.members.m1.given_name_kana", "kana", "タロウ"), MODEL) == 8
    # Kanji without a reading: 2 kana each; digits inside the text one key each.
    assert keystrokes(Answer("address.block", "", "二丁目4番5号"), MODEL) == 5 * 2 * 2 + 2 + 2  # 二丁目番号: 5 kanji
    assert keystrokes(Answer("x", "text", "ABC"), MODEL) == 3
    assert keystrokes(Answer("x", "text", "ABC"), KeystrokeModel(conversion_keys=5)) == 3  # no IME, no conversion


def test_answers_follow_the_typed_fields_rule(model_case_raw: dict[str, Any]) -> None:
    kinds = {"household.members[].birth_date": "date", "address.postal_code": "postal_code"}
    found = answers_of(model_case_raw, kinds)
    assert len(found) == fields_typed(model_case_raw) == 68
    assert found["household.members.m3.birth_date"].kind == "date"
    assert found["address.postal_code"].kind == "postal_code" and "address.city" not in found
    assert found["household.members.m2.given_name"].reading == "ハナコ"
    assert interview_path("household.members.m4.childcare.preferred_facilities.2") == \
        "household.members[].childcare.preferred_facilities"


def test_what_the_phone_leaves_out_and_what_the_card_says(model_case_raw: dict[str, Any]) -> None:
    partial = without_paths(model_case_raw, ["household.members.*.my_number", "bank_account.account_number"])
    assert all("my_number" not in m for m in partial["household"]["members"])
    assert "account_number" not in partial["bank_account"] and "survey_baseline" not in partial
    assert all("my_number" in m for m in model_case_raw["household"]["members"])  # the original is untouched
    facts = card_facts(model_case_raw, model_case_raw["household"]["members"][1])
    assert facts == {"name": "尼崎　花子", "address": "大阪府大阪市北区梅田一丁目2番3号　梅田ハイツ301号室",
                     "birth_date": "19921103", "sex": "2", "my_number": "234567890121"}
