"""Deadlines on open days: a deadline on a weekend, national holiday or 12/29–1/3 moves to the next open day."""

from __future__ import annotations

import datetime as dt

from app.forms.holidays import holiday_name, is_closed, next_open_day
from app.forms.schema import Calendar

D = dt.date


def test_year_end_closing_days_move_to_the_first_open_day_of_january() -> None:
    # 2026-12-29 (Tue) .. 2027-01-03 (Sun) closed; 2027-01-04 is a Monday and no holiday.
    for day in (D(2026, 12, 29), D(2026, 12, 31), D(2027, 1, 1), D(2027, 1, 3)):
        assert next_open_day(day) == D(2027, 1, 4), day
    assert next_open_day(D(2026, 12, 28)) == D(2026, 12, 28)


def test_national_holiday_and_substitute_holiday_come_from_jpholiday() -> None:
    assert holiday_name(D(2027, 1, 11)) == "成人の日"
    assert next_open_day(D(2027, 1, 11)) == D(2027, 1, 12)
    # Golden Week 2026: 5/3 (Sun) 憲法記念日, 5/4 みどりの日, 5/5 こどもの日, 5/6 振替休日.
    assert holiday_name(D(2026, 5, 6)) is not None
    assert next_open_day(D(2026, 5, 2)) == D(2026, 5, 7)


def test_weekends_are_closed_and_weekdays_open() -> None:
    assert is_closed(D(2026, 4, 18)) and is_closed(D(2026, 4, 19))
    assert not is_closed(D(2026, 4, 20))
    assert next_open_day(D(2026, 4, 18)) == D(2026, 4, 20)


def test_closing_days_are_configurable() -> None:
    # A city open on Saturdays and closed only 12/31–1/3.
    cal = Calendar(closed_weekdays=["sun"], closed_days=["12-31", "01-01", "01-02", "01-03"])
    assert next_open_day(D(2026, 12, 29), cal) == D(2026, 12, 29)
    assert next_open_day(D(2026, 12, 31), cal) == D(2027, 1, 4)
    assert next_open_day(D(2026, 4, 18), cal) == D(2026, 4, 18)
    assert next_open_day(D(2026, 4, 19), cal) == D(2026, 4, 20)
