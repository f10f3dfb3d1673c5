"""Value transforms of the import mapping: dates in the export's format, kana, code tables, names, addresses."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jaconv

from app.forms.address_split import split_address
from app.forms.card_facts import split_name
from app.forms.wareki import DateParseError, parse_date


class TransformFailed(ValueError):
    """The value cannot be transformed; the message is for the row report (Japanese)."""


@dataclass(frozen=True)
class TransformSpec:
    """One step: its name and its argument (a date format, a code table)."""

    name: str
    arg: Any = None


def _date(value: Any, arg: Any) -> str:
    text = unicodedata.normalize("NFKC", str(value)).strip()
    if isinstance(arg, str):
        try:
            return dt.datetime.strptime(text, arg).date().isoformat()
        except ValueError:
            raise TransformFailed(f"日付「{text}」が形式 {arg} に合いません") from None
    try:
        return parse_date(text).isoformat()
    except DateParseError as exc:
        raise TransformFailed(str(exc)) from None


def _kana(value: Any, arg: Any) -> Any:
    if isinstance(value, list):
        return [_kana(v, arg) for v in value]
    return jaconv.hira2kata(jaconv.h2z(unicodedata.normalize("NFC", str(value)), kana=True, digit=False, ascii=False))


def _map(value: Any, arg: Any) -> Any:
    key = unicodedata.normalize("NFKC", str(value)).strip()
    table = {str(k): v for k, v in (arg or {}).items()}
    if key not in table:
        choices = "・".join(table)
        raise TransformFailed(f"「{key}」は対応表にありません（{choices} のいずれか）")
    return table[key]


def _split_name(value: Any, arg: Any) -> list[str]:
    family, given = split_name(str(value))
    if not given:
        raise TransformFailed("姓と名の間に空白がありません")
    return [family, given]


def _address(value: Any, arg: Any) -> dict[str, str]:
    parts = split_address(str(value))
    if parts is None:
        raise TransformFailed("住所を郵便番号のデータと突き合わせられません（都道府県から書いてください）")
    return parts


def _digits(value: Any, arg: Any) -> str:
    return re.sub(r"\D", "", unicodedata.normalize("NFKC", str(value)))


def _strip(value: Any, arg: Any) -> str:
    return unicodedata.normalize("NFKC", str(value)).strip() if arg == "nfkc" else str(value).strip()


TRANSFORMS: dict[str, Callable[[Any, Any], Any]] = {
    "date": _date, "kana": _kana, "map": _map, "split_name": _split_name, "address": _address, "digits": _digits,
    "strip": _strip,
}


def parse_steps(spec: Any) -> list[TransformSpec]:
    """`date` / `{date: "%Y/%m/%d"}` / a list of those → steps; ValueError names what is unknown."""
    if spec is None:
        return []
    items = spec if isinstance(spec, list) else [spec]
    steps: list[TransformSpec] = []
    for item in items:
        if isinstance(item, str):
            name, arg = item, None
        elif isinstance(item, dict) and len(item) == 1:
            name, arg = next(iter(item.items()))
        else:
            raise ValueError("変換は名前か {名前: 引数} で書いてください")
        if name not in TRANSFORMS:
            raise ValueError(f"変換「{name}」はありません（{', '.join(TRANSFORMS)}）")
        if name == "map" and not isinstance(arg, dict):
            raise ValueError("map には {元の値: 回答の値} の対応表を書いてください")
        steps.append(TransformSpec(name, arg))
    return steps


def apply_steps(value: Any, steps: list[TransformSpec]) -> Any:
    """Run the steps in order (TransformFailed on a bad value)."""
    for step in steps:
        value = TRANSFORMS[step.name](value, step.arg)
    return value
