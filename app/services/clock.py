"""The city's local date (ticket days and 'today' are counted in the city's time zone)."""

from __future__ import annotations

import datetime as dt

from app.settings import Settings


def local_today(settings: Settings) -> dt.date:
    """Today's date in the city's time zone (Asia/Tokyo by default)."""
    return dt.datetime.now(settings.tz).date()
