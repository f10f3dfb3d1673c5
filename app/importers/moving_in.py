"""転入予約 / 転出証明書情報 from the 引越しワンストップ service → one answers document per household.

Pure: bytes of the city's export + a mapping + the form definitions in, planned households (or every
problem, per row and column, in Japanese) out. The service stores them; nothing is half-imported.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import dataclass, field
from typing import Any

from app.forms.answers import validate_answers
from app.forms.loader import DefinitionSet
from app.forms.paths import parent_of
from app.importers.mapping import ColumnRule, Mapping
from app.importers.transforms import TransformFailed, TransformSpec, apply_steps


@dataclass(frozen=True)
class RowError:
    """One problem: where (row label, column) and what (Japanese)."""

    row: str
    column: str
    message: str

    def text(self) -> str:
        """'3行目「生年月日」: …' for the report."""
        where = f"{self.row}「{self.column}」" if self.column else self.row
        return f"{where}: {self.message}"


@dataclass
class PlannedHousehold:
    """One reservation: its number, planned visit date and validated answers."""

    reference: str
    planned_on: dt.date
    answers: dict[str, Any]
    row: str
    origins: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass
class ImportResult:
    """The households, or the problems (never both used: any problem means nothing is stored)."""

    households: list[PlannedHousehold]
    errors: list[RowError]


def _set(doc: dict[str, Any], dotted: str, value: Any) -> None:
    cur, key = parent_of(doc, dotted)
    if isinstance(value, dict) and isinstance(cur.get(key), dict):
        cur[key] = {**value, **cur[key]}  # a separate postal-code column wins over the lookup
    else:
        cur[key] = value


def _records(data: bytes, mapping: Mapping) -> tuple[list[tuple[str, dict[str, Any]]], list[RowError]]:
    if mapping.format == "csv":
        try:
            text = data.decode(mapping.encoding)
        except (UnicodeDecodeError, LookupError):
            return [], [RowError("ファイル", "", f"文字コード {mapping.encoding} として読めません（対応表の encoding を確かめてください）")]
        reader = csv.DictReader(io.StringIO(text, newline=""))
        columns = set(reader.fieldnames or [])
        wanted = {mapping.reference, mapping.visit_date.column, *(r.column for r in mapping.household + mapping.member)}
        missing = sorted(wanted - columns)
        if missing:
            return [], [RowError("ファイル", c, "この列がありません") for c in missing]
        try:
            rows = [(f"{reader.line_num}行目", dict(row)) for row in reader
                    if any((v or "").strip() for v in row.values() if isinstance(v, str))]
        except csv.Error as exc:
            return [], [RowError(f"{reader.line_num}行目", "", f"CSVとして読めません（{exc}）")]
        return rows, []
    try:
        payload = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        return [], [RowError("ファイル", "", f"JSONとして読めません（{exc.__class__.__name__}）")]
    records = payload.get("records") if isinstance(payload, dict) else payload
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        return [], [RowError("ファイル", "", "JSONは予約の配列（または records に配列）にしてください")]
    return [(f"{i}件目", r) for i, r in enumerate(records, start=1)], []


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _apply(rule: ColumnRule, record: dict[str, Any], row: str, target: dict[str, Any], prefix: str,
           errors: list[RowError], origins: dict[str, tuple[str, str]]) -> None:
    raw = record.get(rule.column)
    if _empty(raw):
        if rule.required:
            errors.append(RowError(row, rule.column, "値がありません"))
        return
    try:
        value = apply_steps(raw.strip() if isinstance(raw, str) else raw, rule.steps())
    except TransformFailed as exc:
        errors.append(RowError(row, rule.column, str(exc)))
        return
    values = value if len(rule.paths) > 1 else [value]
    for path, v in zip(rule.paths, values, strict=True):
        _set(target, path, v)
        origins[f"{prefix}{path}"] = (row, rule.column)


def _origin(origins: dict[str, tuple[str, str]], path: str) -> tuple[str, str] | None:
    best = None
    for key, where in origins.items():
        if (path == key or path.startswith(key + ".")) and (best is None or len(key) > len(best[0])):
            best = (key, where)
    return best[1] if best else None


def _household(mapping: Mapping, reference: str, rows: list[tuple[str, dict[str, Any]]], members: list[tuple[str, dict[str, Any]]],
               errors: list[RowError]) -> PlannedHousehold | None:
    first_row, first = rows[0]
    doc: dict[str, Any] = {}
    origins: dict[str, tuple[str, str]] = {}
    for path, value in mapping.constants.items():
        _set(doc, path, value)
    before = len(errors)
    planned: dt.date | None = None
    raw_date = first.get(mapping.visit_date.column)
    if _empty(raw_date):
        errors.append(RowError(first_row, mapping.visit_date.column, "来庁予定日がありません"))
    else:
        try:
            steps = mapping.visit_date.steps() or [TransformSpec("date")]
            planned = dt.date.fromisoformat(apply_steps(str(raw_date).strip(), steps))
        except TransformFailed as exc:
            errors.append(RowError(first_row, mapping.visit_date.column, str(exc)))
    for rule in mapping.household:
        _apply(rule, first, first_row, doc, "", errors, origins)
    items: list[dict[str, Any]] = []
    for i, (row, record) in enumerate(members):
        member: dict[str, Any] = {"id": f"m{i + 1}"}
        for rule in mapping.member:
            _apply(rule, record, row, member, f"household.members[{i}].", errors, origins)
        items.append(member)
    if items:
        _set(doc, "household.members", items)
    if planned is None or len(errors) > before:
        return None
    doc["visit_date"] = planned.isoformat()
    return PlannedHousehold(reference, planned, doc, first_row, origins)


def build(data: bytes, mapping: Mapping, defs: DefinitionSet, *, today: dt.date) -> ImportResult:
    """Every household of the export as a checked answers document, or every problem found."""
    records, errors = _records(data, mapping)
    if errors:
        return ImportResult([], errors)
    groups: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for row, record in records:
        reference = record.get(mapping.reference)
        if _empty(reference):
            errors.append(RowError(row, mapping.reference, "予約番号がありません"))
            continue
        reference = str(reference).strip()[:64]
        if mapping.format == "json" and reference in groups:
            errors.append(RowError(row, mapping.reference, f"予約番号 {reference} が重複しています"))
            continue
        groups.setdefault(reference, []).append((row, record))
    households: list[PlannedHousehold] = []
    for reference, rows in groups.items():
        if mapping.format == "json":
            row, record = rows[0]
            raw_members = record.get(mapping.members) if mapping.members else []
            if raw_members is not None and not isinstance(raw_members, list):
                errors.append(RowError(row, mapping.members or "", "世帯員は配列にしてください"))
                continue
            members = [(f"{row}の世帯員{j}", m if isinstance(m, dict) else {})
                       for j, m in enumerate(raw_members or [], start=1)]
        else:
            members = rows if mapping.member else []
        household = _household(mapping, reference, rows, members, errors)
        if household is None:
            continue
        result = validate_answers(defs, household.answers, today=today, draft=True)
        for err in result.errors:
            where = _origin(household.origins, err.field)
            row, column = where if where else (household.row, err.field)
            errors.append(RowError(row, column, err.message))
        household.answers = result.answers
        households.append(household)
    return ImportResult(households if not errors else [], errors)
