"""`requires` (a hard gate) beside `after` (an ordering hint): unknown ids, self, both, and cycles are reported exactly."""

from __future__ import annotations

from pathlib import Path

from tests.forms.test_loader_errors import GOOD_APP, _make, _report

F = "applications/test_app.yaml"


def _with(key_lines: str) -> str:
    return GOOD_APP.replace("legal_basis:", f"{key_lines}\nlegal_basis:")


def test_unknown_required_application(tmp_path: Path) -> None:
    assert f"{F}:3: requires.0: requires に指定した申請書がありません: tennyu" in _report(_make(tmp_path, _with(
        "requires: [tennyu]")))


def test_an_application_cannot_require_itself(tmp_path: Path) -> None:
    assert f"{F}:3: requires.0: requires に自分自身は指定できません: test_app" in _report(_make(tmp_path, _with(
        "requires: [test_app]")))


def test_same_application_in_after_and_requires(tmp_path: Path) -> None:
    root = _make(tmp_path, _with("after: [other]\nrequires: [other]"))
    (root / "applications" / "other.yaml").write_text(GOOD_APP, encoding="utf-8")
    assert _report(root) == [f"{F}:4: requires.0: other が after と requires の両方にあります"
                             "（requires は順序も含みます。after から消してください）"]


def test_cycle_of_requires(tmp_path: Path) -> None:
    root = _make(tmp_path, _with("requires: [other]"), name="one")
    (root / "applications" / "other.yaml").write_text(_with("requires: [one]"), encoding="utf-8")
    lines = _report(root)
    assert len(lines) == 1
    assert lines[0].split(": ", 2)[1] == "requires"
    assert lines[0].endswith(("requires が循環しています: one → other → one",
                              "requires が循環しています: other → one → other"))


def test_cycle_through_after_and_requires(tmp_path: Path) -> None:
    # Each kind alone is acyclic; together they would loop, and both order the slip.
    root = _make(tmp_path, _with("after: [other]"), name="one")
    (root / "applications" / "other.yaml").write_text(_with("requires: [one]"), encoding="utf-8")
    lines = _report(root)
    assert len(lines) == 1 and "after・requires が循環しています: " in lines[0]


def test_requires_that_loads(tmp_path: Path) -> None:
    from app.forms.loader import load_definitions

    root = _make(tmp_path, _with("requires: [other]"), name="one")
    (root / "applications" / "other.yaml").write_text(GOOD_APP, encoding="utf-8")
    defs = load_definitions(root)
    assert defs.applications["one"].requires == ["other"] and defs.applications["one"].after == []
    assert defs.application_order().index("other") < defs.application_order().index("one")
