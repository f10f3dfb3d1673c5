"""SECURITY.md names the tests behind its claims: every test it names exists, and every section names one."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from app.settings import PROJECT_ROOT

DOC = PROJECT_ROOT / "SECURITY.md"
# `tests/x.py::test_a` or `x.py::test_a` (relative to tests/), then `::test_b` continues the same file.
REF = re.compile(r"`(?:tests/)?([\w/]+\.py)(?:::(test_\w+))?`|`::(test_\w+)`")


def _functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}


def test_every_test_named_in_security_md_exists() -> None:
    named: list[tuple[str, str]] = []
    for section in DOC.read_text(encoding="utf-8").split("\n## ")[1:]:
        current = None
        for m in REF.finditer(section):
            if m.group(1):
                current = m.group(1)
                if m.group(2):
                    named.append((current, m.group(2)))
            elif current is not None:
                named.append((current, m.group(3)))
    assert len(named) > 60
    missing = []
    for file, name in named:
        path = PROJECT_ROOT / "tests" / file
        if not path.is_file() or name not in _functions(path):
            missing.append(f"{file}::{name}")
    assert missing == []


def test_every_section_with_claims_names_a_test() -> None:
    sections = DOC.read_text(encoding="utf-8").split("\n## ")[1:]
    without = [s.splitlines()[0] for s in sections
               if "test_" not in s and not s.startswith(("Reporting a vulnerability",))]
    assert without == []
