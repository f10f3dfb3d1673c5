"""Forms print a choice with the interview's own label (`transform: "label:<interview path>"`), so a city that
rewords a choice in interview.yaml changes every form at once; a label: naming no question with choices is a
loader problem with the file and line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from app.forms.determine import determine
from app.forms.loader import DefinitionError, DefinitionSet, load_definitions
from app.forms.mapping import resolve_form
from app.forms.transforms import CHOICE_LABELS, apply_transform
from app.settings import PROJECT_ROOT
from tests.conftest import MODEL_CASE

OCCUPATION = "household.members[].occupation"


def occupation_cells(defs: DefinitionSet, app_id: str) -> list[str]:
    """The printed occupation cells of every instance of the application, for the model household."""
    answers: dict[str, Any] = json.loads(MODEL_CASE.read_text(encoding="utf-8"))
    found = [i for i in determine(defs, answers) if i.application_id == app_id]
    assert found, app_id
    return [c.text for inst in found for c in resolve_form(defs, inst, case_number="R8-1").cells()
            if c.spec.label in ("職業", "職業・学校")]


def test_label_transform_reads_the_given_labels() -> None:
    ctx = {CHOICE_LABELS: {OCCUPATION: {"employee": "会社員", "student": "学生"}}}
    assert apply_transform(f"label:{OCCUPATION}", "employee", ctx) == "会社員"
    assert apply_transform(f"label:{OCCUPATION}", ["employee", "student"], ctx) == "会社員、学生"
    assert apply_transform(f"label:{OCCUPATION}", "astronaut", ctx) == "astronaut"  # unknown: as stored
    assert apply_transform(f"label:{OCCUPATION}", None, ctx) == ""


def test_shipped_forms_print_the_interview_label(defs: DefinitionSet) -> None:
    assert defs.choice_labels[OCCUPATION]["part_time"] == "パート・アルバイト"
    assert occupation_cells(defs, "jido_teate") == ["会社員"]
    # 保育: the parents (会社員, パート・アルバイト) and the household table.
    assert {"会社員", "パート・アルバイト"} <= set(occupation_cells(defs, "hoiku_nyusho"))


def test_a_reworded_choice_changes_every_form(tmp_path: Path) -> None:
    target = tmp_path / "defs"
    shutil.copytree(PROJECT_ROOT / "form_definitions", target)
    interview = target / "interview.yaml"
    text = interview.read_text(encoding="utf-8")
    assert "{value: employee, label: 会社員}" in text
    interview.write_text(text.replace("{value: employee, label: 会社員}", "{value: employee, label: 会社員（正社員）}"),
                         encoding="utf-8")
    defs = load_definitions(target)
    assert occupation_cells(defs, "jido_teate") == ["会社員（正社員）"]


def test_a_label_transform_naming_no_choice_question_is_reported(tmp_path: Path) -> None:
    target = tmp_path / "defs"
    shutil.copytree(PROJECT_ROOT / "form_definitions", target)
    app_file = target / "applications" / "jido_teate.yaml"
    text = app_file.read_text(encoding="utf-8")
    app_file.write_text(text.replace(f'"label:{OCCUPATION}"', '"label:household.members[].occupatio"'), encoding="utf-8")
    with pytest.raises(DefinitionError) as err:
        load_definitions(target)
    line = next(i for i, t in enumerate(app_file.read_text(encoding="utf-8").splitlines(), 1) if "occupatio\"" in t)
    assert f"applications/jido_teate.yaml:{line}" in str(err.value)
    assert "label: には interview.yaml の選択肢のある項目を書いてください: household.members[].occupatio" in str(err.value)
    assert f"（{OCCUPATION} のことですか）" in str(err.value)
