"""Furigana for やさしい日本語: readings over every kanji word, computed by a morphological analyser.

fugashi (MeCab) with the unidic-lite dictionary splits the text and gives each word's reading; the
kanji part of a word gets a <ruby> with its reading in hiragana, the kana around it (okurigana) stay
outside. The result is HTML with every piece of the input escaped, safe to put in a page as it is.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Any

import jaconv
from markupsafe import Markup, escape

_KANJI = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f々〆ヵヶ]")
_lock = threading.Lock()


@lru_cache(maxsize=1)
def _tagger() -> Any:
    import fugashi  # imported on first use: the analyser loads its dictionary (about 50 MB)

    return fugashi.Tagger()


def _reading(word: Any) -> str | None:
    kana = getattr(word.feature, "kana", None)
    return jaconv.kata2hira(kana) if kana and kana != "*" else None


def _ruby_word(surface: str, reading: str) -> str:
    # Keep kana that the surface and the reading share at both ends outside the ruby (送り仮名).
    hira = jaconv.kata2hira(surface)
    start = 0
    while start < min(len(hira), len(reading)) and hira[start] == reading[start] and not _KANJI.match(surface[start]):
        start += 1
    end = 0
    while (end < min(len(hira), len(reading)) - start and hira[-1 - end] == reading[-1 - end]
           and not _KANJI.match(surface[-1 - end])):
        end += 1
    core = surface[start:len(surface) - end]
    core_reading = reading[start:len(reading) - end]
    if not core or not core_reading:
        return str(escape(surface))
    return (f"{escape(surface[:start])}<ruby>{escape(core)}<rt>{escape(core_reading)}</rt></ruby>"
            f"{escape(surface[len(surface) - end:])}")


@lru_cache(maxsize=4096)
def ruby(text: str) -> Markup:
    """The text as HTML with furigana over its kanji words (plain escaped text when it has no kanji)."""
    if not _KANJI.search(text):
        return escape(text)
    parts: list[str] = []
    with _lock:  # one MeCab tagger per process; it is not safe to share between threads
        words = [(w.surface, _reading(w), w.white_space) for w in _tagger()(text)]
    for surface, reading, space in words:
        parts.append(str(escape(space)))
        if reading and _KANJI.search(surface):
            parts.append(_ruby_word(surface, reading))
        else:
            parts.append(str(escape(surface)))
    return Markup("".join(parts))  # noqa: S704 - every piece above is escaped
