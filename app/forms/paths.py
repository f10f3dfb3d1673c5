"""Dotted paths into an answers document (`move.previous_address.block`): where a value goes."""

from __future__ import annotations

import re
from typing import Any

_PART = re.compile(r"[^.\[\]]+|\[\d+\]")


def parent_of(doc: dict[str, Any], dotted: str) -> tuple[dict[str, Any], str]:
    """The dict that holds the path's last key (made on the way, replacing non-dict values), and that key."""
    parts = dotted.split(".")
    cur = doc
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = cur[part] = {}
        cur = nxt
    return cur, parts[-1]


def set_path(doc: dict[str, Any], dotted: str, value: Any) -> None:
    """Put value at the dotted path, making the dicts on the way."""
    cur, key = parent_of(doc, dotted)
    cur[key] = value


def get_path(doc: Any, path: str) -> Any:
    """The value at a screen path with list indexes (`household.members[2].birth_date`), or None."""
    for part in _PART.findall(path):
        if part.startswith("["):
            index = int(part[1:-1])
            doc = doc[index] if isinstance(doc, list) and index < len(doc) else None
        else:
            doc = doc.get(part) if isinstance(doc, dict) else None
    return doc
