"""A small, safe expression language for form definitions, interpreted from a whitelisted Python AST.

Nothing here ever calls eval/exec/compile: the text is parsed with ``ast.parse`` and the tree is
checked against a whitelist at compile time, then walked by a tiny interpreter. Evaluation never
raises on odd data: missing keys, wrong types and bad arithmetic all yield ``MISSING``.
"""

from __future__ import annotations

import ast
import calendar
import functools
import inspect
import io
import operator
import re
import tokenize
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Any, Self

__all__ = ["FUNCTIONS", "MISSING", "STEP_BUDGET", "Expr", "ExprBudgetExceeded", "ExprError", "Observation", "compile_expr"]

MAX_LENGTH = 2000
MAX_DEPTH = 40
# Cap for "abc" * n style repetition so a typo in a form definition cannot exhaust memory.
_MAX_REPEAT = 100_000
# Evaluation steps (nodes visited, comprehension items) one evaluation may take. The loader checks
# every expression against the largest household the interview allows, so a set that loads never
# reaches it; at run time it is the backstop that keeps a worker from spinning.
STEP_BUDGET = 200_000


class ExprBudgetExceeded(Exception):
    """An evaluation took more than its step budget (a definition problem, never bad data)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        super().__init__(f"式の計算が多すぎます（{budget:,}手順まで）")


class ExprError(ValueError):
    """Compile-time rejection of an expression; ``col`` is a 0-based character index or None."""

    def __init__(self, message: str, col: int | None = None) -> None:
        self.message = message
        self.col = col
        super().__init__(message if col is None else f"{message}（{col + 1}文字目）")


class _Missing:
    """Marker for absent data: falsy and equal to None, so conditions on it are simply false."""

    _instance: _Missing | None = None

    def __new__(cls) -> Self:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __eq__(self, other: object) -> bool:
        return other is None or other is self

    def __hash__(self) -> int:
        return hash(None)

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def _is_none(value: Any) -> bool:
    return value is None or value is MISSING


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def as_date(value: Any) -> date | None:
    """A date from a date, a datetime or an ISO string (a date-time string counts as its date)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    # Date-and-time answers (birth.born_at: 2026-03-30T12:05) count as their date.
    if isinstance(value, str) and _ISO_DATE.fullmatch(value[:10]) and (len(value) == 10 or value[10] == "T"):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _items(value: Any) -> Iterable[Any]:
    """Iterate data collections; absent data counts as empty, scalars are a type error."""
    if _is_none(value):
        return ()
    if isinstance(value, (str, Mapping)) or not isinstance(value, Iterable):
        raise TypeError("not a collection")
    return value


def _is_empty(value: Any) -> bool:
    return _is_none(value) or (isinstance(value, (str, list, tuple, Mapping)) and len(value) == 0)


# ---------------------------------------------------------------- functions


def _ordinary_age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def fn_date(value: Any) -> Any:
    """Convert an ISO date string or date to a date (MISSING if not a date)."""
    d = as_date(value)
    return MISSING if d is None else d


def fn_age_on(birth: Any, on: Any) -> Any:
    """Return the legal age on a day (negative before birth)."""
    b, o = as_date(birth), as_date(on)
    if b is None or o is None:
        return MISSING
    # 年齢計算ニ関スル法律: a year is added at the end of the day before the birthday, so the
    # legal age on a day is the ordinary age on the following day (Feb 29 births age on Feb 28).
    return _ordinary_age(b, o + timedelta(days=1))


def fn_census_period(day: Any) -> Any:
    """Whether a day falls in a 国勢調査 period: April 1 of a census year (divisible by 5) to March 31 of the next.

    出生届・死亡届 ask the parents' (the deceased's) occupation only then (人口動態調査令施行細則).
    """
    d = as_date(day[:10] if isinstance(day, str) else day)
    if d is None:
        return MISSING
    year = d.year if (d.month, d.day) >= (4, 1) else d.year - 1
    return year % 5 == 0


