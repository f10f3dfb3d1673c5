"""Bookable slots of a queue and the office's opening hours, from departments.yaml (pure: no database).

A slot exists on open days only (`holidays.is_closed`: weekends, national holidays from jpholiday,
the city's closing days such as 12/29–1/3), inside the queue's `hours`, every `slot_minutes`; a
period that does not end on a slot boundary drops its last partial slot.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from app.forms.holidays import is_closed
from app.forms.schema import AppointmentQueue, Calendar, Hours


@dataclass(frozen=True)
class Slot:
    """One bookable period: local start and end (aware), and its label (09:30)."""

    start: dt.datetime
    end: dt.datetime

    @property
    def label(self) -> str:
        """Local start time as HH:MM."""
        return self.start.strftime("%H:%M")


def _at(day: dt.date, text: str, tz: dt.tzinfo) -> dt.datetime:
    hours, minutes = text.split(":")
    return dt.datetime(day.year, day.month, day.day, int(hours), int(minutes), tzinfo=tz)


def slots_of_day(item: AppointmentQueue, day: dt.date, *, calendar: Calendar, tz: dt.tzinfo) -> list[Slot]:
    """Every slot of the queue on that day, in time order; none on a closed day."""
    if is_closed(day, calendar):
        return []
    step = dt.timedelta(minutes=item.slot_minutes)
    out: list[Slot] = []
    for period in item.hours:
        start, end = _at(day, period.from_, tz), _at(day, period.to, tz)
        while start + step <= end:
            out.append(Slot(start, start + step))
            start += step
    return out


def find_slot(item: AppointmentQueue, start: dt.datetime, *, calendar: Calendar, tz: dt.tzinfo) -> Slot | None:
    """The slot that starts exactly at `start` (any timezone), or None when there is no such slot."""
    try:
        local = start.astimezone(tz)
    except (OverflowError, ValueError):  # year 1 or 9999 moved across midnight: no such slot
        return None
    for slot in slots_of_day(item, local.date(), calendar=calendar, tz=tz):
        if slot.start == local:
            return slot
    return None


def bookable_days(item: AppointmentQueue, today: dt.date, *, calendar: Calendar) -> Iterable[dt.date]:
    """Open days from today up to `book_days_ahead` days ahead."""
    for shift in range(item.book_days_ahead + 1):
        day = today + dt.timedelta(days=shift)
        if not is_closed(day, calendar):
            yield day


def is_open_at(moment: dt.datetime, hours: Iterable[Hours], *, calendar: Calendar, tz: dt.tzinfo) -> bool:
    """Whether the office takes tickets at that moment (an open day, inside one of the opening periods)."""
    local = moment.astimezone(tz)
    if is_closed(local.date(), calendar):
        return False
    return any(_at(local.date(), p.from_, tz) <= local < _at(local.date(), p.to, tz) for p in hours)
