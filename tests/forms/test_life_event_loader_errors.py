"""Loader checks of the life-event engine features: external steps, copies, month deadlines, the calendar."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.forms.loader import load_definitions
from tests.forms.test_loader_errors import GOOD_APP, _make, _report

F = "applications/test_app.yaml"
EXTERNAL = """\
title: 相続放棄の申述
legal_basis: 民法 第915条
applies_when:
  - if: "'death' in life_events"
    reason: 亡くなったため
external:
  place: 家庭裁判所
  how: 申述書を出します
deadline:
  within_months: 3
  from: death.died_on
  text: 3か月以内
needs_signature: false
"""
LAYOUT = GOOD_APP[GOOD_APP.index("layout:"):]

CASES: list[tuple[str, str, str]] = [
    ("external with a layout", EXTERNAL + LAYOUT,
     f"{F}:14: layout: external（市役所の外の手続き）には layout は書けません（様式を作りません）"),
    ("external with a department", EXTERNAL.replace("legal_basis:", "department: shimin\nlegal_basis:"),
     f"{F}:2: department: external（市役所の外の手続き）に department は書けません（場所は external.place に書きます）"),
    ("external that wants a signature", EXTERNAL.replace("needs_signature: false\n", ""),
     f"{F}:1: needs_signature: external（市役所の外の手続き）では needs_signature: false にしてください（署名する様式がありません）"),
    ("external url not https", EXTERNAL.replace("  how: 申述書を出します\n", "  how: 申述書を出します\n  url: http://example.jp/\n"),
     f"{F}:9: external.url: https:// で始まるURLを指定してください"),
    ("form without a department", GOOD_APP.replace("department: shimin\n", ""),
     f"{F}:1: department: department（担当課）が必要です（市役所の外の手続きなら external を書きます）"),
    ("deadline in days and months", EXTERNAL.replace("  within_months: 3\n", "  within_months: 3\n  within_days: 90\n"),
     f"{F}:9: deadline: within_days（日数）か within_months（月数）のどちらか一方を指定してください"),
    ("copies without a fee", GOOD_APP.replace("layout:", "copies:\n  source: certificates.juminhyo_copies\nlayout:"),
     f"{F}:7: copies: copies（通数）を指定したときは fee（1通の手数料）も指定してください"),
    ("copies from an unknown path", GOOD_APP.replace("layout:", "fee: 300\ncopies:\n  source: certificates.copies\nlayout:"),
     f"{F}:9: copies.source: 聞き取り項目にないデータを参照しています: certificates.copies"),
    ("copies max zero", GOOD_APP.replace("layout:", "fee: 300\ncopies:\n  source: certificates.juminhyo_copies\n  max: 0\nlayout:"),
     f"{F}:10: copies.max: 1以上にしてください"),
    ("external deadline from an unknown path", EXTERNAL.replace("from: death.died_on", "from: death.buried_on"),
     f"{F}:11: deadline.from: 聞き取り項目にないデータを参照しています: death.buried_on"),
]


def test_a_valid_external_step_loads(tmp_path: Path) -> None:
    defs = load_definitions(_make(tmp_path, EXTERNAL))
    assert defs.applications["test_app"].external is not None


@pytest.mark.parametrize(("name", "text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_life_event_feature_errors(tmp_path: Path, name: str, text: str, expected: str) -> None:
    assert expected in _report(_make(tmp_path, text))


def test_bad_closing_day_in_the_calendar(tmp_path: Path) -> None:
    root = _make(tmp_path)
    deps = root / "departments.yaml"
    text = deps.read_text(encoding="utf-8")
    deps.write_text(text.replace('"12-29", "12-30"', '"12-32", "12-30"'), encoding="utf-8")
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "closed_days:" in t)
    assert _report(root) == [f"departments.yaml:{line}: calendar.closed_days.0: 月-日（例 12-29）の形で指定してください"]