def fn_school_year_age(birth: Any, on: Any) -> Any:
    """Return the age at the start of the school year containing ``on`` (6 = 小1, 12 = 中1, 15 = 高1)."""
    b, o = as_date(birth), as_date(on)
    if b is None or o is None:
        return MISSING
    year = o.year if (o.month, o.day) >= (4, 1) else o.year - 1
    # The age reached by the end of March 31 is the age held when April 1 begins; a child born on
    # April 1 reaches it on March 31 and therefore joins the earlier grade (学校教育法17条).
    return fn_age_on(b, date(year, 3, 31))


def fn_add_days(value: Any, days: Any) -> Any:
    """Return the date ``days`` days after ``value``."""
    d = as_date(value)
    return d + timedelta(days=days) if d is not None and _is_int(days) else MISSING


def fn_add_months(value: Any, months: Any) -> Any:
    """Return the date ``months`` months later, clamping the day to the month's end."""
    d = as_date(value)
    if d is None or not _is_int(months):
        return MISSING
    year, month0 = divmod(d.year * 12 + d.month - 1 + months, 12)
    return date(year, month0 + 1, min(d.day, calendar.monthrange(year, month0 + 1)[1]))


def fn_add_years(value: Any, years: Any) -> Any:
    """Return the date ``years`` years later (Feb 29 becomes Feb 28 in common years)."""
    return fn_add_months(value, years * 12) if _is_int(years) else MISSING


def fn_days_between(a: Any, b: Any) -> Any:
    """Return ``b - a`` in days."""
    da, db = as_date(a), as_date(b)
    return MISSING if da is None or db is None else (db - da).days


def fn_len(value: Any) -> Any:
    """Return the length of a string or collection (0 when absent)."""
    return 0 if _is_none(value) else len(value)


def fn_count(items: Any) -> int:
    """Return the number of truthy items."""
    return sum(1 for item in _items(items) if item)


def fn_any(items: Any) -> bool:
    """Return True if any item is truthy."""
    return any(_items(items))


def fn_all(items: Any) -> bool:
    """Return True if every item is truthy (also for no items)."""
    return all(_items(items))


def fn_sum(items: Any) -> Any:
    """Return the sum of the items, ignoring absent ones."""
    return sum(item for item in _items(items) if not _is_none(item))


def _present(args: tuple[Any, ...]) -> list[Any]:
    values = [v for v in (_items(args[0]) if len(args) == 1 else args) if not _is_none(v)]
    if any(isinstance(v, date) for v in values):
        # Mixed dates and ISO strings compare as dates; anything else fails the comparison.
        values = [as_date(v) or v for v in values]
    return values


def fn_min(*args: Any) -> Any:
    """Return the smallest of an iterable or of several arguments, ignoring absent values."""
    values = _present(args)
    return min(values) if values else MISSING


def fn_max(*args: Any) -> Any:
    """Return the largest of an iterable or of several arguments, ignoring absent values."""
    values = _present(args)
    return max(values) if values else MISSING


def fn_str(value: Any) -> Any:
    """Convert a scalar to text (dates as ISO)."""
    if _is_none(value):
        return MISSING
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (str, int, float)):
        return str(value)
    raise TypeError("not a scalar")


def fn_int(value: Any) -> Any:
    """Convert a number or numeric text to an int."""
    if _is_none(value) or not isinstance(value, (str, int, float)):
        return MISSING
    return int(value)


def fn_first(items: Any) -> Any:
    """Return the first item, or MISSING if there is none."""
    return next(iter(_items(items)), MISSING)


def fn_coalesce(*args: Any) -> Any:
    """Return the first argument that is not absent or empty."""
    return next((arg for arg in args if not _is_empty(arg)), MISSING)


def fn_join(items: Any, sep: str = "") -> Any:
    """Join the non-empty items as text."""
    if not isinstance(sep, str):
        return MISSING
    return sep.join(fn_str(item) for item in _items(items) if not _is_empty(item))


def fn_contains(container: Any, item: Any) -> Any:
    """Return True if ``item`` is in the list or substring of the text ``container``."""
    return _contains(container, item)


