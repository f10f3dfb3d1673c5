"""Which household members a set of forms concerns: the ones the forms print (by name or number)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from app.forms.determine import Instance
from app.forms.resolved import ResolvedForm


def _squash(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFC", text) if not ch.isspace() and ch != "\u3000")


def members_concerned(instances: Iterable[Instance], forms: Iterable[ResolvedForm],
                      members: Iterable[Mapping[str, Any]]) -> set[str]:
    """Ids of the members an instance is for, or whose name, kana or My Number the forms print."""
    ids = {i.member_id for i in instances if i.member_id}
    printed = _squash(" ".join(cell.text for form in forms for cell in form.cells() if cell.text))
    for member in members:
        member_id = member.get("id")
        if not isinstance(member_id, str):
            continue
        marks = []
        for key in ("given_name", "given_name_kana", "alphabet_name", "my_number"):
            value = member.get(key)
            if isinstance(value, str) and value:
                marks.append(_squash(value))
        if any(mark and mark in printed for mark in marks):
            ids.add(member_id)
    return ids
