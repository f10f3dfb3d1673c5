"""Loader checks of the bookable queues and opening hours in departments.yaml: every problem, precisely."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.forms.test_loader_errors import _make, _report

APPOINTMENTS = """
opening_hours:
  - {from: "08:30", to: "17:15"}
appointments:
  - queue: ""
    life_events: [move_in]
    slot_minutes: 30
    capacity: 2
    hours:
      - {from: "09:00", to: "12:00"}
"""


def _with(tmp_path: Path, text: str) -> Path:
    root = _make(tmp_path)
    deps = root / "departments.yaml"
    base = deps.read_text(encoding="utf-8")
    base = base[:base.index("\n# When the office issues tickets")] + "\n"
    deps.write_text(base + text, encoding="utf-8")
    return root


def _line(root: Path, needle: str, nth: int = 0) -> int:
    lines = [i for i, t in enumerate((root / "departments.yaml").read_text(encoding="utf-8").splitlines(), 1)
             if needle in t]
    return lines[nth]


CASES = [
    ("unknown department", APPOINTMENTS.replace('queue: ""', "queue: kodomoo"), "queue: kodomoo",
     "appointments.0.queue: departments にない課です: kodomoo（総合窓口は \"\"）"),
    ("bad time", APPOINTMENTS.replace('"12:00"', '"12:60"'), '"12:60"',
     "appointments.0.hours.0.to: 時:分（例 09:00）の形で指定してください"),
    ("end before start", APPOINTMENTS.replace('"12:00"', '"08:00"'), '"08:00"',
     "appointments.0.hours.0.to: 終了（to）は開始（from 09:00）より後にしてください"),
    ("no slot fits", APPOINTMENTS.replace('"12:00"', '"09:20"'), '"09:20"',
     "appointments.0.hours.0: 09:00〜09:20 には 30 分の予約枠が1つも入りません"),
    ("unknown life event", APPOINTMENTS.replace("[move_in]", "[move_inn]"), "[move_inn]",
     "appointments.0.life_events.0: interview.yaml の life_events にない値です: move_inn"),
    ("zero capacity", APPOINTMENTS.replace("capacity: 2", "capacity: 0"), "capacity: 0",
     "appointments.0.capacity: 1以上にしてください"),
    ("overlapping periods", APPOINTMENTS.replace('      - {from: "09:00", to: "12:00"}\n',
                                                 '      - {from: "09:00", to: "12:00"}\n      - {from: "11:00", to: "13:00"}\n'),
     '"11:00"', "appointments.0.hours.1.from: 時間帯は前の時間帯の終了より後から、時刻の順に書いてください"),
    ("duplicate queue", APPOINTMENTS + APPOINTMENTS[APPOINTMENTS.index("  - queue"):], 'queue: ""',
     "appointments.1.queue: 予約の待ち列「総合窓口」が重複しています"),
    ("opening hours reversed", APPOINTMENTS.replace('"17:15"', '"08:00"'), '"08:00"',
     "opening_hours.0.to: 終了（to）は開始（from 08:30）より後にしてください"),
]


@pytest.mark.parametrize(("name", "text", "needle", "expected"), CASES, ids=[c[0] for c in CASES])
def test_appointment_errors(tmp_path: Path, name: str, text: str, needle: str, expected: str) -> None:
    root = _with(tmp_path, text)
    nth = 1 if name == "duplicate queue" else 0
    assert _report(root) == [f"departments.yaml:{_line(root, needle, nth)}: {expected}"]