FUNCTIONS: Mapping[str, Callable[..., Any]] = MappingProxyType({
    "date": fn_date,
    "age_on": fn_age_on,
    "school_year_age": fn_school_year_age,
    "add_days": fn_add_days,
    "add_months": fn_add_months,
    "add_years": fn_add_years,
    "days_between": fn_days_between,
    "len": fn_len,
    "count": fn_count,
    "any": fn_any,
    "all": fn_all,
    "sum": fn_sum,
    "min": fn_min,
    "max": fn_max,
    "str": fn_str,
    "int": fn_int,
    "first": fn_first,
    "coalesce": fn_coalesce,
    "join": fn_join,
    "contains": fn_contains,
    "census_period": fn_census_period,
})
_SIGNATURES = {name: inspect.signature(fn) for name, fn in FUNCTIONS.items()}
# Only these stop early; other functions get a list so they never see (or return) a generator.
_LAZY_FUNCTIONS = frozenset({"any", "all", "first"})

# ---------------------------------------------------------------- operators

_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_ORDERING: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_COMPARE_OPS = (*_ORDERING, ast.Eq, ast.NotEq, ast.In, ast.NotIn)
_DATA_ERRORS = (TypeError, ValueError, ArithmeticError)


def _binop(op: ast.operator, left: Any, right: Any) -> Any:
    if _is_none(left) or _is_none(right):
        return MISSING
    if isinstance(op, ast.Mod) and isinstance(left, str):
        return MISSING  # printf-style formatting could allocate arbitrarily large strings
    if isinstance(op, ast.Mult):
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, (str, list, tuple)) and _is_int(times) and len(seq) * times > _MAX_REPEAT:
                return MISSING
    try:
        return _BINOPS[type(op)](left, right)
    except _DATA_ERRORS:
        return MISSING


def _contains(container: Any, item: Any) -> Any:
    item = None if item is MISSING else item
    if _is_none(container):
        return False
    if isinstance(container, str):
        return item in container if isinstance(item, str) else MISSING
    if isinstance(container, (list, tuple, Mapping)):
        try:
            return item in container
        except TypeError:  # unhashable key for a mapping
            return MISSING
    return MISSING


def _compare(op: ast.cmpop, left: Any, right: Any) -> Any:
    left = None if left is MISSING else left
    right = None if right is MISSING else right
    if isinstance(op, (ast.In, ast.NotIn)):
        found = _contains(right, left)
        return found if found is MISSING or isinstance(op, ast.In) else not found
    if isinstance(left, date) and isinstance(right, str):
        right = as_date(right) or right
    elif isinstance(right, date) and isinstance(left, str):
        left = as_date(left) or left
    if isinstance(op, ast.Eq):
        return left == right
    if isinstance(op, ast.NotEq):
        return left != right
    if left is None or right is None:
        return False
    try:
        return _ORDERING[type(op)](left, right)
    except TypeError:
        return MISSING


# ---------------------------------------------------------------- compile-time checks

_NODE_NAMES: dict[type[ast.AST], str] = {
    ast.Lambda: "ラムダ式",
    ast.NamedExpr: "代入式（:=）",
    ast.JoinedStr: "f文字列",
    ast.FormattedValue: "f文字列",
    ast.Dict: "辞書リテラル",
    ast.Set: "集合リテラル",
    ast.DictComp: "辞書内包表記",
    ast.SetComp: "集合内包表記",
    ast.Starred: "スター式（*）",
    ast.Slice: "スライス",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield from",
}
_OP_NAMES: dict[type[ast.AST], str] = {
    ast.Pow: "**（べき乗）",
    ast.MatMult: "@",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.Invert: "~",
    ast.UAdd: "単項 +",
    ast.Is: "is（== None を使ってください）",
    ast.IsNot: "is not（!= None を使ってください）",
}


def _char_col(source: str, node: ast.AST) -> int | None:
    """Convert the AST's (line, UTF-8 byte offset) to a character index into ``source``."""
    lineno, byte_col = getattr(node, "lineno", None), getattr(node, "col_offset", None)
    if lineno is None or byte_col is None:
        return None
    lines = source.split("\n")
    prefix = sum(len(line) + 1 for line in lines[: lineno - 1])
    return prefix + len(lines[lineno - 1].encode()[:byte_col].decode(errors="ignore"))


