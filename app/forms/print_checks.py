"""What the clerk must know before printing: characters of the answers that no installed font can draw.

A variation sequence (葛 + U+E0105 …) that neither IPAmj明朝 nor IPAex knows prints as its base character;
on a 戸籍 or 住民票 that is a different character, so the clerk is told before anything is printed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from app.forms.fonts import FontSet, is_variation_selector

# Answers keys whose text never reaches a form (comments, the survey baseline).
_SKIPPED_KEYS = frozenset({"survey_baseline"})


@dataclass(frozen=True)
class PrintWarning:
    """One problem the clerk confirms before printing: where (answers path), the text, and what happens."""

    path: str
    text: str
    message: str


def _strings(doc: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(doc, str):
        yield path, doc
    elif isinstance(doc, Mapping):
        for key, value in doc.items():
            if isinstance(key, str) and not key.startswith("$") and key not in _SKIPPED_KEYS:
                yield from _strings(value, f"{path}.{key}" if path else key)
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from _strings(value, f"{path}[{index}]")


def print_warnings(answers: Mapping[str, Any], fonts: FontSet) -> list[PrintWarning]:
    """Every answer holding a variation sequence no font draws, with a Japanese message for the clerk."""
    out: list[PrintWarning] = []
    for path, text in _strings(answers):
        if not any(is_variation_selector(ch) for ch in text):
            continue
        if fonts.fallback:
            out.append(PrintWarning(path, text, "異体字を描けるフォント（IPAmj明朝）が入っていないため、"
                                                 "異体字は基本の字で印刷されます。"))
            continue
        for cluster in fonts.undrawable_sequences(text):
            codes = " ".join(f"U+{ord(ch):04X}" for ch in cluster)
            out.append(PrintWarning(path, text, f"「{cluster[0]}」の異体字（{codes}）はどのフォントにもないため、"
                                                 f"基本の字「{cluster[0]}」で印刷されます。原本と照合してください。"))
    return out
