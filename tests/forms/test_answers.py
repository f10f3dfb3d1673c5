"""Validation rules of the answers document that need no database."""

from __future__ import annotations

import datetime as dt

import pytest

from app.forms.answers import is_valid_my_number, lookup_postal_code, my_number_check_digit, validate_answers
from app.forms.loader import load_definitions
from app.settings import PROJECT_ROOT

DEFS = load_definitions(PROJECT_ROOT / "form_definitions")
TODAY = dt.date(2026, 11, 21)


@pytest.mark.parametrize("number", ["123456789018", "234567890121", "345678901234", "456789012346"])
def test_model_my_numbers_are_valid(number: str) -> None:
    assert is_valid_my_number(number)


def test_every_wrong_last_digit_is_rejected() -> None:
    base = "12345678901"
    good = my_number_check_digit(base)
    for digit in range(10):
        assert is_valid_my_number(base + str(digit)) is (digit == good)


def test_postal_lookup_strips_japan_post_artefacts() -> None:
    assert lookup_postal_code("661-0012") == {"prefecture": "兵庫県", "city": "尼崎市", "town": "南塚口町"}
    other = lookup_postal_code("100-0000")  # 「以下に掲載がない場合」
    assert other is not None and other["town"] == ""
    assert lookup_postal_code("000-0000") is None


def _phone(value: str) -> tuple[str | None, str | None]:
    result = validate_answers(DEFS, {"life_events": ["childcare"], "phone": value}, today=TODAY, draft=True)
    errors = {e.field: e.message for e in result.errors}
    return result.answers.get("phone"), errors.get("phone")


@pytest.mark.parametrize(("raw", "stored"), [
    ("090-1234-5678", "090-1234-5678"), ("09012345678", "090-1234-5678"), ("０９０ー１２３４ー５６７８", "090-1234-5678"),
    ("06-6123-4567", "06-6123-4567"), ("(06)6123-4567", "06-6123-4567"), ("0120-123-456", "0120-123-456"),
    ("050-1234-5678", "050-1234-5678"),
])
def test_phone_formats(raw: str, stored: str) -> None:
    assert _phone(raw) == (stored, None)


@pytest.mark.parametrize("raw", ["12345", "090-1234-567", "abc", "+81 90 1234 5678", "1901234567890"])
def test_bad_phones(raw: str) -> None:
    value, error = _phone(raw)
    assert value is None and error is not None and "電話番号" in error


def test_draft_reports_missing_required_answers_without_errors() -> None:
    result = validate_answers(DEFS, {"life_events": ["move_in"]}, today=TODAY, draft=True)
    assert result.ok
    assert "move.moved_on" in result.missing and "address" in result.missing


def test_required_when_follows_the_household() -> None:
    answers = {"life_events": ["childcare"], "household": {"members": [{
        "id": "m1", "relationship": "head", "family_name": "Nguyen", "given_name": "An",
        "family_name_kana": "グエン", "given_name_kana": "アン", "birth_date": "1995-01-01", "sex": "male",
        "nationality": "VN", "health_insurance": "national"}]}}
    result = validate_answers(DEFS, answers, today=TODAY, draft=True)
    assert "household.members[0].residence_card.number" in result.missing
    answers["household"]["members"][0]["nationality"] = "XX"
    errors = {e.field: e.message for e in validate_answers(DEFS, answers, today=TODAY, draft=True).errors}
    assert errors["household.members[0].nationality"].startswith("国籍・地域は2文字の国コード")


@pytest.mark.parametrize("value", [{"deep": [1]}, ["move_in"]])
def test_an_object_or_list_for_a_choice_is_a_field_error(value: object) -> None:
    answers = {"life_events": ["move_in"], "household": {"members": [{"id": "m1", "relationship": value}]}}
    result = validate_answers(DEFS, answers, today=TODAY, draft=True)
    assert [e.field for e in result.errors] == ["household.members[0].relationship"]
    assert "次から選んでください" in result.errors[0].message
