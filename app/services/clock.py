"""The service's clock: 'now' in UTC and the city's local date.

Every timestamp the service stores comes from `utcnow()` here (app.models.utcnow delegates to it).
The one override, `simulated()`, exists for the visit benchmark (`kakanai bench visit`), which replays
households in-process on a simulated clock so that the stored events carry simulated times. It is a
process-wide switch set only by code running inside the same process; no HTTP request can set it, and
the service never accepts client-supplied times.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from app.settings import Settings

_override: Callable[[], dt.datetime] | None = None


def utcnow() -> dt.datetime:
    """The current time in UTC (the simulated time while a benchmark holds `simulated()`)."""
    if _override is not None:
        return _override().astimezone(dt.UTC)
    return dt.datetime.now(dt.UTC)


@contextmanager
def simulated(now: Callable[[], dt.datetime]) -> Iterator[None]:
    """Make `utcnow()` return `now()` (an aware datetime) until the block ends; benchmarks only."""
    global _override
    previous, _override = _override, now
    try:
        yield
    finally:
        _override = previous


def local_today(settings: Settings) -> dt.date:
    """Today's date in the city's time zone (Asia/Tokyo by default)."""
    return utcnow().astimezone(settings.tz).date()
