"""Named transforms that turn an answer into what a form prints (和暦, カナ, 〒, joined addresses...)."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

import jaconv
from babel import Locale

from app.forms.expr import FUNCTIONS, as_date
from app.forms.wareki import format_wareki

Transform = Callable[[Any, Mapping[str, Any]], Any]

SEX_LABELS = {"male": "男", "female": "女", "other": "その他"}
RELATIONSHIP_LABELS = {
    "head": "世帯主",
    "spouse": "妻",
    "child": "子",
    "parent": "父母",
    "other": "その他",
}
ACCOUNT_TYPE_LABELS = {"ordinary": "普通", "current": "当座", "savings": "貯蓄"}
INSURANCE_LABELS = {
    "employee": "被用者保険（本人）",
    "employee_dependent": "被用者保険（扶養）",
    "national": "国民健康保険",
    "none": "なし",
}




def _present(value: Any) -> bool:
    # expr.MISSING is falsy and equal to None; treat it like an absent answer.
    return not (value is None or value == None)  # noqa: E711


def wareki(value: Any, ctx: Mapping[str, Any]) -> str:
    """2026-04-06 → 令和8年4月6日."""
    d = as_date(value)
    if d is None:
        return ""
    try:
        return format_wareki(d)
    except ValueError:  # before Meiji: only odd stored data gets here (input refuses such dates)
        return seireki(d, ctx)


def wareki_short(value: Any, ctx: Mapping[str, Any]) -> str:
    """2026-04-06 → R8.4.6."""
    d = as_date(value)
    if d is None:
        return ""
    try:
        return format_wareki(d, style="short")
    except ValueError:
        return d.isoformat()


def seireki(value: Any, ctx: Mapping[str, Any]) -> str:
    """2026-04-06 → 2026年4月6日 (for foreign residents and forms that ask 西暦)."""
    d = as_date(value)
    return f"{d.year}年{d.month}月{d.day}日" if d else ""


def kana(value: Any, ctx: Mapping[str, Any]) -> str:
    """Any kana → full-width katakana, as forms print フリガナ."""
    if not isinstance(value, str):
        return ""
    return jaconv.hira2kata(jaconv.h2z(unicodedata.normalize("NFC", value), kana=True, digit=False, ascii=False))


def hiragana(value: Any, ctx: Mapping[str, Any]) -> str:
    """Any kana → hiragana, for forms that ask ふりがな."""
    return jaconv.kata2hira(kana(value, ctx))


def postal(value: Any, ctx: Mapping[str, Any]) -> str:
    """6610012 / 661-0012 → 〒661-0012."""
    digits = "".join(ch for ch in str(value or "") if "0" <= ch <= "9")
    return f"〒{digits[:3]}-{digits[3:]}" if len(digits) == 7 else ""


def address(value: Any, ctx: Mapping[str, Any]) -> str:
    """An address object → one line: 兵庫県尼崎市南塚口町二丁目4番5号 塚口コーポ202号室."""
    if not isinstance(value, Mapping):
        return ""
    main = "".join(str(value.get(k) or "") for k in ("prefecture", "city", "town", "block"))
    building = str(value.get("building") or "")
    return f"{main}　{building}" if building else main


def address_with_postal(value: Any, ctx: Mapping[str, Any]) -> str:
    """An address object → 〒661-0012 兵庫県尼崎市…."""
    if not isinstance(value, Mapping):
        return ""
    zip_text = postal(value.get("postal_code"), ctx)
    line = address(value, ctx)
    return f"{zip_text}　{line}" if zip_text and line else line


def age(value: Any, ctx: Mapping[str, Any]) -> str:
    """Birth date → age on the visit date, e.g. 8歳."""
    years = FUNCTIONS["age_on"](value, ctx.get("visit_date"))
    return f"{years}歳" if isinstance(years, int) else ""


def digits(value: Any, ctx: Mapping[str, Any]) -> str:
    """Keep digits only, for comb boxes (My Number, postal code, account number)."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", str(value or "")) if "0" <= ch <= "9")


def sex(value: Any, ctx: Mapping[str, Any]) -> str:
    """male/female → 男/女."""
    return SEX_LABELS.get(str(value), "")


def relationship(value: Any, ctx: Mapping[str, Any]) -> str:
    """A member (or a relationship code) → 続柄 as the resident register prints it."""
    if isinstance(value, Mapping):
        rel = value.get("relationship")
        member_sex = value.get("sex")
        if rel == "spouse":
            return "夫" if member_sex == "male" else "妻"
        if rel == "parent":
            return "父" if member_sex == "male" else "母"
        if rel == "other" and value.get("relationship_detail"):
            return str(value["relationship_detail"])  # 「その他」 is not a 住民票 続柄: 同居人, 孫 …
        return RELATIONSHIP_LABELS.get(str(rel), "")
    return RELATIONSHIP_LABELS.get(str(value), "")


def account_type(value: Any, ctx: Mapping[str, Any]) -> str:
    """ordinary → 普通."""
    return ACCOUNT_TYPE_LABELS.get(str(value), "")


def insurance(value: Any, ctx: Mapping[str, Any]) -> str:
    """Health insurance code → its Japanese name."""
    return INSURANCE_LABELS.get(str(value), "")


