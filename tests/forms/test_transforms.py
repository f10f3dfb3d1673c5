"""Transforms turn answers into what forms print."""

from __future__ import annotations

import pytest

from app.forms.transforms import apply_transform

CTX = {"visit_date": "2026-04-06"}
ADDRESS = {"postal_code": "661-0012", "prefecture": "兵庫県", "city": "尼崎市", "town": "南塚口町",
           "block": "二丁目4番5号", "building": "塚口コーポ202号室"}
HEAD = {"family_name": "尼崎", "given_name": "太郎", "family_name_kana": "あまがさき", "given_name_kana": "ﾀﾛｳ",
        "relationship": "head", "sex": "male"}


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("wareki", "2026-04-06", "令和8年4月6日"),
    ("wareki", "2019-05-01", "令和元年5月1日"),
    ("wareki", "1989-01-07", "昭和64年1月7日"),
    ("wareki_short", "1990-06-15", "H2.6.15"),
    ("seireki", "1990-06-15", "1990年6月15日"),
    ("kana", "あまがさき", "アマガサキ"),
    ("kana", "ｱﾏｶﾞｻｷ", "アマガサキ"),
    ("hiragana", "アマガサキ", "あまがさき"),
    ("postal", "6610012", "〒661-0012"),
    ("address", ADDRESS, "兵庫県尼崎市南塚口町二丁目4番5号　塚口コーポ202号室"),
    ("address_with_postal", ADDRESS, "〒661-0012　兵庫県尼崎市南塚口町二丁目4番5号　塚口コーポ202号室"),
    ("age", "2017-09-20", "8歳"),
    ("digits", "1234-5678 9018", "123456789018"),
    ("sex", "female", "女"),
    ("relationship", {"relationship": "spouse", "sex": "female"}, "妻"),
    ("relationship", {"relationship": "spouse", "sex": "male"}, "夫"),
    ("relationship", "child", "子"),
    ("account_type", "ordinary", "普通"),
    ("insurance", "national", "国民健康保険"),
    ("yen", 30000, "30,000円"),
    ("full_name", HEAD, "尼崎　太郎"),
    ("full_name_kana", HEAD, "アマガサキ　タロウ"),
    ("yes_no", True, "有"),
])
def test_transform(name: str, value: object, expected: str) -> None:
    assert apply_transform(name, value, CTX) == expected


@pytest.mark.parametrize("name", ["wareki", "address", "full_name", "postal", "kana"])
def test_missing_values_print_nothing(name: str) -> None:
    assert apply_transform(name, None, CTX) == ""


def test_names_keep_variation_sequences() -> None:
    member = {"family_name": "葛\U000e0102城", "given_name": "\U00020bb7子"}
    assert apply_transform("full_name", member, CTX) == "葛\U000e0102城　\U00020bb7子"
