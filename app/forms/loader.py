"""Load and check a whole set of form definitions, reporting every problem at once."""

from __future__ import annotations

import copy
import difflib
import functools
import graphlib
import hashlib
import io
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from app.forms.context import ALIASES, BUILTINS, MEMBER
from app.forms.expr import FUNCTIONS, STEP_BUDGET, ExprBudgetExceeded, ExprError, compile_expr
from app.forms.schema import (
    Application,
    AppointmentQueue,
    Calendar,
    Department,
    Departments,
    FormField,
    Hours,
    Interview,
    InterviewField,
    InterviewSection,
)
from app.forms.transforms import LABEL_PREFIX, TRANSFORMS
from app.forms.worst_case import item_at, worst_case_context
from app.forms.yamlsource import Problem, SourceMap, YamlError, load_yaml

ADDRESS_PARTS = ("postal_code", "prefecture", "city", "town", "block", "building")
PAGE_SIZES_MM = {"A4": (210.0, 297.0), "A3": (297.0, 420.0), "B4": (257.0, 364.0), "B5": (182.0, 257.0)}
MAX_FILE_BYTES = 1_000_000

M = TypeVar("M", bound=BaseModel)


class DefinitionError(Exception):
    """A definition set with problems; str() is the full report, one problem a line."""

    def __init__(self, problems: list[Problem]):
        # The interview and the registry come first: a problem there is usually the cause of the others.
        order = {"interview.yaml": 0, "departments.yaml": 1}
        self.problems = sorted(problems, key=lambda p: (order.get(p.file, 2), p.file, p.line, p.path, p.message))
        super().__init__("\n".join(map(str, self.problems)))


@dataclass(frozen=True)
class FieldInfo:
    """Where an interview field sits: its full answers path, section and definition."""

    path: str
    section: InterviewSection
    field: InterviewField


@dataclass(frozen=True)
class DefinitionSet:
    """A checked set of definitions, ready for determination and rendering."""

    directory: Path
    interview: Interview
    departments: dict[str, Department]
    applications: dict[str, Application]
    fields: dict[str, FieldInfo]
    known_paths: frozenset[str]
    fingerprint: str
    templates: dict[str, bytes] = field(default_factory=dict)
    calendar: Calendar = field(default_factory=Calendar)
    opening_hours: tuple[Hours, ...] = (Hours(from_="08:30", to="17:15"),)
    # Bookable queues by queue id ("" = the one-stop counter), in the order of departments.yaml.
    appointments: dict[str, AppointmentQueue] = field(default_factory=dict)

    @functools.cached_property
    def choice_labels(self) -> dict[str, dict[str, str]]:
        """Interview path → {choice value: label}, for every question with choices (the `label:` transform)."""
        return {path: {c.value: c.label for c in info.field.choices}
                for path, info in self.fields.items() if info.field.choices}

    def application_order(self) -> list[str]:
        """Application ids in an order that respects every `after` and `requires` constraint."""
        sorter = graphlib.TopologicalSorter({a: [*app.after, *app.requires]
                                             for a, app in sorted(self.applications.items())})
        return list(sorter.static_order())


_PYDANTIC_MESSAGES = {
    "missing": "必須の項目がありません",
    "extra_forbidden": "未知の項目です（綴りを確認してください）",
    "string_type": "文字列を指定してください",
    "int_type": "整数を指定してください",
    "int_parsing": "整数を指定してください",
    "int_from_float": "整数を指定してください",
    "float_type": "数値を指定してください",
    "float_parsing": "数値を指定してください",
    "bool_type": "true か false を指定してください",
    "bool_parsing": "true か false を指定してください",
    "list_type": "リスト（- で始まる行）を指定してください",
    "dict_type": "項目の集まり（キー: 値）を指定してください",
    "model_type": "項目の集まり（キー: 値）を指定してください",
    "date_type": "日付（YYYY-MM-DD）を指定してください",
    "date_parsing": "日付（YYYY-MM-DD）を指定してください",
    "date_from_datetime_parsing": "日付（YYYY-MM-DD）を指定してください",
    "string_pattern_mismatch": "使える文字は英小文字・数字・_ で、英小文字で始めてください",
    "too_short": "少なくとも1つ必要です",
}


