"""Regenerate the key tables of docs/answers.md from form_definitions/interview.yaml.

    .venv/bin/python scripts/answers_keys.py            rewrite the "### Keys" part of docs/answers.md
    .venv/bin/python scripts/answers_keys.py --check    exit 1 when the file is out of date

The tables sit between the line "<!-- keys:begin -->" and "<!-- keys:end -->"; everything else in the
file is written by hand. tests/forms/test_answers_schema.py runs the check.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.forms.loader import load_definitions  # noqa: E402
from app.forms.schema import InterviewField  # noqa: E402

DOC = ROOT / "docs" / "answers.md"
BEGIN, END = "<!-- keys:begin -->", "<!-- keys:end -->"
KINDS = {"date": "date `2026-04-06`", "address": "address object", "bool": "true / false"}


def _kind(field: InterviewField) -> str:
    values = ", ".join(f"`{c.value}`" for c in field.choices or [])
    if field.kind == "multi_choice":
        return f"list of {values}"
    if field.kind == "choice":
        return f"one of {values}"
    return KINDS.get(field.kind, field.kind)


def _required(field: InterviewField) -> str:
    if field.required:
        return "yes"
    if field.required_when:
        return f"when `{field.required_when}`"
    return ""


def tables() -> str:
    """The markdown key tables, one per interview section, in interview order."""
    defs = load_definitions(ROOT / "form_definitions")
    out: list[str] = []
    seen: set[str] = set()
    for info in defs.fields.values():
        section = info.section
        if section.id in seen:
            continue
        seen.add(section.id)
        out += [f"**{section.title}** (`{section.id}`)", "", "| key | kind | label | required |", "|---|---|---|---|"]
        for path, other in defs.fields.items():
            if other.section.id == section.id:
                cells = (f"`{path}`", _kind(other.field), other.field.label, _required(other.field))
                out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        out.append("")
    return "\n".join(out)


def render(text: str) -> str:
    """The document with its key tables replaced."""
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n\n{tables()}\n{END}{tail}"


def main(argv: list[str]) -> int:
    text = DOC.read_text(encoding="utf-8")
    new = render(text)
    if "--check" in argv:
        if new != text:
            print("docs/answers.md is out of date: run .venv/bin/python scripts/answers_keys.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
