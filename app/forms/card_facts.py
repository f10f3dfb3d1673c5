"""Put what a マイナンバーカード says (基本4情報 and My Number) into an answers document. Pure: no DB."""

from __future__ import annotations

import copy
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from app.forms.address_split import split_address
from app.forms.paths import set_path as _set

# ISO/IEC 5218 codes, as the card's 性別 field holds them.
SEX_CODES = {"1": "male", "2": "female"}
CARD_SOURCE = "card"


@dataclass
class CardApplied:
    """The new answers, the member the card was put on, the paths it filled and what the clerk must check."""

    answers: dict[str, Any]
    member_id: str
    paths: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def split_name(name: str) -> tuple[str, str]:
    """氏名 as on the card ('番号　花子') → (family name, given name); no space → all of it is the family name."""
    text = re.sub(r"[\s\u3000]+", " ", (name or "").strip())
    family, _, given = text.partition(" ")
    return family, given.strip()


def address_path(answers: dict[str, Any]) -> str:
    """Where the card's address goes: the previous address for a 転入, otherwise the current address."""
    return "move.previous_address" if "move_in" in (answers.get("life_events") or []) else "address"


def _get(doc: dict[str, Any], dotted: str) -> Any:
    cur: Any = doc
    for part in dotted.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _new_member_id(members: list[dict[str, Any]]) -> str:
    taken = {m.get("id") for m in members}
    n = len(members) + 1
    while f"m{n}" in taken:
        n += 1
    return f"m{n}"


def apply_card(answers: dict[str, Any], *, name: str, address: str, birth_date: str, sex: str, my_number: str,
               member_id: str | None) -> CardApplied:
    """A copy of the answers with the card's facts on the member (a new one if member_id is None)."""
    doc = copy.deepcopy(answers)
    members: list[dict[str, Any]] = _get(doc, "household.members") or []
    _set(doc, "household.members", members)
    member = next((m for m in members if m.get("id") == member_id), None) if member_id else None
    if member is None:
        member = {"id": member_id or _new_member_id(members)}
        if not any(m.get("relationship") == "head" for m in members):
            member["relationship"] = "head"
        members.append(member)
    mid = member["id"]
    applied = CardApplied(doc, mid)
    family, given = split_name(name)
    values = {"family_name": family, "given_name": given, "birth_date": unicodedata.normalize("NFKC", birth_date),
              "my_number": my_number}
    if sex in SEX_CODES:
        values["sex"] = SEX_CODES[sex]
    else:
        applied.warnings.append("性別がカードから読み取れませんでした。確認して選んでください")
    if not given:
        applied.warnings.append("氏名の姓と名を分けられませんでした。名の欄を確認してください")
    for key, value in values.items():
        if value:
            member[key] = value
            applied.paths.append(f"household.members.{mid}.{key}")
    target = address_path(doc)
    parts = split_address(address)
    if parts is None:
        applied.warnings.append("カードの住所を郵便番号に結びつけられませんでした。住所は手で入力してください")
    elif _get(doc, target):
        applied.warnings.append("住所はすでに入力されているため、カードの住所では上書きしていません")
    else:
        _set(doc, target, parts)
        applied.paths.append(target)
    return applied