def yen(value: Any, ctx: Mapping[str, Any]) -> str:
    """1234567 → 1,234,567円."""
    try:
        return f"{int(value):,}円"
    except (TypeError, ValueError):
        return ""


def full_name(value: Any, ctx: Mapping[str, Any]) -> str:
    """A member → 尼崎　太郎 (family and given name, separated by an ideographic space)."""
    if not isinstance(value, Mapping):
        return ""
    parts = [str(value.get(k) or "") for k in ("family_name", "given_name")]
    return "　".join(p for p in parts if p)


def full_name_kana(value: Any, ctx: Mapping[str, Any]) -> str:
    """A member → アマガサキ　タロウ."""
    if not isinstance(value, Mapping):
        return ""
    parts = [kana(value.get(k), ctx) for k in ("family_name_kana", "given_name_kana")]
    return "　".join(p for p in parts if p)


# The scope key under which determination puts the interview's own choice labels
# ({"household.members[].occupation": {"employee": "会社員", ...}}): `label:<path>` and `occupation` read them,
# so a city that rewords a choice in interview.yaml sees the new wording on every form.
CHOICE_LABELS = "__choice_labels__"
LABEL_PREFIX = "label:"
OCCUPATION_PATH = "household.members[].occupation"


def choice_label(path: str, value: Any, ctx: Mapping[str, Any]) -> str:
    """A stored choice code → the interview's label for it (a list → labels joined by 、); unknown codes as given."""
    labels: Mapping[str, str] = (ctx.get(CHOICE_LABELS) or {}).get(path) or {}
    if isinstance(value, list):
        return "、".join(labels.get(str(v), str(v)) for v in value if _present(v))
    return labels.get(str(value), str(value))


_JA = Locale("ja")


def country_or_text(value: Any, ctx: Mapping[str, Any]) -> str:
    """A 2-letter country code → its Japanese name (a foreign 届出人's 国籍); any other text prints as it is."""
    text = str(value).strip()
    if len(text) == 2 and text.isascii() and text.isalpha():
        return country(text, ctx)
    return text


def occupation(value: Any, ctx: Mapping[str, Any]) -> str:
    """An occupation code (or a member: its occupation and employer) → 会社員（株式会社みなと物産）."""
    if isinstance(value, Mapping):
        code = value.get("occupation")
        label = choice_label(OCCUPATION_PATH, code, ctx) if _present(code) else ""
        employer = str(value.get("employer") or "")
        return f"{label}（{employer}）" if label and employer else label
    return choice_label(OCCUPATION_PATH, value, ctx)


def register_name(value: Any, ctx: Mapping[str, Any]) -> str:
    """A member → the name as the 戸籍 records it: kanji for Japanese nationals, katakana for foreign nationals."""
    if not isinstance(value, Mapping):
        return ""
    if value.get("nationality") not in (None, "JP"):
        return full_name_kana(value, ctx)
    return full_name(value, ctx)


def country(value: Any, ctx: Mapping[str, Any]) -> str:
    """ISO 3166 alpha-2 → the Japanese country name (VN → ベトナム); JP → 日本; unknown codes print as given."""
    code = str(value).strip().upper()
    return _JA.territories.get(code, code) if code else ""


def yes_no(value: Any, ctx: Mapping[str, Any]) -> str:
    """True → 有, False → 無 (the usual wording of yes/no boxes)."""
    if value is True:
        return "有"
    if value is False:
        return "無"
    return ""


KINSHIP = {"spouse": "配偶者", "child": "子", "parent": "父母", "sibling": "兄弟姉妹", "other": "その他"}


def kinship(value: Any, ctx: Mapping[str, Any]) -> str:
    """An heir's relationship to the deceased (spouse, child, ...) → 配偶者, 子, ...."""
    return KINSHIP.get(str(value), str(value)) if _present(value) else ""


TRANSFORMS: dict[str, Transform] = {
    "wareki": wareki,
    "wareki_short": wareki_short,
    "seireki": seireki,
    "kana": kana,
    "hiragana": hiragana,
    "postal": postal,
    "address": address,
    "address_with_postal": address_with_postal,
    "age": age,
    "digits": digits,
    "sex": sex,
    "relationship": relationship,
    "account_type": account_type,
    "insurance": insurance,
    "yen": yen,
    "full_name": full_name,
    "full_name_kana": full_name_kana,
    "yes_no": yes_no,
    "country": country,
    "occupation": occupation,
    "country_or_text": country_or_text,
    "register_name": register_name,
    "kinship": kinship,
}


def apply_transform(name: str | None, value: Any, ctx: Mapping[str, Any]) -> Any:
    """Apply a named transform; without one, absent values print as empty text."""
    if name is None:
        if not _present(value):
            return ""
        if isinstance(value, bool):
            return value
        if isinstance(value, list):
            return "、".join(str(v) for v in value if _present(v))
        return str(value)
    if not _present(value):
        return ""
    if name.startswith(LABEL_PREFIX):
        return choice_label(name[len(LABEL_PREFIX):], value, ctx)
    return TRANSFORMS[name](value, ctx)
