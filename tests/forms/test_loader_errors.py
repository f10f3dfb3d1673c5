"""Broken definition files: every problem is reported at once, as `file:line: path: message`.

Each case starts from a small valid set (the shipped interview.yaml and departments.yaml plus one
application written here) and breaks one thing; the expected report line is exact.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from app.forms.loader import DefinitionError, load_definitions
from app.settings import PROJECT_ROOT

GOOD_APP = """\
title: テスト届
department: shimin
legal_basis: テスト法 第1条
applies_when:
  - if: "'move_in' in life_events"
    reason: 転入したため
layout:
  sections:
    - title: 届出人
      rows:
        - cells:
            - {label: 氏名, source: head, transform: full_name, kind: name}
            - {label: 署名, style: signature}
roles:
  - id: notifier
    label: 届出人
    default: head
    signs: true
"""


def _make(tmp_path: Path, app_text: str = GOOD_APP, name: str = "test_app") -> Path:
    root = tmp_path / "defs"
    (root / "applications").mkdir(parents=True)
    for f in ("interview.yaml", "departments.yaml"):
        shutil.copy(PROJECT_ROOT / "form_definitions" / f, root / f)
    (root / "applications" / f"{name}.yaml").write_text(textwrap.dedent(app_text), encoding="utf-8")
    return root


def _report(root: Path) -> list[str]:
    with pytest.raises(DefinitionError) as info:
        load_definitions(root)
    return str(info.value).splitlines()


def test_the_good_fixture_loads(tmp_path: Path) -> None:
    defs = load_definitions(_make(tmp_path))
    assert list(defs.applications) == ["test_app"]


F = "applications/test_app.yaml"
CASES: list[tuple[str, str, str]] = [
    ("duplicate key", GOOD_APP.replace("department: shimin\n", "department: shimin\ndepartment: kodomo\n"),
     f"{F}:3: department: キー「department」が重複しています（2行目と同じ）"),
    ("yaml syntax", GOOD_APP.replace("title: テスト届", "title: [テスト届"),
     f"{F}:2: (root): YAMLの書き方に誤りがあります: ',' or ']' があるはずの所に ':' があります（括弧・引用符・字下げを確認してください）"),
    ("unknown key", GOOD_APP.replace("legal_basis:", "legal_bases:"),
     f"{F}:3: legal_bases: 未知の項目です（綴りを確認してください）"),
    ("missing title", GOOD_APP.replace("title: テスト届\n", ""),
     f"{F}:1: title: 必須の項目がありません"),
    ("unknown department", GOOD_APP.replace("department: shimin", "department: somewhere"),
     f"{F}:2: department: departments.yaml にない課です: somewhere"),
    ("bad expression syntax", GOOD_APP.replace("'move_in' in life_events", "'move_in' in (life_events"),
     f"{F}:5: applies_when.0.if: 式の誤り: 式の構文が正しくありません: 「'move_in' in ▶(life_events」"),
    ("malicious expression", GOOD_APP.replace("'move_in' in life_events", "__import__('os')"),
     f"{F}:5: applies_when.0.if: 式の誤り: 「_」で始まる名前は使えません: __import__: 「▶__import__('os')」"),
    ("unknown function", GOOD_APP.replace("'move_in' in life_events", "eval('1')"),
     f"{F}:5: applies_when.0.if: 式の誤り: 未知の関数です: eval: 「▶eval('1')」"),
    ("unknown data path", GOOD_APP.replace("'move_in' in life_events", "household.pets > 0"),
     f"{F}:5: applies_when.0.if: 聞き取り項目にないデータを参照しています: household.pets"),
    ("unknown member field", GOOD_APP.replace("source: head, transform", "source: head.blood_type, transform"),
     f"{F}:12: layout.sections.0.rows.0.cells.0.source: 聞き取り項目にないデータを参照しています: head.blood_type"),
    ("unknown transform", GOOD_APP.replace("transform: full_name", "transform: fullname"),
     f"{F}:12: layout.sections.0.rows.0.cells.0.transform: 未知の変換です: fullname（使えるもの: account_type, "
     "address, address_with_postal, age, country, country_or_text, digits, full_name, full_name_kana, hiragana, insurance, kana, "
     "kinship, occupation, postal, register_name, relationship, seireki, sex, wareki, wareki_short, yen, yes_no、label:<聞き取り項目>）"),
    ("bad kind", GOOD_APP.replace("kind: name}", "kind: nickname}"),
     f"{F}:12: layout.sections.0.rows.0.cells.0.kind: 次のいずれかを指定してください: 'name', 'kana', "
     "'address', 'birth_date', 'date', 'phone', 'my_number', 'postal_code', 'bank', 'text', 'check', "
     "'signature', 'blank'"),
    ("comb without boxes", GOOD_APP.replace("kind: name}", "kind: name, style: comb}"),
     f"{F}:12: layout.sections.0.rows.0.cells.0: style: comb には boxes（マスの数）が必要です"),
    ("check without options", GOOD_APP.replace("kind: name}", "kind: name, style: check}"),
     f"{F}:12: layout.sections.0.rows.0.cells.0: style: check には options（選択肢）が必要です"),
    ("negative width", GOOD_APP.replace("kind: name}", "kind: name, width: -1}"),
     f"{F}:12: layout.sections.0.rows.0.cells.0.width: 0より大きくしてください"),
    ("empty applies_when", GOOD_APP.replace(
        "applies_when:\n  - if: \"'move_in' in life_events\"\n    reason: 転入したため\n", "applies_when: []\n"),
     f"{F}:4: applies_when: 少なくとも1つ必要です"),
    ("no layout or template", GOOD_APP.split("layout:")[0],
     f"{F}:1: (root): layout（様式の配置）か template（公式様式PDF）のどちらかが必要です"),
    ("validity reversed", GOOD_APP.replace("legal_basis:", "valid_from: 2025-01-01\nvalid_to: 2024-01-01\nlegal_basis:"),
     f"{F}:1: (root): valid_from が valid_to より後になっています"),
    ("bad date", GOOD_APP.replace("legal_basis:", "valid_from: 2025-13-01\nlegal_basis:"),
     f"{F}:3: valid_from: 値を読めません: 2025-13-01"
     "（日付なら存在する日付を 2026-04-01 の形で。文字として使うなら引用符で囲んでください）"),
    ("unknown after", GOOD_APP.replace("legal_basis:", "after: [tennyu]\nlegal_basis:"),
     f"{F}:3: after.0: after に指定した申請書がありません: tennyu"),
    ("signature missing", GOOD_APP.replace("            - {label: 署名, style: signature}\n", ""),
     f"{F}:1: needs_signature: needs_signature が true ですが署名欄（style: signature）がありません"),
    ("alias bomb", GOOD_APP + "x: &a [1]\ny: *a\n",
     f"{F}:19: y: アンカー・エイリアス（& と *）は使えません"),
    ("missing template", GOOD_APP.split("layout:")[0] + "template: blank.pdf\nfields:\n"
     "  - {label: 氏名, source: head, transform: full_name, place: {x: 10, y: 10, w: 50, h: 8}}\n"
     "  - {label: 署名, style: signature, place: {x: 10, y: 30, w: 50, h: 8}}\n",
     f"{F}:7: template: 様式PDFが見つかりません: blank.pdf"),
    ("source and value", GOOD_APP.replace("kind: name}", "kind: name, value: 固定}"),
     f"{F}:12: layout.sections.0.rows.0.cells.0: source と value は同時に指定できません"),
]


@pytest.mark.parametrize(("name", "text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_broken_definition_reports_file_line_and_path(tmp_path: Path, name: str, text: str, expected: str) -> None:
    assert expected in _report(_make(tmp_path, text))


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    broken = GOOD_APP.replace("department: shimin", "department: nowhere").replace("transform: full_name",
                                                                                   "transform: nope")
    root = _make(tmp_path, broken)
    (root / "applications" / "second.yaml").write_text("title: [\n", encoding="utf-8")
    lines = _report(root)
    assert len(lines) == 3
    assert lines[0].startswith("applications/second.yaml:")
    assert any("departments.yaml にない課です: nowhere" in line for line in lines)
    assert any("未知の変換です: nope" in line for line in lines)


def test_cycle_in_after_is_reported(tmp_path: Path) -> None:
    root = _make(tmp_path, GOOD_APP.replace("legal_basis:", "after: [other]\nlegal_basis:"), name="one")
    (root / "applications" / "other.yaml").write_text(
        GOOD_APP.replace("legal_basis:", "after: [one]\nlegal_basis:"), encoding="utf-8")
    lines = _report(root)
    assert any("after が循環しています" in line for line in lines)


def test_bad_file_name_and_interview_errors(tmp_path: Path) -> None:
    root = _make(tmp_path, name="Bad-Name")
    interview = (root / "interview.yaml").read_text(encoding="utf-8")
    (root / "interview.yaml").write_text(interview.replace("kind: phone", "kind: telephone"), encoding="utf-8")
    lines = _report(root)
    assert any(line.startswith("applications/Bad-Name.yaml:1: (root): ファイル名") for line in lines)
    assert any(line.startswith("interview.yaml:") and "sections.1.fields.7.kind" in line for line in lines)
