"""Open days of the city hall: a deadline on a closed day moves to the next open day.

地方自治法 第4条の2 lets a city close on Saturdays, Sundays, national holidays and 12/29–1/3, and a
deadline that falls on a closed day moves to the following open day (同条第4項). National holidays come
from the `jpholiday` package (振替休日 and 国民の休日 included), never from a hand-written table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import jpholiday

from app.forms.schema import Calendar

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_SHIFT_DAYS = 31


def is_closed(day: dt.date, calendar: Calendar | None = None) -> bool:
    """Whether the office is closed on a day (weekend, national holiday or a closing day of the city)."""
    cal = calendar or Calendar()
    if WEEKDAYS[day.weekday()] in cal.closed_weekdays:
        return True
    if f"{day.month:02d}-{day.day:02d}" in cal.closed_days:
        return True
    return cal.national_holidays_closed and jpholiday.is_holiday(day)


def next_open_day(day: dt.date, calendar: Calendar | None = None) -> dt.date:
    """The day itself when the office is open, otherwise the first open day after it."""
    for shift in range(MAX_SHIFT_DAYS + 1):
        candidate = day + dt.timedelta(days=shift)
        if not is_closed(candidate, calendar):
            return candidate
    return day  # a calendar that closes every day: keep the legal date rather than loop


def closed_days_between(start: dt.date, end: dt.date, calendar: Calendar | None = None) -> Iterable[dt.date]:
    """Every closed day from start to end inclusive (for showing why a deadline moved)."""
    day = start
    while day <= end:
        if is_closed(day, calendar):
            yield day
        day += dt.timedelta(days=1)


def holiday_name(day: dt.date) -> str | None:
    """The national holiday's Japanese name, if the day is one."""
    return jpholiday.is_holiday_name(day)