class _Checker:
    """Walks the parsed tree and rejects everything outside the whitelist."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, message: str, node: ast.AST) -> ExprError:
        return ExprError(message, _char_col(self.source, node))

    def name(self, name: str, node: ast.AST) -> None:
        if name.startswith("_"):
            raise self.fail(f"「_」で始まる名前は使えません: {name}", node)

    def check(self, node: ast.AST, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise self.fail(f"式の入れ子が深すぎます（{MAX_DEPTH}段まで）", node)
        inner = depth + 1
        if isinstance(node, ast.Constant):
            if node.value is not None and type(node.value) not in (str, int, float, bool):
                raise self.fail(f"使えない値です: {node.value!r}", node)
        elif isinstance(node, ast.Name):
            self.name(node.id, node)
        elif isinstance(node, ast.Attribute):
            self.name(node.attr, node)
            self.check(node.value, inner)
        elif isinstance(node, ast.Subscript):
            if _subscript_key(node) is None:
                raise self.fail("[ ] の中には数字か文字列の定数だけが書けます", node)
            self.check(node.value, inner)
        elif isinstance(node, (ast.UnaryOp, ast.BinOp, ast.Compare)):
            ops = [node.op] if not isinstance(node, ast.Compare) else node.ops
            allowed = (ast.Not, ast.USub, *_BINOPS, *_COMPARE_OPS)
            for op in ops:
                if not isinstance(op, allowed):
                    raise self.fail(f"使えない演算子です: {_OP_NAMES.get(type(op), type(op).__name__)}", node)
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.check(child, inner)
        elif isinstance(node, (ast.BoolOp, ast.IfExp, ast.List, ast.Tuple)):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.check(child, inner)
        elif isinstance(node, ast.Call):
            self.call(node, inner)
        elif isinstance(node, ast.ListComp):
            # A list comprehension is a value (e.g. the rows of a table: [m for m in xs if ...]).
            self.comprehension(node, inner)
        elif isinstance(node, ast.GeneratorExp):
            raise self.fail("内包表記は関数の引数としてだけ使えます（例: any(m.age >= 65 for m in xs)）", node)
        else:
            label = _NODE_NAMES.get(type(node), type(node).__name__)
            raise self.fail(f"使えない構文です: {label}", node)

    def call(self, node: ast.Call, inner: int) -> None:
        func = node.func
        if isinstance(func, ast.Attribute):
            raise self.fail(f"メソッド呼び出しは使えません: .{func.attr}()", node)
        if not isinstance(func, ast.Name):
            raise self.fail("関数名でないものは呼び出せません", node)
        self.name(func.id, func)
        if func.id not in FUNCTIONS:
            raise self.fail(f"未知の関数です: {func.id}", node)
        if node.keywords:
            keyword = node.keywords[0]
            raise self.fail(f"キーワード引数は使えません: {keyword.arg or '**'}", keyword)
        for arg in node.args:
            if isinstance(arg, (ast.GeneratorExp, ast.ListComp)):
                self.comprehension(arg, inner)
            else:
                self.check(arg, inner)
        try:
            _SIGNATURES[func.id].bind(*node.args)
        except TypeError:
            raise self.fail(f"関数 {func.id} の引数の数が正しくありません（{len(node.args)}個）", node) from None

    def comprehension(self, node: ast.GeneratorExp | ast.ListComp, depth: int) -> None:
        if len(node.generators) != 1:
            raise self.fail("内包表記の for は1つまでです", node)
        gen = node.generators[0]
        if gen.is_async or not isinstance(gen.target, ast.Name):
            raise self.fail("内包表記の変数は名前1つにしてください（例: for m in xs）", gen.target)
        self.name(gen.target.id, gen.target)
        for child in (gen.iter, *gen.ifs, node.elt):
            self.check(child, depth + 1)


def _subscript_key(node: ast.Subscript) -> int | str | None:
    key = node.slice
    if isinstance(key, ast.UnaryOp) and isinstance(key.op, ast.USub) and isinstance(key.operand, ast.Constant):
        value = key.operand.value
        return -value if _is_int(value) else None
    if isinstance(key, ast.Constant) and (_is_int(key.value) or isinstance(key.value, str)):
        return key.value
    return None


def _check_brackets(text: str) -> None:
    """Reject deep parenthesis nesting, which leaves no trace in the AST."""
    depth = 0
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type != tokenize.OP:
                continue
            if token.string in ("(", "[", "{"):
                depth += 1
                if depth > MAX_DEPTH:
                    col = sum(len(line) + 1 for line in text.split("\n")[: token.start[0] - 1]) + token.start[1]
                    raise ExprError(f"括弧の入れ子が深すぎます（{MAX_DEPTH}段まで）", col)
            elif token.string in (")", "]", "}"):
                depth -= 1
    except (tokenize.TokenError, SyntaxError):
        pass  # ast.parse already accepted the text; tokenizer quirks are not worth failing on


# ---------------------------------------------------------------- static paths


def _static_path(node: ast.expr, scope: Mapping[str, str | None]) -> str | None:
    if isinstance(node, ast.Name):
        return scope.get(node.id, node.id)
    if isinstance(node, ast.Attribute):
        base = _static_path(node.value, scope)
        return f"{base}.{node.attr}" if base else None
    if isinstance(node, ast.Subscript):
        base, key = _static_path(node.value, scope), _subscript_key(node)
        return None if not base else f"{base}.{key}" if isinstance(key, str) else f"{base}[]"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "first" and node.args:
        base = _static_path(node.args[0], scope)
        return f"{base}[]" if base else None
    return None


def _collect_paths(node: ast.AST, scope: Mapping[str, str | None], out: set[str]) -> None:
    if isinstance(node, (ast.Name, ast.Attribute, ast.Subscript)):
        path = _static_path(node, scope)
        while path and path.endswith("[]"):
            path = path[:-2]  # using a whole item (m, x[0]) reads the collection it came from
        if path:
            out.add(path)
        root = node
        while isinstance(root, (ast.Attribute, ast.Subscript)):
            root = root.value
        if not isinstance(root, ast.Name):
            _collect_paths(root, scope, out)
    elif isinstance(node, (ast.GeneratorExp, ast.ListComp)):
        gen = node.generators[0]
        _collect_paths(gen.iter, scope, out)
        base = _static_path(gen.iter, scope)
        target = gen.target.id if isinstance(gen.target, ast.Name) else ""
        inner = {**scope, target: f"{base}[]" if base else None}
        for child in (*gen.ifs, node.elt):
            _collect_paths(child, inner, out)
    elif isinstance(node, ast.Call):
        for arg in node.args:  # the function name itself is not data
            _collect_paths(arg, scope, out)
    else:
        for child in ast.iter_child_nodes(node):
            _collect_paths(child, scope, out)


# ---------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class Observation:
    """One data lookup or function result seen while evaluating (MISSING shown as None)."""

    path: str
    value: Any


_Ref = tuple[Any, "str | None"]
_Scope = Mapping[str, _Ref]


class _Evaluator:
    """Walks a checked tree; labels (concrete paths) are only built when explaining."""

    def __init__(self, context: Mapping[str, Any], recording: bool, budget: int = STEP_BUDGET) -> None:
        self.context = context
        self.recording = recording
        self.observations: dict[str, Any] = {}
        self.budget = budget
        self.left = budget

    def observe(self, label: str, value: Any) -> None:
        self.observations.setdefault(label, None if value is MISSING else value)

    def run(self, node: ast.expr, scope: _Scope) -> Any:
        return self.ref(node, scope)[0]

    def ref(self, node: ast.expr, scope: _Scope, record: bool = True) -> _Ref:
        """Evaluate ``node``; for data lookups and calls also return its concrete path."""
        self.left -= 1
        if self.left < 0:
            raise ExprBudgetExceeded(self.budget)
        if isinstance(node, ast.Name):
            if node.id in scope:
                value, label = scope[node.id]
                # A whole record bound by a comprehension was already read by iterating; repeating
                # it would bury the fields that actually decided, so only scalar items are shown.
                record = record and not isinstance(value, (Mapping, list, tuple))
            else:
                value = self.context.get(node.id, MISSING)
                label = node.id if self.recording else None
        elif isinstance(node, ast.Attribute):
            base, base_label = self.ref(node.value, scope, record=False)
            value = base.get(node.attr, MISSING) if isinstance(base, Mapping) else MISSING
            label = f"{base_label}.{node.attr}" if base_label else None
        elif isinstance(node, ast.Subscript):
            base, base_label = self.ref(node.value, scope, record=False)
            key = _subscript_key(node)
            if isinstance(key, str):
                value = base.get(key, MISSING) if isinstance(base, Mapping) else MISSING
                label = f"{base_label}.{key}" if base_label else None
            else:
                assert key is not None
                ok = isinstance(base, (list, tuple, str)) and -len(base) <= key < len(base)
                value = base[key] if ok else MISSING
                index = key % len(base) if ok else key
                label = f"{base_label}[{index}]" if base_label else None
        elif isinstance(node, ast.Call):
            return self.call(node, scope)
        else:
            return self.other(node, scope), None
        if record and label is not None:
            self.observe(label, value)
        return value, label

    def other(self, node: ast.expr, scope: _Scope) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.List):
            return [self.run(element, scope) for element in node.elts]
        if isinstance(node, ast.Tuple):
            return tuple(self.run(element, scope) for element in node.elts)
        if isinstance(node, ast.BoolOp):
            want = isinstance(node.op, ast.Or)  # `or` stops at the first truthy value, `and` at a falsy one
            value: Any = None
            for operand in node.values:
                value = self.run(operand, scope)
                if bool(value) is want:
                    break
            return value
        if isinstance(node, ast.UnaryOp):
            operand = self.run(node.operand, scope)
            if isinstance(node.op, ast.Not):
                return not operand
            if _is_none(operand):
                return MISSING
            try:
                return -operand
            except _DATA_ERRORS:
                return MISSING
        if isinstance(node, ast.BinOp):
            return _binop(node.op, self.run(node.left, scope), self.run(node.right, scope))
        if isinstance(node, ast.Compare):
            left = self.run(node.left, scope)
            for op, comparator in zip(node.ops, node.comparators, strict=True):
                right = self.run(comparator, scope)
                result = _compare(op, left, right)
                if not result:
                    return result
                left = right
            return True
        if isinstance(node, ast.IfExp):
            return self.run(node.body if self.run(node.test, scope) else node.orelse, scope)
        if isinstance(node, ast.ListComp):
            return list(self.comprehension(node, scope))
        raise TypeError(f"unchecked node {type(node).__name__}")  # the checker should make this unreachable

    def comprehension(self, node: ast.GeneratorExp | ast.ListComp, scope: _Scope) -> Iterator[Any]:
        gen = node.generators[0]
        assert isinstance(gen.target, ast.Name)
        source, label = self.ref(gen.iter, scope)
        try:
            items = list(_items(source))
        except TypeError:
            items = []  # iterating a scalar is a data problem, not a programming error
        return self._iterate(node, scope, gen.target.id, items, label)

    def _iterate(self, node: ast.GeneratorExp | ast.ListComp, scope: _Scope, name: str,
                 items: list[Any], label: str | None) -> Iterator[Any]:
        gen = node.generators[0]
        for index, item in enumerate(items):
            inner = {**scope, name: (item, f"{label}[{index}]" if label else None)}
            if all(self.run(condition, inner) for condition in gen.ifs):
                yield self.run(node.elt, inner)

    def call(self, node: ast.Call, scope: _Scope) -> _Ref:
        assert isinstance(node.func, ast.Name)
        name = node.func.id
        args: list[Any] = []
        labels: list[str] = []
        for arg in node.args:
            if isinstance(arg, (ast.GeneratorExp, ast.ListComp)):
                items = self.comprehension(arg, scope)
                lazy = isinstance(arg, ast.GeneratorExp) and name in _LAZY_FUNCTIONS
                args.append(items if lazy else list(items))
                # A comprehension has no single concrete path; show its source instead.
                text = ast.unparse(arg) if self.recording else ""
                sole_generator = isinstance(arg, ast.GeneratorExp) and len(node.args) == 1
                labels.append(text[1:-1] if sole_generator else text)
            else:
                value, label = self.ref(arg, scope)
                args.append(value)
                labels.append(label or (ast.unparse(arg) if self.recording else ""))
        try:
            result = FUNCTIONS[name](*args)
        except _DATA_ERRORS:
            result = MISSING
        if not self.recording:
            return result, None
        label = f"{name}({', '.join(labels)})"
        self.observe(label, result)
        return result, label


@dataclass(frozen=True)
class Expr:
    """A compiled, immutable expression."""

    source: str
    _tree: ast.expr = field(repr=False, compare=False)
    _paths: frozenset[str] = field(repr=False, compare=False)

    def evaluate(self, context: Mapping[str, Any], *, budget: int = STEP_BUDGET) -> Any:
        """Evaluate against a context; never raises on data (MISSING instead), ExprBudgetExceeded past the budget."""
        return _Evaluator(context, recording=False, budget=budget).run(self._tree, {})

    def steps(self, context: Mapping[str, Any], *, budget: int = STEP_BUDGET) -> int:
        """How many steps an evaluation against this context takes (ExprBudgetExceeded past the budget)."""
        evaluator = _Evaluator(context, recording=False, budget=budget)
        evaluator.run(self._tree, {})
        return budget - evaluator.left

    def explain(self, context: Mapping[str, Any]) -> tuple[Any, list[Observation]]:
        """Evaluate and also return every data lookup and function result, in evaluation order."""
        evaluator = _Evaluator(context, recording=True)
        value = evaluator.run(self._tree, {})
        return value, [Observation(path, seen) for path, seen in evaluator.observations.items()]

    def paths(self) -> frozenset[str]:
        """Return the dotted data paths the expression reads ("household.members[].birth_date")."""
        return self._paths

    def item_path(self) -> str | None:
        """For a list expression, the path of its items: `household.members` and
        `[m for m in household.members if ...]` both give "household.members[]"."""
        node = self._tree
        if isinstance(node, ast.ListComp):
            gen = node.generators[0]
            if not (isinstance(node.elt, ast.Name) and isinstance(gen.target, ast.Name)
                    and node.elt.id == gen.target.id):
                return None
            node = gen.iter
        path = _static_path(node, {})
        return f"{path}[]" if path else None


@functools.lru_cache(maxsize=1024)
def compile_expr(text: str) -> Expr:
    """Parse and check an expression; raise ExprError (Japanese message) if it is not allowed."""
    if len(text) > MAX_LENGTH:
        raise ExprError(f"式が長すぎます（{len(text)}文字、{MAX_LENGTH}文字まで）")
    stripped = text.strip()
    lead = len(text) - len(text.lstrip())
    if not stripped:
        raise ExprError("式が空です")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. invalid escape sequences in string literals
            tree = ast.parse(stripped, mode="eval")
    except SyntaxError as error:
        col = None
        if error.lineno is not None and error.offset is not None:
            lines = stripped.split("\n")
            col = lead + sum(len(line) + 1 for line in lines[: error.lineno - 1]) + max(error.offset - 1, 0)
        if "too many nested" in str(error.msg):
            raise ExprError(f"括弧の入れ子が深すぎます（{MAX_DEPTH}段まで）", col) from None
        raise ExprError("式の構文が正しくありません", col) from None
    except (ValueError, RecursionError, MemoryError):
        raise ExprError("式の構文が正しくありません") from None
    try:
        _check_brackets(stripped)
        _Checker(stripped).check(tree.body, 1)
    except ExprError as error:
        raise ExprError(error.message, None if error.col is None else error.col + lead) from None
    paths: set[str] = set()
    _collect_paths(tree.body, {}, paths)
    return Expr(text, tree.body, frozenset(paths))
