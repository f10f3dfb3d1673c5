"""Tests for app.forms.wareki: era conversion, formatting and lenient parsing."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.forms.wareki import (
    ERAS,
    DateParseError,
    Wareki,
    format_wareki,
    parse_date,
    to_wareki,
)

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


# ---------------------------------------------------------------- to_wareki / format_wareki


@pytest.mark.parametrize(
    ("d", "expected"),
    [
        (date(1868, 10, 23), "明治元年10月23日"),
        (date(1912, 7, 29), "明治45年7月29日"),
        (date(1912, 7, 30), "大正元年7月30日"),
        (date(1926, 12, 24), "大正15年12月24日"),
        (date(1926, 12, 25), "昭和元年12月25日"),
        (date(1989, 1, 7), "昭和64年1月7日"),
        (date(1989, 1, 8), "平成元年1月8日"),
        (date(2019, 4, 30), "平成31年4月30日"),
        (date(2019, 5, 1), "令和元年5月1日"),
        # The fictional model household: head's birthday and the visit date.
        (date(1990, 6, 15), "平成2年6月15日"),
        (date(2026, 4, 6), "令和8年4月6日"),
    ],
)
def test_format_kanji_at_era_boundaries(d: date, expected: str) -> None:
    assert format_wareki(d) == expected
    assert format_wareki(d, style="kanji") == expected


def test_to_wareki_fields() -> None:
    w = to_wareki(date(2026, 4, 6))
    assert w == Wareki(era="令和", short="R", year=8, month=4, day=6)
    assert w.year_text() == "8"
    assert to_wareki(date(2019, 5, 1)).year_text() == "元"


def test_wareki_is_frozen() -> None:
    w = to_wareki(date(2026, 4, 6))
    with pytest.raises(AttributeError):
        w.year = 9  # type: ignore[misc]


@pytest.mark.parametrize(
    ("d", "expected"),
    [
        (date(2026, 4, 6), "R8.4.6"),
        (date(2019, 5, 1), "R1.5.1"),
        (date(2019, 4, 30), "H31.4.30"),
        (date(1989, 1, 7), "S64.1.7"),
        (date(1926, 12, 24), "T15.12.24"),
        (date(1900, 1, 1), "M33.1.1"),
    ],
)
def test_format_short(d: date, expected: str) -> None:
    assert format_wareki(d, style="short") == expected


def test_format_era_year() -> None:
    assert format_wareki(date(2026, 4, 6), style="era_year") == "令和8年"
    assert format_wareki(date(2019, 5, 1), style="era_year") == "令和元年"
    assert format_wareki(date(1989, 1, 7), style="era_year") == "昭和64年"


def test_format_unknown_style() -> None:
    with pytest.raises(ValueError, match="書式"):
        format_wareki(date(2026, 4, 6), style="western")


def test_before_meiji_raises() -> None:
    with pytest.raises(ValueError) as info:
        to_wareki(date(1868, 10, 22))
    assert JAPANESE.search(str(info.value))
    with pytest.raises(ValueError):
        format_wareki(date(1, 1, 1))


# ---------------------------------------------------------------- parse_date: accepted forms

ACCEPTED_2026_04_06 = [
    "2026-04-06",
    "2026/4/6",
    "2026.4.6",
    "20260406",
    "2026年4月6日",
    "R8.4.6",
    "r8.4.6",
    "R08.04.06",
    "R8/4/6",
    "R8-4-6",
    "令和8年4月6日",
    "令8.4.6",
    "令8年4月6日",
    "R8年4月6日",
    "令和8.4.6",
    "  R8.4.6 \n",
    "\u3000令和８年４月６日\u3000",  # full-width digits and ideographic spaces
    "２０２６－０４－０６",
    "Ｒ８．４．６",
    "ｒ８／４／６",
    "令和 8年 4月 6日",
    "R8−4−6",  # U+2212 MINUS SIGN, which NFKC leaves alone
    "\u32ff8年4月6日",  # the single-character 令和 ligature
]


@pytest.mark.parametrize("text", ACCEPTED_2026_04_06)
def test_parse_accepts_2026_04_06(text: str) -> None:
    assert parse_date(text) == date(2026, 4, 6)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("令和元年5月1日", date(2019, 5, 1)),
        ("R1.5.1", date(2019, 5, 1)),
        ("令元.5.1", date(2019, 5, 1)),
        ("H31.4.30", date(2019, 4, 30)),
        ("平成31年4月30日", date(2019, 4, 30)),
        ("平31.4.30", date(2019, 4, 30)),
        ("h2.6.15", date(1990, 6, 15)),
        ("平成2年6月15日", date(1990, 6, 15)),
        ("H1.1.8", date(1989, 1, 8)),
        ("平成元年1月8日", date(1989, 1, 8)),
        ("S64.1.7", date(1989, 1, 7)),
        ("昭和64年1月7日", date(1989, 1, 7)),
        ("昭64/1/7", date(1989, 1, 7)),
        ("s1.12.25", date(1926, 12, 25)),
        ("昭和元年12月25日", date(1926, 12, 25)),
        ("T15.12.24", date(1926, 12, 24)),
        ("大正15年12月24日", date(1926, 12, 24)),
        ("大15.12.24", date(1926, 12, 24)),
        ("T1.7.30", date(1912, 7, 30)),
        ("大正元年7月30日", date(1912, 7, 30)),
        ("M45.7.29", date(1912, 7, 29)),
        ("明治45年7月29日", date(1912, 7, 29)),
        ("明45.7.29", date(1912, 7, 29)),
        ("m1.10.23", date(1868, 10, 23)),
        ("明治元年10月23日", date(1868, 10, 23)),
        ("2024-02-29", date(2024, 2, 29)),
        ("R182.12.31", date(2200, 12, 31)),
        ("\u337b2年6月15日", date(1990, 6, 15)),  # the single-character 平成 ligature
    ],
)
def test_parse_wareki_forms(text: str, expected: date) -> None:
    assert parse_date(text) == expected


# ---------------------------------------------------------------- parse_date: rejected input


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("H31.5.1", "平成の期間外"),
        ("平成31年5月1日", "平成の期間外"),
        ("R1.4.30", "令和の期間外"),
        ("H1.1.7", "平成の期間外"),
        ("S64.1.8", "昭和の期間外"),
        ("T15.12.25", "大正の期間外"),
        ("M45.7.30", "明治の期間外"),
        ("M1.10.22", "明治の期間外"),
        ("R0.5.1", "存在しない"),
        ("2026-02-30", "存在しない"),
        ("2025-02-29", "存在しない"),
        ("20261301", "存在しない"),
        ("R8.2.30", "存在しない"),
        ("令和8年13月1日", "存在しない"),
        ("", "入力されていません"),
        ("   ", "入力されていません"),
        ("abc", "読み取れません"),
        ("2026-4/6", "読み取れません"),
        ("2026-04", "読み取れません"),
        ("26-04-06", "読み取れません"),
        ("X8.4.6", "読み取れません"),
        ("R8.4", "読み取れません"),
        ("令和八年四月六日", "読み取れません"),
        ("2026-04-06T10:00", "読み取れません"),
        ("R8.4.6.1", "読み取れません"),
    ],
)
def test_parse_rejects(text: str, fragment: str) -> None:
    with pytest.raises(DateParseError) as info:
        parse_date(text)
    message = str(info.value)
    assert fragment in message
    assert JAPANESE.search(message)


def test_parse_error_is_value_error() -> None:
    with pytest.raises(ValueError):
        parse_date("not a date")


def test_unreadable_message_shows_examples() -> None:
    with pytest.raises(DateParseError, match="例: 2026-04-06"):
        parse_date("そのうち")


def test_out_of_era_message_names_the_period() -> None:
    with pytest.raises(DateParseError) as info:
        parse_date("H31.5.1")
    assert "平成31年5月1日" in str(info.value)
    assert "2019年4月30日" in str(info.value)


# ---------------------------------------------------------------- properties

DATES = st.dates(min_value=date(1868, 10, 23), max_value=date(2200, 12, 31))


@given(DATES)
def test_round_trip_kanji(d: date) -> None:
    assert parse_date(format_wareki(d)) == d


@given(DATES)
def test_round_trip_short(d: date) -> None:
    assert parse_date(format_wareki(d, style="short")) == d


@given(DATES)
def test_round_trip_iso(d: date) -> None:
    assert parse_date(d.isoformat()) == d


@given(DATES)
def test_to_wareki_picks_latest_started_era(d: date) -> None:
    w = to_wareki(d)
    assert w.year >= 1
    expected = max((era for era in ERAS if era.start <= d), key=lambda era: era.start)
    assert (w.era, w.short) == (expected.name, expected.short)
    assert (w.month, w.day) == (d.month, d.day)
    assert expected.start.year + w.year - 1 == d.year


@given(DATES)
def test_day_before_era_start_belongs_to_previous_era(d: date) -> None:
    w = to_wareki(d)
    start = next(era.start for era in ERAS if era.name == w.era)
    if start > ERAS[0].start:
        assert to_wareki(start - timedelta(days=1)).era != w.era


@given(st.text())
def test_parse_arbitrary_text_raises_only_date_parse_error(text: str) -> None:
    try:
        result = parse_date(text)
    except DateParseError as error:
        assert JAPANESE.search(str(error))
    else:
        assert isinstance(result, date)
