"""Typesetting: clusters, measured widths, line breaking with 禁則 and fitting text into a box."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from app.forms.fonts import FontSet, is_variation_selector
from app.forms.primitives import LEADING

# Characters that must not start a line (kinsoku) and ones that must not end it.
NO_START = frozenset("、。，．,.）)」』】〕〉》］]｝}・：；:;！？!?ー…‥々ゝゞぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ")
NO_END = frozenset("（(「『【〔〈《［[｛{")
OPENING = frozenset("（(「『【〔〈《［｛")
CLOSING = frozenset("）)」』】〕〉》］｝")
# Limits on what moves to the next line: beyond them a line breaks where the width says.
KINSOKU_MAX_CARRY = 4
BRACKET_MAX_CARRY = 10
SPACE_MAX_CARRY = 8
_SPACES = frozenset(" \u3000")


# A value of at most this many characters (続柄 世帯主, 性別, a date) is a token: it shrinks, never wraps.
SHORT_VALUE_CHARS = 12


def is_short(text: str) -> bool:
    """Whether text is a short token that must stay on one line."""
    return len(clusters(text)) <= SHORT_VALUE_CHARS and not any(ch in text for ch in "\n \u3000")


@dataclass(frozen=True)
class Fit:
    lines: tuple[str, ...]
    size: float
    complete: bool  # False: lines hold only what fits and the rest must go to the addendum





def clusters(text: str) -> list[str]:
    """Split text into units that must stay together: base + selectors / combining marks, surrogate pairs."""
    out: list[str] = []
    for ch in text:
        cp = ord(ch)
        if out and ch != "\n" and out[-1] != "\n" and (
            is_variation_selector(ch)
            or unicodedata.category(ch) in ("Mn", "Me")
            or ch == "\u200d"
            or out[-1].endswith("\u200d")
            or (0xDC00 <= cp <= 0xDFFF and 0xD800 <= ord(out[-1][-1]) <= 0xDBFF)
        ):
            out[-1] += ch
        else:
            out.append(ch)
    return out


def block_height(lines: int, size: float) -> float:
    return size * (1 + (lines - 1) * LEADING) if lines else 0.0


class Measure:
    """Measures and wraps text with the FontSet, caching widths per cluster at 1 pt."""

    def __init__(self, fonts: FontSet) -> None:
        self.fonts = fonts
        self._cache: dict[tuple[str, str], float] = {}

    def width(self, text: str, role: str, size: float) -> float:
        return self.fonts.string_width(text, role, size)

    def units(self, text: str, role: str) -> list[tuple[str, float]]:
        out = []
        for cluster in clusters(text):
            key = (cluster, role)
            width = self._cache.get(key)
            if width is None:
                width = self._cache[key] = 0.0 if cluster == "\n" else self.fonts.string_width(cluster, role, 1.0)
            out.append((cluster, width))
        return out

    def wrap(self, text: str, role: str, size: float, max_w: float, first_w: float | None = None) -> list[str]:
        """Break text into lines no wider than max_w (the first line first_w), between any two clusters."""
        lines: list[list[tuple[str, float]]] = []
        cur: list[tuple[str, float]] = []
        cur_w = 0.0
        limit = max_w if first_w is None else first_w
        for cluster, unit in self.units(text, role):
            if cluster == "\n":
                lines.append(cur)
                cur, cur_w, limit = [], 0.0, max_w
                continue
            w = unit * size
            if cur and cur_w + w > limit + 1e-6:
                carry = _carry(cur, cluster, unit, size, max_w)
                lines.append(cur[: len(cur) - carry])
                cur = cur[len(cur) - carry :]
                cur_w = sum(u * size for _, u in cur)
                limit = max_w
                if not cur and cluster in _SPACES:
                    continue  # a space that caused the break would only indent the next line
            elif not cur and first_w is not None and limit < w and not lines:
                # Not even one cluster fits after the addendum heading: start on the next line.
                lines.append([])
                limit = max_w
            cur.append((cluster, unit))
            cur_w += w
        lines.append(cur)
        return ["".join(c for c, _ in line) for line in lines]

    def fit(
        self, text: str, role: str, box_w: float, box_h: float, size: float, floor: float, *, wrap: bool,
        must_fit: bool = True, keep_whole: bool = False,
    ) -> Fit:
        """Fit text into a box at the largest size: one line, or wrapped lines, before shrinking further.

        A one-line cell (wrap=False) still wraps when two lines set larger than the one shrunk line
        (an address at 9 pt on two lines beats 6 pt on one). keep_whole (names) keeps one line as long
        as the shrunk line stays at or above the floor.
        """
        if not text:
            return Fit((), size, True)
        floor = min(floor, size)
        cap = max(floor, min(size, box_h))  # one line needs about 1 em of height
        total = sum(u for _, u in self.units(text, role))
        shrunk = 0.0
        if "\n" not in text and total > 0:
            if total * cap <= box_w + 1e-6:
                return Fit((text,), cap, True)
            # Sizes are truncated to 0.1 pt so that the line is never wider than the box.
            shrunk = int(box_w / total * 10) / 10
            if shrunk >= floor and (keep_whole or not wrap):
                wrapped = None if keep_whole else self._wrapped_fit(text, role, box_w, box_h, cap, max(floor, shrunk))
                if wrapped is None or wrapped.size <= shrunk:
                    return Fit((text,), shrunk, True)
                return wrapped
        s = cap
        while True:
            lines = self.wrap(text, role, s, box_w)
            if block_height(len(lines), s) <= box_h + 0.01:
                return Fit(tuple(lines), s, True)
            if s <= floor:
                break
            s = max(floor, s - 0.5)
        if not must_fit:
            return Fit(tuple(lines), floor, True)
        room = max(1, int((box_h / floor - 1) / LEADING + 1 + 1e-6))
        return Fit(tuple(lines[:room]), floor, False)

    def _wrapped_fit(self, text: str, role: str, box_w: float, box_h: float, cap: float, above: float) -> Fit | None:
        """The largest size above `above` at which the wrapped text fits the box, or None."""
        s = cap
        while s > above + 1e-6:
            lines = self.wrap(text, role, s, box_w)
            if len(lines) > 1 and block_height(len(lines), s) <= box_h + 0.01:
                return Fit(tuple(lines), s, True)
            s = round(s - 0.5, 2)
        return None

    def with_marker(self, lines: Sequence[str], marker: str, role: str, size: float, box_w: float) -> list[str]:
        """Cut the last line so that the overflow marker fits after it."""
        out = list(lines) or [""]
        units = self.units(out[-1], role)
        room = box_w - self.width(marker, role, size)
        while units and sum(u for _, u in units) * size > room:
            units.pop()
        out[-1] = "".join(c for c, _ in units) + marker
        return out


def _is_word(cluster: str) -> bool:
    return cluster.isascii() and cluster.isalnum()


def _carry(line: list[tuple[str, float]], nxt: str, nxt_unit: float, size: float, max_w: float) -> int:
    """How many clusters at the end of a full line to move to the next one (kinsoku, brackets, Latin words)."""
    if len(line) < 2:
        return 0
    carry = _kinsoku_carry(line, nxt)
    if carry:
        return carry
    group = _bracket_carry(line, nxt_unit, size, max_w)
    if group:
        return group
    after_space = _space_carry(line, nxt_unit, size, max_w)
    if after_space:
        return after_space
    if _is_word(nxt):
        # Keep Latin words and numbers (alphabet names, 202号室, 018) whole when they can move as a unit.
        begin = len(line)
        while begin > 0 and _is_word(line[begin - 1][0]):
            begin -= 1
        moved = line[begin:]
        fits = (sum(u for _, u in moved) + nxt_unit) * size < max_w
        if begin > 0 and len(moved) <= 16 and fits:
            return len(moved)
    return 0


def _kinsoku_carry(line: list[tuple[str, float]], nxt: str) -> int:
    """Fewest clusters to move so that no line starts with 」）ー、。… and none ends with 「（…."""
    first, end = nxt, line[-1][0]
    carry = 0
    while first in NO_START or end in NO_END:
        carry += 1
        if carry > KINSOKU_MAX_CARRY or carry >= len(line):
            return 0  # nothing sensible to move: break where the width says
        first, end = line[-carry][0], line[-carry - 1][0]
    return carry


def _space_carry(line: list[tuple[str, float]], nxt_unit: float, size: float, max_w: float) -> int:
    """Break after a nearby ideographic space (between 番地 and 方書) rather than inside a word after it."""
    for back in range(1, min(len(line) - 1, SPACE_MAX_CARRY + 1)):
        if line[-back][0] == "\u3000":
            moved = line[-back + 1:] if back > 1 else []
            if moved and (sum(u for _, u in moved) + nxt_unit) * size < max_w:
                return len(moved)
            return 0
    return 0


def _bracket_carry(line: list[tuple[str, float]], nxt_unit: float, size: float, max_w: float) -> int:
    """Move a short bracketed phrase that would be broken, e.g. 住民異動届（住所変|更）, whole to the next line."""
    for back in range(1, min(len(line), BRACKET_MAX_CARRY + 1)):
        cluster = line[-back][0]
        if cluster in CLOSING:
            return 0  # the last bracket on the line is already closed
        if cluster in OPENING:
            if back == len(line):
                return 0
            moved = line[-back:]
            if (sum(u for _, u in moved) + nxt_unit) * size < max_w:
                return back
            return 0
    return 0
