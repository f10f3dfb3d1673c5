"""The largest answers document the interview allows, for checking what an expression costs at worst."""

from __future__ import annotations

from typing import Any

from app.forms.context import build_context
from app.forms.paths import set_path as _set
from app.forms.schema import Interview, InterviewField

_LIST_ITEMS = 20  # a `list` field without max_length (see app/forms/answers.py)


def _value(fdef: InterviewField, index: int) -> Any:
    kind = fdef.kind
    if kind == "date":
        return f"20{10 + index % 10:02d}-04-01"
    if kind == "datetime":
        return "2020-04-01T09:00"
    if kind == "year_month":
        return "2020-04"
    if kind == "bool":
        return True
    if kind in ("money", "number"):
        return 1000 + index
    if kind == "choice":
        choices = fdef.choices or []
        return choices[index % len(choices)].value if choices else "x"
    if kind == "multi_choice":
        return [c.value for c in fdef.choices or []]
    if kind == "list":
        return [f"item{i}" for i in range(fdef.max_length or _LIST_ITEMS)]
    if kind == "address":
        return {"postal_code": "661-0012", "prefecture": "兵庫県", "city": "尼崎市", "town": "町", "block": "1-1"}
    if kind == "id":
        return f"m{index + 1}"
    return "値" * 4


def worst_case_answers(interview: Interview) -> dict[str, Any]:
    """Every field filled and every repeated section at its max_items."""
    doc: dict[str, Any] = {}
    for section in interview.sections:
        if section.repeat is None:
            for fdef in section.fields:
                _set(doc, fdef.path, _value(fdef, 0))
            continue
        items = []
        for i in range(section.max_items):
            item: dict[str, Any] = {}
            for fdef in section.fields:
                _set(item, fdef.path, _value(fdef, i))
            items.append(item)
        _set(doc, section.repeat, items)
    return doc


def worst_case_context(interview: Interview) -> dict[str, Any]:
    """The evaluation context of the worst-case answers."""
    return build_context(worst_case_answers(interview), case_number="00000000-honcho-001")


def item_at(context: dict[str, Any], list_path: str) -> Any:
    """The first item of a list path such as `household.members[]` in a context (None if absent)."""
    node: Any = context
    for part in list_path.removesuffix("[]").split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node[0] if isinstance(node, list) and node else None
