"""The phone's interview: interview.yaml asked one question per screen, only what applies, in plain words.

The questions and their `ask_when` are the counter's own (counter.build_screen): this module only
orders them into steps, skips what the counter settles (visit date, who came, the member number),
turns a posted screen into a partial answers document and names its errors in the page language.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from app.forms.loader import ADDRESS_PARTS, DefinitionSet
from app.forms.schema import InterviewField
from app.forms.translations import COUNTER_FIELDS, COUNTER_SECTIONS, FALLBACK_MARK, catalogs_for, is_japanese
from app.i18n import N_
from app.services import counter

# Sections and fields the clerk settles at the counter, not the resident at home: COUNTER_SECTIONS and
# COUNTER_FIELDS live in app/forms/translations.py, which counts the texts the phone shows.
MORE_MEMBERS = "members.more"
MEMBERS_PATH = "household.members"
_MEMBER = re.compile(r"^household\.members\[(\d+)\]\.(.+)$")
# What a wrong answer is told in the page language (the validator's exact words are Japanese).
KIND_ERRORS = {
    "date": N_("日付を正しく入力してください（例: 1990-06-15）"),
    "kana": N_("カタカナで入力してください"),
    "my_number": N_("マイナンバー（12けた）をもう一度確かめてください"),
    "phone": N_("電話番号を数字で入力してください（例: 090-1234-5678）"),
    "postal_code": N_("郵便番号を7けたの数字で入力してください"),
    "digits": N_("数字だけで入力してください"),
    "number": N_("数字だけで入力してください"),
    "address": N_("住所の欄を確かめてください"),
}
GENERIC_ERROR = N_("この答えを確かめてください")


@dataclass
class Step:
    """One screen: one question (of the household or of one member), or 'one more person?'."""

    key: str
    section_title: str
    definition: InterviewField | None = None
    value: Any = None
    required: bool = False
    member_index: int | None = None
    member_id: str | None = None
    sub_paths: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """The question's kind (name, date, choice, ...), 'more' for the add-a-person screen."""
        return self.definition.kind if self.definition else "more"


def _scope_answers(answers: dict[str, Any], today: dt.date) -> dict[str, Any]:
    doc = copy.deepcopy(answers)
    doc["visit_date"] = today.isoformat()
    household = doc.get("household") if isinstance(doc.get("household"), dict) else {}
    if not household.get("members"):
        # The first person is asked before they exist: they are created by the first answer.
        household["members"] = [{"id": "m1"}]
    doc["household"] = household
    return doc


def steps(defs: DefinitionSet, answers: dict[str, Any], *, today: dt.date) -> list[Step]:
    """Every question that applies now, in interview order, then nothing else (the hand-off screen follows)."""
    scoped = _scope_answers(answers, today)
    out: list[Step] = []
    for section in counter.build_screen(defs, scoped):
        sdef = section.definition
        if sdef.id in COUNTER_SECTIONS:
            continue
        if sdef.repeat is None:
            out += [Step(f.full_path, sdef.title, f.definition, f.value, f.required) for f in section.fields
                    if f.asked and f.key not in COUNTER_FIELDS]
            continue
        members = scoped["household"]["members"]
        for item in section.items:
            member_id = str(members[item.index].get("id") or f"m{item.index + 1}")
            out += [Step(f.full_path, f"{sdef.title}（{item.index + 1}）", f.definition, f.value, f.required,
                         item.index, member_id) for f in item.fields if f.asked and f.key not in COUNTER_FIELDS]
        out.append(Step(MORE_MEMBERS, sdef.title))
    return out


def find(all_steps: list[Step], key: str | None) -> int:
    """The position of a step (0 when unknown)."""
    for i, step in enumerate(all_steps):
        if step.key == key:
            return i
    return 0


def _nest(path: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    node = out
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def parse_value(step: Step, form: Any) -> Any:
    """The posted screen's value for its question (None clears it)."""
    kind = step.kind
    if kind == "multi_choice":
        values = [v for v in form.getlist("value") if isinstance(v, str) and v]
        return values or None
    if kind == "address":
        parts = {p: str(form.get(f"value.{p}") or "").strip() for p in ADDRESS_PARTS}
        parts = {p: v for p, v in parts.items() if v}
        return parts or None
    raw = form.get("value")
    text = raw.strip() if isinstance(raw, str) else ""
    if kind == "bool":
        return {"true": True, "false": False}.get(text)
    if kind == "list":
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return lines or None
    return text or None


def partial_for(step: Step, value: Any) -> dict[str, Any]:
    """The partial answers document that stores one screen's answer (members addressed by their id)."""
    match = _MEMBER.match(step.key)
    if match:
        return {"household": {"members": [{"id": step.member_id, **_nest(match.group(2), value)}]}}
    return _nest(step.key, value)


def new_member(answers: dict[str, Any]) -> dict[str, Any]:
    """The partial document that adds one more (empty) person."""
    members = (answers.get("household") or {}).get("members") or []
    taken = {str(m.get("id")) for m in members if isinstance(m, dict)}
    n = len(members) + 1
    while f"m{n}" in taken:
        n += 1
    return {"household": {"members": [{"id": f"m{n}", "relationship": "other"}]}}


def errors_for(step: Step, errors: list[dict[str, str]], *, lang: str, gettext: Any) -> list[str]:
    """The messages of this screen's question, in the page language."""
    mine = [e for e in errors if e["field"] == step.key or e["field"].startswith(step.key + ".")
            or e["field"] == MEMBERS_PATH]
    if not mine:
        return []
    if is_japanese(lang) and lang == "ja":
        return [e["message"] for e in mine]
    return [gettext(KIND_ERRORS.get(step.kind, GENERIC_ERROR))]


def text(defs: DefinitionSet, lang: str, japanese: str) -> str:
    """A question, title or choice label of interview.yaml in the page language (Japanese, marked, if untranslated)."""
    if not japanese or lang == "ja":
        return japanese
    cat = catalogs_for(defs).get(lang)
    found = cat.questions.get(japanese) if cat is not None else None
    if found:
        return found
    # やさしい日本語 without a plain version falls back to the interview's own Japanese, unmarked.
    return japanese if is_japanese(lang) else japanese + FALLBACK_MARK
