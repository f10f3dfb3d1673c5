"""Hostile or mistaken definitions (issue 13): bounded expressions, deep YAML, unknown keys that hid
other problems, and one typo in interview.yaml reported once, cause first, in Japanese."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection
from sqlalchemy.orm import Session, sessionmaker

from app.cli import main
from app.forms import expr
from app.forms.loader import DefinitionError, load_definitions
from app.main import create_app
from app.services.definitions import DefinitionRegistry
from app.settings import PROJECT_ROOT, Settings
from tests.conftest import login, make_user
from tests.forms.test_loader_errors import GOOD_APP, _make

# 10^10 iterations if nothing stops it: [0] * 100000 is within the repetition cap, nested once.
LOOP = "sum(sum(1 for b in [0] * 100000) for a in [0] * 100000) > 0"
# Only as expensive as the household is large: fine for the model family, 20^4 steps at max_items.
MEMBERS_4 = ("sum(sum(sum(sum(count(1 for e in household.members) for d in household.members) for c in household.members) "
             "for b in household.members) for a in household.members) > 0")  # 20^5 at max_items


def test_evaluation_stops_at_its_step_budget() -> None:
    started = time.monotonic()
    with pytest.raises(expr.ExprBudgetExceeded):
        expr.compile_expr(LOOP).evaluate({})
    assert time.monotonic() - started < 30  # stopped, not 10^10 steps (about 3 hours)
    assert expr.compile_expr("1 + 1 == 2").steps({}) < 10
    with pytest.raises(expr.ExprBudgetExceeded):
        expr.compile_expr("count(1 for m in household.members)").evaluate(
            {"household": {"members": [{}] * 100}}, budget=50)


@pytest.mark.parametrize("expression", [LOOP, MEMBERS_4])
def test_check_refuses_an_expression_too_costly_at_the_largest_household(tmp_path: Path, expression: str,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    root = _make(tmp_path, GOOD_APP.replace("\"'move_in' in life_events\"", f'"{expression}"'))
    with pytest.raises(DefinitionError) as info:
        load_definitions(root)
    assert f"式の計算量が多すぎます（世帯員などが最大数のとき {expr.STEP_BUDGET:,} 手順を超えます）: {expression}" in str(info.value)
    assert main(["check", str(root)]) == 1
    assert "式の計算量が多すぎます" in capsys.readouterr().out


@pytest.fixture
def defs_dir(tmp_path: Path) -> Path:
    target = tmp_path / "form_definitions"
    shutil.copytree(PROJECT_ROOT / "form_definitions", target)
    return target


@pytest.fixture
def reload_client(settings: Settings, defs_dir: Path, connection: Connection) -> Iterator[TestClient]:
    registry = DefinitionRegistry(defs_dir)
    registry.load()
    application = create_app(settings.model_copy(update={"definitions_dir": defs_dir}), definitions=registry)
    application.state.sessionmaker = sessionmaker(bind=connection, join_transaction_mode="create_savepoint",
                                                  expire_on_commit=False)
    with TestClient(application, raise_server_exceptions=False) as c:
        yield c


def _reload(client: TestClient, db: Session) -> Any:
    make_user(db, "hostile-admin", "admin")
    return client.post("/api/v1/admin/definitions/reload", headers=login(client, "hostile-admin"))


def test_reload_refuses_a_looping_expression(reload_client: TestClient, db: Session, defs_dir: Path) -> None:
    target = defs_dir / "applications" / "jido_teate.yaml"
    text = target.read_text(encoding="utf-8")
    marker = "applies_when:\n  - if: "
    assert marker in text
    start = text.index(marker) + len(marker)
    end = text.index("\n", start)
    target.write_text(text[:start] + f'"{LOOP}"' + text[end:], encoding="utf-8")
    res = _reload(reload_client, db)
    assert res.status_code == 422, res.text[:300]
    assert "式の計算量が多すぎます" in res.json()["report"]


def _deep_yaml(depth: int) -> str:
    return "title: " + "[" * depth + "]" * depth + "\n"


@pytest.mark.parametrize("depth", [200, 5000, 100_000])
def test_deeply_nested_yaml_is_an_error_not_a_crash(tmp_path: Path, depth: int,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    root = _make(tmp_path)
    (root / "applications" / "test_app.yaml").write_text(_deep_yaml(depth), encoding="utf-8")
    with pytest.raises(DefinitionError) as info:
        load_definitions(root)
    assert "入れ子が深すぎます" in str(info.value)
    assert main(["check", str(root)]) == 1
    out = capsys.readouterr()
    assert "入れ子が深すぎます" in out.out and "Traceback" not in out.err


def test_reload_of_deeply_nested_yaml_is_a_422(reload_client: TestClient, db: Session, defs_dir: Path) -> None:
    (defs_dir / "applications" / "jido_teate.yaml").write_text(_deep_yaml(100_000), encoding="utf-8")
    res = _reload(reload_client, db)
    assert res.status_code == 422, res.text[:300]
    assert "入れ子が深すぎます" in res.json()["report"]


# --- reports: the cause first, each independent problem once, in Japanese -----------------------------

def test_an_unknown_key_does_not_hide_the_other_problems_of_its_file(tmp_path: Path) -> None:
    broken = GOOD_APP.replace("legal_basis:", "deadline_days: 14\nlegal_basis:").replace("department: shimin",
                                                                                        "department: somewhere")
    report = _report_of(_make(tmp_path, broken)).splitlines()
    assert any("deadline_days: 未知の項目です" in line for line in report), report
    assert any("department: departments.yaml にない課です: somewhere" in line for line in report), report


def _report_of(root: Path) -> str:
    with pytest.raises(DefinitionError) as info:
        load_definitions(root)
    return str(info.value)


def _interview_typo(defs_dir: Path, old: str, new: str) -> list[str]:
    target = defs_dir / "interview.yaml"
    text = target.read_text(encoding="utf-8")
    assert old in text
    target.write_text(text.replace(old, new, 1), encoding="utf-8")
    return _report_of(defs_dir).splitlines()


def test_a_kind_typo_in_the_interview_is_one_problem_reported_first(defs_dir: Path) -> None:
    report = _interview_typo(defs_dir, "kind: date", "kind: dat")
    assert len(report) == 1, report[:5]  # was 464, the real cause last
    assert report[0].startswith("interview.yaml:") and "kind: 次のいずれかを指定してください" in report[0]
    assert " or " not in report[0]


def test_a_renamed_interview_field_is_one_problem_with_its_places(defs_dir: Path) -> None:
    report = _interview_typo(defs_dir, "path: birth_date", "path: birth_dat")
    assert len(report) == 1, report[:5]  # was 60, one per place that reads the birth date
    assert "birth_dat のことですか" in report[0] and "同じ参照が他に" in report[0]


def test_the_cause_comes_before_its_consequences(defs_dir: Path) -> None:
    # An independent problem in an application stays in the report, after the interview's.
    app = defs_dir / "applications" / "jido_teate.yaml"
    app.write_text(app.read_text(encoding="utf-8").replace("department: kodomo", "department: nowhere", 1),
                   encoding="utf-8")
    report = _interview_typo(defs_dir, "kind: date", "kind: dat")
    assert len(report) == 2, report
    assert report[0].startswith("interview.yaml:") and report[1].startswith("applications/jido_teate.yaml:")


def test_reports_are_in_japanese_and_quote_the_expression(tmp_path: Path) -> None:
    bad_date = GOOD_APP.replace("legal_basis:", "valid_from: 2025-13-01\nlegal_basis:")
    report = _report_of(_make(tmp_path / "a", bad_date))
    assert "month must be" not in report and "2025-13-01" in report
    syntax = GOOD_APP.replace("'move_in' in life_events", "'move_in' in (life_events")
    report = _report_of(_make(tmp_path / "b", syntax))
    assert "「'move_in' in ▶(life_events」" in report and "文字目" not in report
    yaml_error = GOOD_APP.replace("title: テスト届", "title: [テスト届")
    report = _report_of(_make(tmp_path / "c", yaml_error))
    assert "expected" not in report and "but got" not in report
