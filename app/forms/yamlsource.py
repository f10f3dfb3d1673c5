"""Read YAML safely while remembering the line of every value and refusing duplicate keys."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml


@dataclass(frozen=True)
class Problem:
    """One problem found in a definition file, printed as `file:line: path: message`."""

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.path or '(root)'}: {self.message}"


@dataclass
class SourceMap:
    """Dotted path → 1-based line number, for pointing an error at the clerk's YAML line."""

    file: str
    lines: dict[str, int] = field(default_factory=dict)

    def line_of(self, path: str) -> int:
        """Line of the path, or of its nearest ancestor that has one."""
        probe = path
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            probe = probe.rpartition(".")[0]
        return self.lines.get("", 1)


class _Loader(yaml.SafeLoader):
    """SafeLoader whose booleans are only true/false (YAML 1.2): `yes`, `no`, `on`, `off` stay text,
    so an option value written `no` by a clerk is the word "no", not False."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


class YamlError(Exception):
    """The file is not usable YAML; carries the problems found."""

    def __init__(self, problems: list[Problem]):
        super().__init__("\n".join(map(str, problems)))
        self.problems = problems


# Nesting deeper than this is no clerk's form definition; PyYAML's composer would recurse until
# Python's stack runs out (a traceback in `kakanai check`, a 500 from the reload endpoint).
MAX_DEPTH = 50


def _problem_ja(problem: str | None) -> str:
    """PyYAML's English problem text, said in Japanese (the report is in one language)."""
    text = problem or ""
    m = re.fullmatch(r"expected (.+?), but (?:got|found) (.+)", text)
    if m:
        return f"{m.group(1)} があるはずの所に {m.group(2)} があります（括弧・引用符・字下げを確認してください）"
    known = {
        "mapping values are not allowed here": "ここには「キー: 値」を書けません（字下げか、値の中の「: 」を確認してください）",
        "could not find expected ':'": "「:」が見つかりません（「キー: 値」の形にしてください）",
        "found unexpected end of stream": "ファイルが途中で終わっています（引用符や括弧の閉じ忘れ）",
        "found undefined alias": "アンカー・エイリアス（& と *）は使えません",
    }
    if text in known:
        return known[text]
    m = re.fullmatch(r"found character (.+) that cannot start any token", text)
    if m:
        return f"ここに使えない文字 {m.group(1)} があります（タブは字下げに使えません）"
    return "書き方を確認してください（括弧・引用符・字下げ・コロンの後の空白）"


def _check_depth(text: str, file: str) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark else 1
                raise YamlError([Problem(file, line, "", f"入れ子が深すぎます（{MAX_DEPTH}段まで）")])
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _join(base: str, key: str | int) -> str:
    return f"{base}.{key}" if base else str(key)


def load_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse YAML text into plain Python data plus a SourceMap; anchors and aliases are refused."""
    smap = SourceMap(file)
    problems: list[Problem] = []
    loader = _Loader(text)
    try:
        _check_depth(text, file)
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise YamlError([Problem(file, line, "", f"YAMLの書き方に誤りがあります: {_problem_ja(exc.problem)}")]) from None
    except yaml.YAMLError:
        raise YamlError([Problem(file, 1, "", "YAMLとして読めません")]) from None
    except RecursionError:
        raise YamlError([Problem(file, 1, "", f"入れ子が深すぎます（{MAX_DEPTH}段まで）")]) from None
    finally:
        loader.dispose()
    if node is None:
        raise YamlError([Problem(file, 1, "", "ファイルが空です")])

    seen: set[int] = set()

    def build(n: yaml.Node, path: str) -> Any:
        smap.lines.setdefault(path, n.start_mark.line + 1)
        # A node reached twice is an alias; expanding aliases invites "billion laughs" bombs.
        if id(n) in seen and not isinstance(n, yaml.ScalarNode):
            problems.append(Problem(file, n.start_mark.line + 1, path, "アンカー・エイリアス（& と *）は使えません"))
            return None
        seen.add(id(n))
        if isinstance(n, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in n.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    problems.append(Problem(file, key_node.start_mark.line + 1, path, "キーは文字列にしてください"))
                    continue
                if key_node.tag == "tag:yaml.org,2002:merge":
                    problems.append(Problem(file, key_node.start_mark.line + 1, path, "マージキー（<<）は使えません"))
                    continue
                key = str(key_node.value)
                child = _join(path, key)
                if key in out:
                    problems.append(
                        Problem(file, key_node.start_mark.line + 1, child, f"キー「{key}」が重複しています"
                                f"（{smap.lines.get(child, '?')}行目と同じ）")
                    )
                    continue
                smap.lines[child] = key_node.start_mark.line + 1
                out[key] = build(value_node, child)
            return out
        if isinstance(n, yaml.SequenceNode):
            return [build(item, _join(path, i)) for i, item in enumerate(n.value)]
        constructor = _Loader("")
        try:
            return constructor.construct_object(n, deep=True)
        except (yaml.YAMLError, ValueError):
            # e.g. 2025-13-01 looks like a date to YAML but is not one (Python's message is English).
            problems.append(Problem(file, n.start_mark.line + 1, path, f"値を読めません: {n.value}"
                                    "（日付なら存在する日付を 2026-04-01 の形で。文字として使うなら引用符で囲んでください）"))
            return None
        finally:
            constructor.dispose()

    data = build(node, "")
    if problems:
        raise YamlError(problems)
    return data, smap