_PATTERN_MESSAGES = {
    "^https://": "https:// で始まるURLを指定してください",
    "^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$": "月-日（例 12-29）の形で指定してください",
    "^([01][0-9]|2[0-3]):[0-5][0-9]$": "時:分（例 09:00）の形で指定してください",
}


def _pydantic_message(err: dict[str, Any]) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "string_pattern_mismatch" and ctx.get("pattern") in _PATTERN_MESSAGES:
        return _PATTERN_MESSAGES[ctx["pattern"]]
    if kind == "literal_error":
        return f"次のいずれかを指定してください: {str(ctx.get('expected', '')).replace(' or ', ', ')}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        bound = ctx.get("gt", ctx.get("ge", ctx.get("lt", ctx.get("le"))))
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        word = {"greater_than": "より大きく", "greater_than_equal": "以上に",
                "less_than": "より小さく", "less_than_equal": "以下に"}[kind]
        return f"{bound}{word}してください"
    if kind == "too_long":
        return f"多すぎます（最大 {ctx.get('max_length')} 個）"
    return _PYDANTIC_MESSAGES.get(kind, f"値が正しくありません（{err['msg']}）")


def _without(data: Any, loc: tuple[Any, ...]) -> None:
    node = data
    for part in loc[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return
    if isinstance(node, dict):
        node.pop(loc[-1], None)


def _validate(model: type[M], data: Any, smap: SourceMap, problems: list[Problem]) -> M | None:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        for err in errors:
            path = ".".join(str(p) for p in err["loc"])
            problems.append(Problem(smap.file, smap.line_of(path), path, _pydantic_message(err)))
    # An unknown key (a typo) must not hide the file's other problems: drop it and check the rest.
    extra = [tuple(err["loc"]) for err in errors if err["type"] == "extra_forbidden" and err["loc"]]
    if not extra or len(extra) != len(errors):
        return None
    stripped = copy.deepcopy(data)
    for loc in extra:
        _without(stripped, loc)
    try:
        return model.model_validate(stripped)
    except ValidationError:
        return None


def _read(path: Path, rel: str, problems: list[Problem]) -> tuple[Any, SourceMap] | None:
    try:
        raw = path.read_bytes()
    except OSError:
        problems.append(Problem(rel, 1, "", "ファイルを読めません"))
        return None
    if len(raw) > MAX_FILE_BYTES:
        problems.append(Problem(rel, 1, "", "ファイルが大きすぎます（1MBまで）"))
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        problems.append(Problem(rel, 1, "", "文字コードは UTF-8 にしてください"))
        return None
    try:
        return load_yaml(text, rel)
    except YamlError as exc:
        problems.extend(exc.problems)
        return None


def quote_expr(text: str, col: int | None) -> str:
    """The expression as the clerk wrote it, with ▶ where the problem starts: 「'a' in ▶(b」."""
    if col is None or not 0 <= col <= len(text):
        return f"「{text}」"
    return f"「{text[:col]}▶{text[col:]}」"


class _Checker:
    """Compiles expressions and checks the data paths they read against the interview."""

    def __init__(self, known_paths: frozenset[str], problems: list[Problem], worst: dict[str, Any] | None = None,
                 choice_paths: Iterable[str] | None = None):
        self.known = known_paths
        self.problems = problems
        self.worst = worst
        # Interview questions with choices (what a `label:<path>` transform may name); None: not known.
        self.choice_paths = None if choice_paths is None else sorted(choice_paths)
        self.unknown: dict[str, dict[str, Any]] = {}

    def unknown_reference(self, full: str, raw: str, smap: SourceMap, path: str) -> None:
        # One problem per missing data path (the first place it is read), with how many other places
        # read it too: a renamed interview field is one problem, not one per form that prints it.
        where = f"{smap.file}:{smap.line_of(path)}"
        seen = self.unknown.get(full)
        if seen is None:
            close = difflib.get_close_matches(full, sorted(self.known), n=1, cutoff=0.9)
            hint = f"（interview.yaml の {close[0]} のことですか）" if close else ""
            self.unknown[full] = seen = {"index": len(self.problems), "where": where, "others": [],
                                         "text": f"聞き取り項目にないデータを参照しています: {raw}{hint}"}
            self.problems.append(Problem(smap.file, smap.line_of(path), path, seen["text"]))
            return
        if where == seen["where"] or where in seen["others"]:
            return
        seen["others"].append(where)
        others = seen["others"]
        shown = "、".join(others[:3]) + (f" ほか{len(others) - 3}箇所" if len(others) > 3 else "")
        first = self.problems[seen["index"]]
        self.problems[seen["index"]] = Problem(first.file, first.line, first.path,
                                               f"{seen['text']}（同じ参照が他に{len(others)}箇所: {shown}）")

    def cost(self, text: str, smap: SourceMap, path: str, scope: dict[str, str]) -> None:
        """Evaluate on the largest household the interview allows; too many steps is a problem."""
        if self.worst is None:
            return
        context = dict(self.worst)
        for name, prefix in scope.items():
            context[name] = item_at(self.worst, prefix)
        try:
            compile_expr(text).evaluate(context, budget=STEP_BUDGET)
        except ExprBudgetExceeded:
            self.problems.append(Problem(smap.file, smap.line_of(path), path,
                                         f"式の計算量が多すぎます（世帯員などが最大数のとき {STEP_BUDGET:,} 手順を超えます）: {text}"))
        except Exception:  # noqa: S110 - evaluation never raises on data; anything else is not a cost problem
            pass

    def resolve(self, raw: str, scope: dict[str, str]) -> str:
        head, dot, rest = raw.partition(".")
        base = head[:-2] if head.endswith("[]") else head
        suffix = head[len(base):]
        prefix = scope.get(base) or ALIASES.get(base)
        if prefix is None:
            return raw
        return f"{prefix}{suffix}{dot}{rest}"

    def expr(self, text: str | None, smap: SourceMap, path: str, scope: dict[str, str]) -> list[str]:
        """Check one expression; returns the resolved data paths it reads."""
        if text is None:
            return []
        try:
            compiled = compile_expr(str(text))
        except ExprError as exc:
            self.problems.append(Problem(smap.file, smap.line_of(path), path, f"式の誤り: {exc.message}: {quote_expr(str(text), exc.col)}"))
            return []
        self.cost(str(text), smap, path, scope)
        resolved = []
        for raw in sorted(compiled.paths()):
            if raw in BUILTINS or raw in FUNCTIONS:
                continue
            full = self.resolve(raw, scope)
            if full not in self.known:
                self.unknown_reference(full, raw, smap, path)
            resolved.append(full)
        return resolved

    def list_prefix(self, text: str, smap: SourceMap, path: str, scope: dict[str, str]) -> str:
        """The item path of a list expression (`household.members` → `household.members[]`)."""
        self.expr(text, smap, path, scope)
        try:
            item = compile_expr(text).item_path()
        except ExprError:
            return "?[]"  # already reported by self.expr
        if item is None:
            self.problems.append(Problem(smap.file, smap.line_of(path), path,
                                         "一覧の式は household.members や [m for m in household.members if ...] の形にしてください"))
            return "?[]"
        return self.resolve(item, scope)


def _interview_paths(interview: Interview, smap: SourceMap, problems: list[Problem]) -> dict[str, FieldInfo]:
    fields: dict[str, FieldInfo] = {}
    for si, section in enumerate(interview.sections):
        for fi, fdef in enumerate(section.fields):
            full = f"{section.repeat}[].{fdef.path}" if section.repeat else fdef.path
            if full in fields:
                where = f"sections.{si}.fields.{fi}.path"
                problems.append(Problem(smap.file, smap.line_of(where), where, f"項目 {full} が重複しています"))
                continue
            fields[full] = FieldInfo(full, section, fdef)
    return fields


def _raw_known_paths(data: Any) -> frozenset[str]:
    """Best-effort data paths of an interview.yaml that failed validation."""
    kinds: dict[str, str] = {}
    sections = data.get("sections") if isinstance(data, dict) else None
    for section in sections if isinstance(sections, list) else []:
        if not isinstance(section, dict):
            continue
        repeat = section.get("repeat")
        fields = section.get("fields")
        for fdef in fields if isinstance(fields, list) else []:
            if isinstance(fdef, dict) and isinstance(fdef.get("path"), str):
                full = f"{repeat}[].{fdef['path']}" if isinstance(repeat, str) else fdef["path"]
                kinds[full] = str(fdef.get("kind", ""))
    return _paths_of(kinds)


def _known_paths(fields: dict[str, FieldInfo]) -> frozenset[str]:
    return _paths_of({full: info.field.kind for full, info in fields.items()})


def _paths_of(kinds: dict[str, str]) -> frozenset[str]:
    known: set[str] = set()
    for full, kind in kinds.items():
        candidates = [full]
        if kind == "address":
            candidates += [f"{full}.{part}" for part in ADDRESS_PARTS]
        for cand in candidates:
            known.add(cand)
            parts = cand.split(".")
            for i in range(1, len(parts)):
                prefix = ".".join(parts[:i])
                known.add(prefix)
                if prefix.endswith("[]"):
                    known.add(prefix[:-2])
    return frozenset(known)


def _check_cells(
    cells: Iterable[tuple[str, FormField]], checker: _Checker, smap: SourceMap, scope: dict[str, str]
) -> None:
    for path, cell in cells:
        checker.expr(cell.source, smap, f"{path}.source", scope)
        if cell.transform is not None and cell.transform.startswith(LABEL_PREFIX):
            target = cell.transform[len(LABEL_PREFIX):]
            if checker.choice_paths is not None and target not in checker.choice_paths:
                close = difflib.get_close_matches(target, checker.choice_paths, n=1)
                hint = f"（{close[0]} のことですか）" if close else ""
                checker.problems.append(
                    Problem(smap.file, smap.line_of(f"{path}.transform"), f"{path}.transform",
                            f"label: には interview.yaml の選択肢のある項目を書いてください: {target}{hint}"))
        elif cell.transform is not None and cell.transform not in TRANSFORMS:
            checker.problems.append(
                Problem(smap.file, smap.line_of(f"{path}.transform"), f"{path}.transform",
                        f"未知の変換です: {cell.transform}（使えるもの: {', '.join(sorted(TRANSFORMS))}、"
                        f"label:<聞き取り項目>）")
            )


def _layout_cells(app: Application) -> Iterator[tuple[str, FormField, bool]]:
    """(yaml path, cell, in_table) for every cell of the layout."""
    if app.layout is None:
        return
    for si, section in enumerate(app.layout.sections):
        for ri, row in enumerate(section.rows):
            for ci, cell in enumerate(row.cells):
                yield f"layout.sections.{si}.rows.{ri}.cells.{ci}", cell, False
        if section.table is not None:
            for ci, cell in enumerate(section.table.columns):
                yield f"layout.sections.{si}.table.columns.{ci}", cell, True


def _check_application(
    app_id: str, app: Application, smap: SourceMap, checker: _Checker, defs_dir: Path,
    departments: dict[str, Department] | None, templates: dict[str, bytes],
) -> None:
    problems = checker.problems
    _check_external(app, smap, problems)
    if departments is not None and app.department is not None and app.department not in departments:
        problems.append(Problem(smap.file, smap.line_of("department"), "department",
                                f"departments.yaml にない課です: {app.department}"))
    scope: dict[str, str] = {}
    for i, cond in enumerate(app.applies_when):
        checker.expr(cond.if_, smap, f"applies_when.{i}.if", scope)
    if app.for_each is not None:
        scope[app.for_each.as_] = checker.list_prefix(app.for_each.in_, smap, "for_each.in", scope)
        checker.expr(app.for_each.where, smap, "for_each.where", scope)
        checker.expr(app.for_each.title, smap, "for_each.title", scope)
    checker.expr(app.instance_title, smap, "instance_title", scope)
    for i, role in enumerate(app.roles):
        if role.id in scope or role.id in BUILTINS or role.id in FUNCTIONS:
            problems.append(Problem(smap.file, smap.line_of(f"roles.{i}.id"), f"roles.{i}.id",
                                    f"役割の id「{role.id}」は他の名前と重なっています"))
        checker.expr(role.default, smap, f"roles.{i}.default", scope)
        checker.list_prefix(role.choices, smap, f"roles.{i}.choices", scope)
        # Later roles and every field may name the person: `claimant.birth_date`.
        scope[role.id] = MEMBER
    for i, redirect in enumerate(app.redirect):
        checker.expr(redirect.if_, smap, f"redirect.{i}.if", scope)
    if app.deadline is not None:
        checker.expr(app.deadline.from_, smap, "deadline.from", scope)
    if app.copies is not None:
        checker.expr(app.copies.source, smap, "copies.source", scope)
        if app.fee == 0:
            problems.append(Problem(smap.file, smap.line_of("copies"), "copies",
                                    "copies（通数）を指定したときは fee（1通の手数料）も指定してください"))
    for i, doc in enumerate(app.documents_to_bring):
        checker.expr(doc.when, smap, f"documents_to_bring.{i}.when", scope)
    if app.layout is not None:
        for si, section in enumerate(app.layout.sections):
            base = f"layout.sections.{si}"
            rows = [(f"{base}.rows.{ri}.cells.{ci}", c) for ri, r in enumerate(section.rows)
                    for ci, c in enumerate(r.cells)]
            _check_cells(rows, checker, smap, scope)
            if section.table is not None:
                table_scope = dict(scope)
                table_scope[section.table.as_] = checker.list_prefix(
                    section.table.each, smap, f"{base}.table.each", scope)
                cols = [(f"{base}.table.columns.{ci}", c) for ci, c in enumerate(section.table.columns)]
                _check_cells(cols, checker, smap, table_scope)
    if app.template is not None:
        _check_template(app, smap, checker, defs_dir, templates, scope)
    if app.overlay is not None:
        _check_template(app, smap, checker, defs_dir, templates, scope, template=app.overlay.template,
                        fields=app.overlay.fields, prefix="overlay.")
    _check_signers(app, smap, problems)
    if app.external is None and app.needs_signature and not any(c.style == "signature" for _, c, _ in _layout_cells(app)) \
            and not any(f.style == "signature" for f in app.fields):
        problems.append(Problem(smap.file, smap.line_of("needs_signature"), "needs_signature",
                                "needs_signature が true ですが署名欄（style: signature）がありません"))


def _check_signers(app: Application, smap: SourceMap, problems: list[Problem]) -> None:
    """Every signature box belongs to a declared signer, and every signer after the first has a box of its own."""
    signing = [(i, r) for i, r in enumerate(app.roles) if r.signs]
    signing_ids = {r.id for _, r in signing}
    boxes = [(path, c) for path, c, _ in _layout_cells(app) if c.style == "signature"]
    boxes += [(f"fields.{i}", f) for i, f in enumerate(app.fields) if f.style == "signature"]
    if app.overlay is not None:
        boxes += [(f"overlay.fields.{i}", f) for i, f in enumerate(app.overlay.fields) if f.style == "signature"]
    for path, cell in boxes:
        where = f"{path}.signs_as" if cell.signs_as is not None else path
        if not signing:
            problems.append(Problem(smap.file, smap.line_of(path), path,
                                    f"署名欄「{cell.label or '署名'}」がありますが、署名する方が roles に宣言されていません"
                                    "（届出人・申請者・請求者などの役割に signs: true を付けてください）"))
        elif cell.signs_as is not None and cell.signs_as != "agent" and cell.signs_as not in signing_ids:
            problems.append(Problem(smap.file, smap.line_of(where), where,
                                    f"signs_as には署名する役割（signs: true）の id か agent を指定してください: "
                                    f"{cell.signs_as}（署名する役割: {', '.join(sorted(signing_ids))}）"))
    marked = {c.signs_as for _, c in boxes}
    for i, role in signing[1:]:
        if role.id not in marked:
            problems.append(Problem(smap.file, smap.line_of(f"roles.{i}.signs"), f"roles.{i}.signs",
                                    f"2人目の署名する方「{role.label}」の署名欄がありません"
                                    f"（その方の欄に signs_as: {role.id} を書いてください）"))


def _check_external(app: Application, smap: SourceMap, problems: list[Problem]) -> None:
    """A step outside the city hall has a place and no form; a city form has a department."""
    def report(path: str, message: str) -> None:
        problems.append(Problem(smap.file, smap.line_of(path), path, message))

    if app.external is None:
        if app.department is None:
            report("department", "department（担当課）が必要です（市役所の外の手続きなら external を書きます）")
        return
    for key, present in (("layout", app.layout is not None), ("template", app.template is not None),
                         ("fields", bool(app.fields))):
        if present:
            report(key, f"external（市役所の外の手続き）には {key} は書けません（様式を作りません）")
    if app.department is not None:
        report("department", "external（市役所の外の手続き）に department は書けません（場所は external.place に書きます）")
    if app.needs_signature:
        report("needs_signature", "external（市役所の外の手続き）では needs_signature: false にしてください（署名する様式がありません）")
    if app.copies is not None:
        report("copies", "external（市役所の外の手続き）に copies は書けません")


def _check_template(
    app: Application, smap: SourceMap, checker: _Checker, defs_dir: Path,
    templates: dict[str, bytes], scope: dict[str, str], *, template: str | None = None,
    fields: list[FormField] | None = None, prefix: str = "",
) -> None:
    from pypdf import PdfReader  # only needed for cities that draw onto their own blank PDF
    from pypdf.errors import PdfReadError

    template = template if template is not None else app.template
    fields = fields if fields is not None else app.fields
    assert template is not None
    target = (defs_dir / template).resolve()
    if not target.is_relative_to(defs_dir.resolve()) or not target.is_file():
        checker.problems.append(Problem(smap.file, smap.line_of(f"{prefix}template"), f"{prefix}template",
                                        f"様式PDFが見つかりません: {template}"))
        return
    data = target.read_bytes()
    try:
        pages = PdfReader(io.BytesIO(data)).pages
        sizes = [(float(p.mediabox.width) * 25.4 / 72, float(p.mediabox.height) * 25.4 / 72) for p in pages]
    except (PdfReadError, ValueError, OSError):
        checker.problems.append(Problem(smap.file, smap.line_of(f"{prefix}template"), f"{prefix}template",
                                        f"様式PDFを読めません: {template}"))
        return
    templates[template] = data
    _check_cells(((f"{prefix}fields.{i}", f) for i, f in enumerate(fields)), checker, smap, scope)
    for i, fdef in enumerate(fields):
        place = fdef.place
        assert place is not None
        where = f"{prefix}fields.{i}.place"
        if place.page > len(sizes):
            checker.problems.append(Problem(smap.file, smap.line_of(where), where,
                                            f"様式PDFは {len(sizes)} ページしかありません（page: {place.page}）"))
            continue
        width, height = sizes[place.page - 1]
        if place.x + place.w > width + 0.01 or place.y + place.h > height + 0.01:
            checker.problems.append(Problem(smap.file, smap.line_of(where), where,
                                            f"欄がページの外にはみ出しています（ページは {width:.0f}×{height:.0f}mm）"))


def load_definitions(directory: Path | str) -> DefinitionSet:
    """Load interview.yaml, departments.yaml and applications/*.yaml; raise DefinitionError on any problem."""
    defs_dir = Path(directory)
    problems: list[Problem] = []
    digest = hashlib.sha256()
    if not defs_dir.is_dir():
        raise DefinitionError([Problem(str(defs_dir), 1, "", "様式定義のフォルダがありません")])

    def read(rel: str) -> tuple[Any, SourceMap] | None:
        path = defs_dir / rel
        if not path.is_file():
            problems.append(Problem(rel, 1, "", "ファイルがありません"))
            return None
        digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
        return _read(path, rel, problems)

    interview = None
    fields: dict[str, FieldInfo] = {}
    if (loaded := read("interview.yaml")) is not None:
        interview = _validate(Interview, loaded[0], loaded[1], problems)
        if interview is not None:
            fields = _interview_paths(interview, loaded[1], problems)
    known = _known_paths(fields)
    if interview is None and loaded is not None:
        # The interview has its own problems (reported above): check the applications against the
        # paths it still names, so that one typo there is not echoed by every reference elsewhere.
        known = _raw_known_paths(loaded[0])
    checker = _Checker(known, problems, worst_case_context(interview) if interview is not None and fields else None,
                       choice_paths=[p for p, info in fields.items() if info.field.choices] if interview is not None else None)
    if interview is not None and loaded is not None:
        smap = loaded[1]
        for si, section in enumerate(interview.sections):
            scope = {"item": f"{section.repeat}[]"} if section.repeat else {}
            for fi, fdef in enumerate(section.fields):
                base = f"sections.{si}.fields.{fi}"
                checker.expr(fdef.required_when, smap, f"{base}.required_when", scope)
                checker.expr(fdef.ask_when, smap, f"{base}.ask_when", scope)

    departments: dict[str, Department] | None = None
    calendar = Calendar()
    opening_hours: tuple[Hours, ...] = DefinitionSet.opening_hours
    appointments: dict[str, AppointmentQueue] = {}
    if (loaded := read("departments.yaml")) is not None:
        registry = _validate(Departments, loaded[0], loaded[1], problems)
        if registry is not None:
            calendar = registry.calendar
            departments = {}
            for i, dep in enumerate(registry.departments):
                if dep.id in departments:
                    where = f"departments.{i}.id"
                    problems.append(Problem(loaded[1].file, loaded[1].line_of(where), where,
                                            f"課の id「{dep.id}」が重複しています"))
                departments[dep.id] = dep
            opening_hours = tuple(registry.opening_hours)
            _check_hours(registry.opening_hours, "opening_hours", None, loaded[1], problems)
            appointments = _check_appointments(registry.appointments, departments, fields, loaded[1], problems)

    applications: dict[str, Application] = {}
    maps: dict[str, SourceMap] = {}
    templates: dict[str, bytes] = {}
    app_dir = defs_dir / "applications"
    files = sorted(app_dir.glob("*.yaml")) if app_dir.is_dir() else []
    if not files:
        problems.append(Problem("applications/", 1, "", "申請書の定義（applications/*.yaml）が1つもありません"))
    for path in files:
        rel = f"applications/{path.name}"
        app_id = path.stem
        if (loaded := read(rel)) is None:
            continue
        data, smap = loaded
        if not compile_id(app_id):
            problems.append(Problem(rel, 1, "", f"ファイル名（= 申請書の id）に使える文字は英小文字・数字・_ です: {app_id}"))
            continue
        app = _validate(Application, data, smap, problems)
        if app is None:
            continue
        applications[app_id] = app
        maps[app_id] = smap
        _check_application(app_id, app, smap, checker, defs_dir, departments, templates)

    for app_id, app in applications.items():
        smap = maps[app_id]
        for key in ("after", "requires"):
            for i, dep in enumerate(getattr(app, key)):
                if dep not in applications and not (app_dir / f"{dep}.yaml").exists():
                    problems.append(Problem(smap.file, smap.line_of(f"{key}.{i}"), f"{key}.{i}",
                                            f"{key} に指定した申請書がありません: {dep}"))
                elif dep == app_id:
                    problems.append(Problem(smap.file, smap.line_of(f"{key}.{i}"), f"{key}.{i}",
                                            f"{key} に自分自身は指定できません: {dep}"))
        for i, dep in enumerate(app.requires):
            if dep in app.after:
                problems.append(Problem(smap.file, smap.line_of(f"requires.{i}"), f"requires.{i}",
                                        f"{dep} が after と requires の両方にあります（requires は順序も含みます。"
                                        "after から消してください）"))
    # Both kinds of edges order the slip, so together they must not loop.
    graph = {a: [d for d in (*app.after, *app.requires) if d in applications and d != a]
             for a, app in applications.items()}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        cycle = exc.args[1]
        # In graphlib's cycle each node is a prerequisite of the next; name the key by the edges it uses.
        edges = list(itertools.pairwise(cycle))
        kinds = {"requires" if a in applications[b].requires else "after" for a, b in edges}
        key = "after" if kinds == {"after"} else "requires" if kinds == {"requires"} else "after・requires"
        first = cycle[0]
        line_key = "requires" if key == "requires" or not applications[first].after else "after"
        problems.append(Problem(maps[first].file, maps[first].line_of(line_key), line_key,
                                f"{key} が循環しています: {' → '.join(cycle)}"))

    if problems or interview is None or departments is None:
        raise DefinitionError(problems)
    return DefinitionSet(
        directory=defs_dir,
        interview=interview,
        departments=departments,
        applications=applications,
        fields=fields,
        known_paths=known,
        fingerprint=digest.hexdigest(),
        templates=templates,
        calendar=calendar,
        opening_hours=opening_hours,
        appointments=appointments,
    )


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _check_hours(hours: list[Hours], base: str, slot_minutes: int | None, smap: SourceMap,
                 problems: list[Problem]) -> None:
    """Each period starts before it ends, follows the previous one, and holds at least one slot."""
    previous_end = -1
    for i, period in enumerate(hours):
        where = f"{base}.{i}"
        start, end = _minutes(period.from_), _minutes(period.to)
        if start >= end:
            problems.append(Problem(smap.file, smap.line_of(f"{where}.to"), f"{where}.to",
                                    f"終了（to）は開始（from {period.from_}）より後にしてください"))
            continue
        if start < previous_end:
            problems.append(Problem(smap.file, smap.line_of(f"{where}.from"), f"{where}.from",
                                    "時間帯は前の時間帯の終了より後から、時刻の順に書いてください"))
        if slot_minutes is not None and end - start < slot_minutes:
            problems.append(Problem(smap.file, smap.line_of(where), where,
                                    f"{period.from_}〜{period.to} には {slot_minutes} 分の予約枠が1つも入りません"))
        previous_end = max(previous_end, end)


def _check_appointments(
    items: list[AppointmentQueue], departments: dict[str, Department], fields: dict[str, FieldInfo],
    smap: SourceMap, problems: list[Problem],
) -> dict[str, AppointmentQueue]:
    """Bookable queues: a known department (or "" for the one-stop counter), once each, known life events."""
    out: dict[str, AppointmentQueue] = {}
    info = fields.get("life_events")
    events = [str(c.value) for c in (info.field.choices or [])] if info else []
    for i, item in enumerate(items):
        base = f"appointments.{i}"
        if item.queue and item.queue not in departments:
            problems.append(Problem(smap.file, smap.line_of(f"{base}.queue"), f"{base}.queue",
                                    f"departments にない課です: {item.queue}（総合窓口は \"\"）"))
        elif item.queue in out:
            problems.append(Problem(smap.file, smap.line_of(f"{base}.queue"), f"{base}.queue",
                                    f"予約の待ち列「{item.queue or '総合窓口'}」が重複しています"))
        for j, event in enumerate(item.life_events):
            if events and event not in events:
                problems.append(Problem(smap.file, smap.line_of(f"{base}.life_events.{j}"), f"{base}.life_events.{j}",
                                        f"interview.yaml の life_events にない値です: {event}"))
        _check_hours(item.hours, f"{base}.hours", item.slot_minutes, smap, problems)
        out.setdefault(item.queue, item)
    return out


def compile_id(name: str) -> bool:
    """Whether a file name is a valid application id."""
    return re.fullmatch(r"[a-z][a-z0-9_]*", name) is not None and len(name) <= 64
