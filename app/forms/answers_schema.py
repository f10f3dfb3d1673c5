"""A JSON Schema (2020-12, as OpenAPI 3.1 uses it) of the answers document, generated from interview.yaml.

It documents the document's shape for integrators: every key the interview asks, nested as the paths
say, each with its type, choices, length limit, the Japanese label and help, and when it is required.
It is the canonical form the service stores; the service is more lenient on input (dates as R8.4.6 or
令和8年4月6日, furigana in hiragana, full-width digits...) and always checks the values itself
(check digits, postal codes, conditions), answering 422 with Japanese field messages.
"""

from __future__ import annotations

from typing import Any

from app.forms.answers import MAX_TEXT
from app.forms.schema import Interview, InterviewField

ADDRESS_PARTS = {  # the keys of app.forms.loader.ADDRESS_PARTS, with what each holds
    "postal_code": "郵便番号（661-0012）",
    "prefecture": "都道府県（郵便番号から補完）",
    "city": "市区町村（郵便番号から補完）",
    "town": "町名（郵便番号から補完）",
    "block": "丁目・番地",
    "building": "方書（建物名・部屋番号）",
}
# Keys every object may carry that are not answers: comments ("$comment") and other "$" metadata.
META = {"^\\$": {"description": "注釈など（回答ではない。そのまま保存される）"}}
SURVEY_BASELINE = {
    "type": "object",
    "description": "従来の窓口で測った値（ベンチマーク用の参考値。回答ではなく、そのまま保存される）",
}


def _string(fdef: InterviewField, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "maxLength": fdef.max_length or MAX_TEXT, **extra}


def _address() -> dict[str, Any]:
    props = {key: {"type": "string", "maxLength": 200, "description": label} for key, label in ADDRESS_PARTS.items()}
    props["postal_code"] = {"type": "string", "maxLength": 10, "description": ADDRESS_PARTS["postal_code"],
                            "examples": ["661-0012"]}
    return {"type": "object", "properties": props, "required": ["postal_code", "block"], "additionalProperties": False}


def _value(fdef: InterviewField) -> dict[str, Any]:
    """The JSON Schema of one answer by its kind (the form the service stores)."""
    kind = fdef.kind
    if kind == "address":
        return _address()
    if kind in ("choice", "multi_choice"):
        values = [c.value for c in fdef.choices or []]
        if kind == "choice":
            return {"type": "string", "enum": values}
        return {"type": "array", "items": {"type": "string", "enum": values}, "uniqueItems": True}
    if kind == "bool":
        return {"type": "boolean"}
    if kind in ("money", "number"):
        return {"type": "number", "minimum": 0, "maximum": 10**12}
    if kind == "list":
        return {"type": "array", "items": {"type": "string", "maxLength": 200}, "maxItems": fdef.max_length or 20}
    if kind == "date":
        return {"type": "string", "format": "date", "examples": ["2026-04-06"]}
    if kind == "datetime":
        return {"type": "string", "maxLength": 40, "examples": ["2026-04-06T09:30"]}
    if kind == "year_month":
        return {"type": "string", "maxLength": 20, "examples": ["2020-04"]}
    if kind == "id":
        return {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,20}$", "examples": ["m1"]}
    if kind == "country":
        return {"type": "string", "maxLength": 2, "minLength": 2, "examples": ["JP"]}
    if kind == "postal_code":
        return {"type": "string", "maxLength": 10, "examples": ["661-0012"]}
    if kind == "phone":
        return {"type": "string", "maxLength": 20, "examples": ["090-1234-5678"]}
    if kind == "my_number":
        return {"type": "string", "maxLength": 20, "examples": ["123456789018"]}
    if kind == "digits":
        return _string(fdef, maxLength=fdef.digits or 32)
    return _string(fdef)  # id-like text, name, kana, alphabet_name, text


KIND_NOTES = {
    "date": "日付。2026-04-06 の形（R8.4.6・令和8年4月6日 も受け付け、ISO 形式で保存）",
    "datetime": "日時。2026-04-06T09:30 の形",
    "year_month": "年月。2020-04 の形",
    "kana": "フリガナ。全角カタカナで保存（ひらがな・半角カナも受け付け）",
    "name": "氏名。入力どおりに保存（異体字セレクタ・BMP外の文字もそのまま）",
    "my_number": "個人番号12桁（検査用数字を確認）。応答ではマスクされ（********9018）、マスクのまま送り返すと保存済みの番号を保つ",
    "digits": "数字のみ",
    "country": "ISO 3166 の2文字コード（日本は JP）",
    "address": "郵便番号から都道府県・市区町村・町名を補完し、一致を確認",
    "phone": "電話番号（090-1234-5678 や 06-1234-5678）",
    "postal_code": "郵便番号（661-0012）",
}


def _describe(fdef: InterviewField) -> str:
    parts = [fdef.label]
    if fdef.help:
        parts.append(fdef.help)
    if fdef.kind in KIND_NOTES:
        parts.append(KIND_NOTES[fdef.kind])
    if fdef.past_only:
        parts.append("未来の日付は不可")
    if fdef.required_when:
        parts.append(f"必須になる条件: {fdef.required_when}")
    if fdef.ask_when:
        parts.append(f"聞く条件: {fdef.ask_when}")
    return "。".join(p.rstrip("。") for p in parts)


def _object() -> dict[str, Any]:
    return {"type": "object", "properties": {}, "patternProperties": META, "additionalProperties": False}


def _place(root: dict[str, Any], path: str, schema: dict[str, Any], *, required: bool) -> None:
    """Put `schema` at the dotted `path` below the object schema `root`, creating objects on the way."""
    node = root
    parts = path.split(".")
    for part in parts[:-1]:
        node = node["properties"].setdefault(part, _object())
    node["properties"][parts[-1]] = schema
    if required:
        node.setdefault("required", [])
        if parts[-1] not in node["required"]:
            node["required"].append(parts[-1])


def answers_json_schema(interview: Interview, *, example: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON Schema of the answers document that `interview` asks for (with `example` when given)."""
    root = _object()
    root.update(title="回答文書（answers document）", description=(
        f"{interview.title}の回答をまとめた一つの JSON 文書（form_definitions/interview.yaml から生成）。"
        "required は下書き保存（?draft=true）でなければ必須の項目。条件つきで必須の項目は各説明の「必須になる条件」を参照。"))
    root["properties"]["survey_baseline"] = SURVEY_BASELINE
    for section in interview.sections:
        if section.repeat is None:
            for fdef in section.fields:
                field_schema = dict(_value(fdef), description=_describe(fdef))
                _place(root, fdef.path, field_schema, required=fdef.required and "." not in fdef.path)
            continue
        item = _object()
        item["description"] = section.item_label or section.title
        for fdef in section.fields:
            field_schema = dict(_value(fdef), description=_describe(fdef))
            _place(item, fdef.path, field_schema, required=fdef.required and "." not in fdef.path)
        array: dict[str, Any] = {"type": "array", "items": item, "maxItems": section.max_items,
                                 "description": f"{section.title}（{section.help}）" if section.help else section.title}
        if section.min_items:
            array["minItems"] = section.min_items
        _place(root, section.repeat, array, required=section.min_items > 0 and "." not in section.repeat)
    if example is not None:
        root["examples"] = [example]
    return root
