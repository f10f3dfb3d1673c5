"""Dotted paths into an answers document (`move.previous_address.block`): where a value goes."""

from __future__ import annotations

from typing import Any


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
