"""Japanese era (wareki) dates: conversion, formatting and lenient parsing of clerk/citizen input."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

__all__ = [
    "ERAS",
    "DateParseError",
    "Era",
    "Wareki",
    "format_wareki",
    "parse_date",
    "to_wareki",
]


@dataclass(frozen=True)
class Era:
    """One Japanese era with its first day (inclusive)."""

    name: str
    short: str
    start: date


ERAS: tuple[Era, ...] = (
    Era("明治", "M", date(1868, 10, 23)),
    Era("大正", "T", date(1912, 7, 30)),
    Era("昭和", "S", date(1926, 12, 25)),
    Era("平成", "H", date(1989, 1, 8)),
    Era("令和", "R", date(2019, 5, 1)),
)

_STYLES = ("kanji", "short", "era_year")


class DateParseError(ValueError):
    """Raised when text cannot be read as a date; str() is a Japanese message for the user."""


@dataclass(frozen=True)
class Wareki:
    """A date expressed in a Japanese era."""

    era: str  # "令和"
    short: str  # "R"
    year: int
    month: int
    day: int

    def year_text(self) -> str:
        """Return the era year as printed on forms ("元" for the first year)."""
        return "元" if self.year == 1 else str(self.year)


def _era_end(index: int) -> date | None:
    """Return the last day of ERAS[index], or None for the current era."""
    if index + 1 < len(ERAS):
        return ERAS[index + 1].start - timedelta(days=1)
    return None


def _kanji_date(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def to_wareki(d: date) -> Wareki:
    """Convert a Gregorian date to its Japanese era representation."""
    for era in reversed(ERAS):
        if d >= era.start:
            return Wareki(era.name, era.short, d.year - era.start.year + 1, d.month, d.day)
    raise ValueError(f"{_kanji_date(d)}は明治（1868年10月23日〜）より前のため和暦にできません")


def format_wareki(d: date, *, style: str = "kanji") -> str:
    """Format a date in a Japanese era: "令和8年4月6日", "R8.4.6" or "令和8年"."""
    w = to_wareki(d)
    if style == "kanji":
        return f"{w.era}{w.year_text()}年{w.month}月{w.day}日"
    if style == "short":
        # Machine-style short form keeps digits so that it round-trips and sorts within an era.
        return f"{w.short}{w.year}.{w.month}.{w.day}"
    if style == "era_year":
        return f"{w.era}{w.year_text()}年"
    raise ValueError(f"不明な書式です: {style}（kanji / short / era_year のいずれか）")


_EXAMPLES = "（例: 2026-04-06、R8.4.6、令和8年4月6日）"

# Longest tokens first so that "令和" is not read as "令" followed by garbage.
_ERA_TOKENS: dict[str, Era] = {}
for _era in ERAS:
    _ERA_TOKENS[_era.name] = _era
for _era in ERAS:
    _ERA_TOKENS[_era.name[0]] = _era
    _ERA_TOKENS[_era.short] = _era
del _era

_ERA_ALTERNATION = "|".join(re.escape(token) for token in _ERA_TOKENS)

_GREGORIAN_RES = (
    re.compile(r"(?P<y>\d{4})(?P<sep>[-/.])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})"),
    re.compile(r"(?P<y>\d{4})年(?P<m>\d{1,2})月(?P<d>\d{1,2})日"),
    re.compile(r"(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})"),
)
_WAREKI_RE = re.compile(
    rf"({_ERA_ALTERNATION})(\d{{1,3}}|元)"
    r"(?:([-/.])(\d{1,2})\3(\d{1,2})|年(\d{1,2})月(\d{1,2})日)"
)

# NFKC leaves these dash look-alikes alone, but IMEs produce them when people type "R8-4-6".
_DASHES = str.maketrans({c: "-" for c in "‐‑‒–—―−ー"})


def _normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_DASHES)
    return re.sub(r"\s+", "", text).upper()


def _calendar_date(year: int, month: int, day: int, label: str) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise DateParseError(f"{label}は存在しない日付です") from None


def _parse_wareki(match: re.Match[str]) -> date:
    era = _ERA_TOKENS[match.group(1)]
    year = 1 if match.group(2) == "元" else int(match.group(2))
    month = int(match.group(4) or match.group(6))
    day = int(match.group(5) or match.group(7))
    label = f"{era.name}{'元' if year == 1 else year}年{month}月{day}日"
    if year < 1:
        raise DateParseError(f"{label}は存在しない日付です（{era.name}は元年から始まります）")
    result = _calendar_date(era.start.year + year - 1, month, day, label)
    index = ERAS.index(era)
    end = _era_end(index)
    if result < era.start or (end is not None and result > end):
        period = f"{_kanji_date(era.start)}〜{_kanji_date(end) if end else ''}"
        raise DateParseError(f"{label}は{era.name}の期間外です（{era.name}は{period}）")
    return result


def parse_date(text: str) -> date:
    """Parse a Gregorian or Japanese-era date typed by a person; raise DateParseError if unreadable."""
    normalized = _normalize(text)
    if match := _WAREKI_RE.fullmatch(normalized):
        return _parse_wareki(match)
    for pattern in _GREGORIAN_RES:
        if match := pattern.fullmatch(normalized):
            year, month, day = int(match["y"]), int(match["m"]), int(match["d"])
            return _calendar_date(year, month, day, f"{year}年{month}月{day}日")
    shown = text.strip()
    if not shown:
        raise DateParseError(f"日付が入力されていません{_EXAMPLES}")
    raise DateParseError(f"「{shown}」は日付として読み取れません{_EXAMPLES}")
