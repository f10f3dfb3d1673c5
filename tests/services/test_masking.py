"""Masking of My Numbers and account numbers, and keeping the stored number when a mask comes back."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from app.services import masking


def test_mask_my_number_keeps_the_last_four() -> None:
    assert masking.mask_my_number("123456789018") == "********9018"
    assert masking.mask_account_number("1234567") == "****567"
    # Never the whole value, however short.
    assert masking.mask_account_number("12") == "*2"
    assert masking.mask_my_number("") == ""


def test_mask_answers_masks_every_member_and_the_account(model_case_raw: dict[str, Any]) -> None:
    before = copy.deepcopy(model_case_raw)
    masked = masking.mask_answers(model_case_raw, reveal=False)
    assert [m["my_number"] for m in masked["household"]["members"]] == [
        "********9018", "********0121", "********1234", "********2346"]
    assert masked["bank_account"]["account_number"] == "****567"
    assert model_case_raw == before  # the input is not modified
    assert masking.mask_answers(model_case_raw, reveal=True) == model_case_raw
    only_numbers = masking.mask_answers(model_case_raw, reveal={"my_number"})
    assert only_numbers["household"]["members"][0]["my_number"] == "123456789018"
    assert only_numbers["bank_account"]["account_number"] == "****567"


def test_merge_masked_puts_the_stored_numbers_back(model_case_raw: dict[str, Any]) -> None:
    stored = model_case_raw
    sent = masking.mask_answers(stored)
    sent["household"]["members"].reverse()  # matched by member id, not position
    merged = masking.merge_masked(sent, stored)
    by_id = {m["id"]: m["my_number"] for m in merged["household"]["members"]}
    assert by_id == {m["id"]: m["my_number"] for m in stored["household"]["members"]}
    assert merged["bank_account"]["account_number"] == "1234567"


def test_merge_masked_never_invents_or_swaps_a_number(model_case_raw: dict[str, Any]) -> None:
    stored = model_case_raw
    sent = masking.mask_answers(stored)
    members = sent["household"]["members"]
    members[0]["my_number"] = "********0121"  # the spouse's mask on the head: not the head's number
    members[1]["id"] = "m9"  # unknown member: nothing to restore
    members[2]["my_number"] = "345678901234"  # a typed number is taken as typed
    sent["bank_account"]["account_number"] = "****999"
    merged = masking.merge_masked(sent, stored)
    got = [m["my_number"] for m in merged["household"]["members"]]
    assert got[:3] == ["********0121", "********0121", "345678901234"]
    assert merged["bank_account"]["account_number"] == "****999"
    assert masking.merge_masked("not a dict", stored) == "not a dict"
    assert masking.merge_masked(sent, {}) == sent


def test_parse_reveal() -> None:
    assert masking.parse_reveal(["my_number"]) == {"my_number"}
    assert masking.parse_reveal(["my_number,account_number"]) == {"my_number", "account_number"}
    assert masking.parse_reveal(["all"]) == {"my_number", "account_number"}
    assert masking.parse_reveal([]) == set()
    with pytest.raises(ValueError):
        masking.parse_reveal(["name"])
