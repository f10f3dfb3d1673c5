"""The mapping file: which column of a city's export fills which answer, and how the value is transformed.

A city edits this YAML for its own export (its column names, date formats, codes); see
samples/moving_in/mapping.yaml. Every problem is reported at once, in Japanese.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.importers.transforms import TRANSFORMS, TransformSpec, parse_steps


class MappingError(ValueError):
    """The mapping file cannot be used; `problems` lists every reason."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class ColumnRule(BaseModel):
    """One column of the export → one answer path (or two, for a name split into family / given)."""

    model_config = ConfigDict(extra="forbid")
    column: str = Field(min_length=1)
    path: str | list[str]
    transform: Any = None
    required: bool = False

    @field_validator("path")
    @classmethod
    def _paths(cls, value: str | list[str]) -> str | list[str]:
        paths = [value] if isinstance(value, str) else value
        if not paths or any(not p or " " in p for p in paths):
            raise ValueError("path は回答文書の項目名（例 move.moved_on）で書いてください")
        return value

    @property
    def paths(self) -> list[str]:
        """The target paths as a list."""
        return [self.path] if isinstance(self.path, str) else list(self.path)

    def steps(self) -> list[TransformSpec]:
        """The parsed transform steps."""
        return parse_steps(self.transform)


class Mapping(BaseModel):
    """A whole mapping file."""

    model_config = ConfigDict(extra="forbid")
    title: str = ""
    format: Literal["csv", "json"] = "csv"
    encoding: str = "utf-8-sig"
    source: str = Field(default="moving_in", pattern=r"^[a-z0-9_]{1,40}$")
    reference: str = Field(min_length=1, description="予約番号の列（同じ番号の行が1世帯）")
    visit_date: ColumnRule
    members: str | None = Field(default=None, description="JSON: 世帯員の配列を持つキー")
    constants: dict[str, Any] = Field(default_factory=dict)
    household: list[ColumnRule] = Field(default_factory=list)
    member: list[ColumnRule] = Field(default_factory=list)


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def load_mapping(path: Path) -> Mapping:
    """Read and check a mapping file; MappingError lists every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError([f"{path}: 対応表を読めません（{exc.__class__.__name__}）"]) from None
    return parse_mapping(text, str(path))


def parse_mapping(text: str, path: str) -> Mapping:
    """Check the YAML text of a mapping (`path` names it in the messages); MappingError lists every problem."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MappingError([f"{path}: YAMLとして読めません: {exc}"]) from None
    if not isinstance(raw, dict):
        raise MappingError([f"{path}: 対応表は項目の集まり（YAMLのマッピング）で書いてください"])
    try:
        mapping = Mapping.model_validate(raw)
    except ValidationError as exc:
        raise MappingError([f"{path}: {_location(e['loc'])}: {e['msg']}" for e in exc.errors()]) from None
    problems: list[str] = []
    for group in ("household", "member"):
        for i, rule in enumerate(getattr(mapping, group)):
            try:
                steps = rule.steps()
            except ValueError as exc:
                problems.append(f"{path}: {group}.{i}.transform: {exc}")
                continue
            splits = [s for s in steps if s.name == "split_name"]
            if len(rule.paths) != (2 if splits else 1):
                problems.append(f"{path}: {group}.{i}.path: split_name には2つ、それ以外は1つの path を書いてください")
    try:
        mapping.visit_date.steps()
    except ValueError as exc:
        problems.append(f"{path}: visit_date.transform: {exc}")
    if mapping.format == "json" and mapping.members is None and mapping.member:
        problems.append(f"{path}: members: JSON では世帯員の配列のキーを書いてください")
    if problems:
        raise MappingError(problems)
    return mapping


__all__ = ["TRANSFORMS", "ColumnRule", "Mapping", "MappingError", "load_mapping", "parse_mapping"]
