"""The city's survey of a family moving in the old way: the baseline every figure is compared with.

Copied (version 1) from `survey_baseline` in the shared benchmark household
`cases/model_move_in_family.json` (あまがさき共創DXプラン2.0 素案, 重点取組1, 窓口体験調査) so that the
service never reads files outside the repository at run time; tests/services/test_metrics.py checks
that the copy still matches the shared file.
"""

from __future__ import annotations

VERSION = 1
SOURCE = "あまがさき共創DXプラン2.0 素案, 重点取組1, 窓口体験調査（転入する家族）"

SURVEY_BASELINE: dict[str, int] = {
    "departments_visited": 8,
    "number_tickets": 3,
    "staff_dealt_with": 8,
    "name_written": 28,
    "address_written": 9,
    "birth_date_written": 16,
    "phone_written": 13,
    "pamphlets_received": 10,
    "total_minutes": 138,
}

# (key in SURVEY_BASELINE, Japanese label, key in the service's visit figures)
COMPARISON_ROWS: tuple[tuple[str, str, str], ...] = (
    ("departments_visited", "立ち寄った窓口", "counters_visited"),
    ("number_tickets", "整理券", "tickets"),
    ("staff_dealt_with", "対応した職員", "staff"),
    ("name_written", "氏名を手書き", "name_written"),
    ("address_written", "住所を手書き", "address_written"),
    ("birth_date_written", "生年月日を手書き", "birth_date_written"),
    ("phone_written", "電話番号を手書き", "phone_written"),
    ("pamphlets_received", "受け取った紙（パンフレット等）", "pamphlets"),
    ("total_minutes", "滞在時間（分）", "total_minutes"),
)
