"""What a clerk types for an answers document: its answers one by one, and the keystrokes each costs with a
Japanese input method. Pure (no service): the visit benchmark uses it to count the counter's typing.

An answer is a leaf of the answers document, named by a path with member ids
(`household.members.m1.family_name`). Not typed: the visit date, ids, comments, the survey block, and
the prefecture / city / town the postal code fills in. The keystroke model (bench/assumptions.yaml,
`keystrokes`) is per kind of answer:

- choices, yes/no, countries: `choice` keys (a tap or a key on the interview's list);
- digits (dates, postal codes, phone numbers, My Numbers, account numbers): one key per digit; the
  screen adds the separators;
- Japanese text through the IME: each kana typed in romaji costs `keys_per_kana`; a kanji is typed as
  its reading: the answers' own kana where they hold it (a name's フリガナ), otherwise
  `kana_per_kanji` kana per kanji; then `conversion_keys` per answer (convert, confirm); digits and
  Latin letters inside the text are one key each.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

NOT_TYPED = frozenset({"survey_baseline", "$comment", "visit_date", "id"})
FROM_POSTAL_CODE = frozenset({"prefecture", "city", "town"})
CHOICE_KINDS = frozenset({"choice", "bool", "multi_choice", "country", "id"})
DIGIT_KINDS = frozenset({"date", "my_number", "phone", "digits", "number", "postal_code", "year_month", "money"})
_MEMBER = re.compile(r"^household\.members\.([^.]+)\.")
# Whose reading is in the answers: name part → its kana answer.
READINGS = {"family_name": "family_name_kana", "given_name": "given_name_kana"}


@dataclass(frozen=True)
class KeystrokeModel:
    """Keys per kind of input (see the module docstring)."""

    keys_per_kana: float = 2.0
    kana_per_kanji: float = 2.0
    conversion_keys: int = 2
    choice: int = 1


@dataclass(frozen=True)
class Answer:
    """One typed answer: where it goes, its interview kind, its value and (for names) its reading."""

    path: str
    kind: str
    value: str
    reading: str = ""


def interview_path(path: str) -> str:
    """household.members.m1.school.grade → household.members[].school.grade (list indexes dropped)."""
    path = _MEMBER.sub("household.members[].", path)
    return ".".join(p for p in path.split(".") if not p.isdigit())


def answers_of(doc: Any, kinds: dict[str, str]) -> dict[str, Answer]:
    """Every answer the clerk would type for this document, by path (each fact once)."""
    return {a.path: a for a in _walk(doc, "", None, kinds, None)}


def _walk(node: Any, path: str, parent: dict[str, Any] | None, kinds: dict[str, str],
          member: dict[str, Any] | None) -> Iterator[Answer]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in NOT_TYPED or (key in FROM_POSTAL_CODE and "postal_code" in node):
                continue
            yield from _walk(value, f"{path}.{key}" if path else key, node, kinds, member)
        return
    if isinstance(node, list):
        for i, item in enumerate(node):
            if path == "household.members" and isinstance(item, dict):
                yield from _walk(item, f"{path}.{item.get('id', i)}", node if isinstance(node, dict) else None, kinds,
                                 item)
            else:
                yield from _walk(item, f"{path}.{i}", parent, kinds, member)
        return
    if node is None or node == "":
        return
    key = path.rsplit(".", 1)[-1]
    reading = ""
    if member is not None and key in READINGS:
        reading = str(member.get(READINGS[key]) or "")
    kind = kinds.get(interview_path(path), "") or ("postal_code" if key == "postal_code" else "")
    value = "true" if node is True else "false" if node is False else str(node)
    yield Answer(path, kind, value, reading)


def _is_kana(ch: str) -> bool:
    return "\u3040" <= ch <= "\u30ff" or ch == "ー"


def _is_kanji(ch: str) -> bool:
    return unicodedata.category(ch) == "Lo" and not _is_kana(ch)


def keystrokes(answer: Answer, model: KeystrokeModel) -> int:
    """Keys the clerk presses to enter this answer."""
    if answer.kind in CHOICE_KINDS:
        return model.choice
    text = unicodedata.normalize("NFKC", answer.value)
    if answer.kind in DIGIT_KINDS:
        return sum(ch.isdigit() for ch in text)
    if answer.reading:
        kana = sum(1 for ch in answer.reading if _is_kana(ch))
        return round(kana * model.keys_per_kana) + model.conversion_keys
    kana = 0.0
    plain = 0
    for ch in text:
        if _is_kana(ch):
            kana += 1
        elif _is_kanji(ch):
            kana += model.kana_per_kanji
        elif ch.isspace():
            continue
        else:
            plain += 1  # digits, Latin letters, punctuation: one key each
    if kana == 0:
        return plain
    return round(kana * model.keys_per_kana) + plain + model.conversion_keys


def total_keystrokes(answers: dict[str, Answer], model: KeystrokeModel) -> int:
    """Keys for all these answers."""
    return sum(keystrokes(a, model) for a in answers.values())
