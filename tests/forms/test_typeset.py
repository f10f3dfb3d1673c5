"""Typesetting a clerk would accept: 禁則, brackets kept whole, wrap before shrink, one size per table column,
columns wide enough for short values, a whole name in one typeface, undrawable sequences reported."""

from __future__ import annotations

import io
from typing import Any

import pytest
from pypdf import PdfReader
from reportlab.lib.units import mm

from app.forms.fonts import ROLE_NAME, ROLE_TEXT, FontSet
from app.forms.print_checks import print_warnings
from app.forms.render import render_form
from app.forms.transforms import apply_transform
from app.forms.typeset import NO_END, NO_START, Measure
from tests.forms.test_render import cell, make_form, options, row, section, spec, table


def runs(pdf: bytes, page: int = 0) -> list[tuple[str, float, str]]:
    """(text, size, font name) of every text run on a page."""
    found: list[tuple[str, float, str]] = []

    def visit(text: str, cm: Any, tm: Any, font: Any, size: float) -> None:
        if text.strip():
            name = str(font.get("/BaseFont")) if font is not None else ""
            found.append((text, float(size), name))

    PdfReader(io.BytesIO(pdf)).pages[page].extract_text(visitor_text=visit)
    return found


@pytest.mark.parametrize("text", [
    "届出人の続柄（世帯主）、本籍地（外国籍の方は国籍）。カード番号「ABC」ー確認済み。",
    "ー）」、。ー）」、。ー）」、。ー）」、。",
    "（住所変更）（住所変更）（住所変更）（住所変更）",
    "マイナンバーカード継続利用（住所変更）の手続き、児童手当（認定請求）、子ども医療費（受給資格）",
])
@pytest.mark.parametrize("width_pt", [40.0, 55.0, 73.0, 101.0])
def test_no_line_starts_with_closing_or_ends_with_opening(fonts: FontSet, text: str, width_pt: float) -> None:
    lines = Measure(fonts).wrap(text, ROLE_TEXT, 9.0, width_pt)
    assert "".join(lines) == text
    for index, line in enumerate(lines):
        if index > 0 and not all(ch in NO_START for ch in text):
            assert line[:1] not in NO_START or all(ch in NO_START for ch in lines[index - 1][-1:] + line[:1]), lines
        if index < len(lines) - 1:
            assert line[-1:] not in NO_END, lines


def test_kinsoku_moves_a_run_of_closing_marks(fonts: FontSet) -> None:
    measure = Measure(fonts)
    text = "サービスー）の確認"
    # Break exactly after 「サービス」: neither ー nor ） may start the next line.
    width = measure.width("サービス", ROLE_TEXT, 10.0) + 0.1
    lines = measure.wrap(text, ROLE_TEXT, 10.0, width)
    assert all(line[:1] not in "ー）" for line in lines[1:]), lines
    assert "".join(lines) == text


def test_a_short_bracketed_phrase_is_not_broken(fonts: FontSet) -> None:
    measure = Measure(fonts)
    text = "住民異動届（住所変更）"
    width = measure.width("住民異動届（住所変", ROLE_TEXT, 10.0) + 0.1
    assert measure.wrap(text, ROLE_TEXT, 10.0, width) == ["住民異動届", "（住所変更）"]


def test_wrap_before_shrink_picks_the_larger_size(fonts: FontSet) -> None:
    measure = Measure(fonts)
    text = "兵庫県尼崎市南塚口町二丁目4番5号　塚口コーポラティブハウス南棟1202号室"
    box_w, box_h = 60 * mm, 9 * mm
    fit = measure.fit(text, ROLE_TEXT, box_w, box_h, 10.5, 6.0, wrap=False)
    one_line = int(box_w / measure.width(text, ROLE_TEXT, 1.0) * 10) / 10
    assert len(fit.lines) == 2 and fit.size > one_line + 1.0 and fit.complete
    # A name stays on one line as long as its shrunk size is above the floor.
    name = measure.fit("尼崎　花子", ROLE_NAME, 15 * mm, box_h, 11.5, 6.0, wrap=False, keep_whole=True)
    assert name.lines == ("尼崎　花子",)


def test_one_size_per_column_and_wide_enough_relationship(fonts: FontSet) -> None:
    name = spec("氏名", kind="name", font="name", width=3)
    rel = spec("続柄", width=0.5)
    addr = spec("住所", width=6)
    items = [("尼崎　太郎", "世帯主", "兵庫県尼崎市南塚口町二丁目4番5号"),
             ("尼崎　花子", "妻", "兵庫県尼崎市南塚口町二丁目4番5号　塚口コーポラティブハウス南棟グランドステージ1202号室"),
             ("尼崎　一郎", "子", "同上")]
    form = make_form(section("世帯員", tbl=table((name, rel, addr), items)))
    pdf = render_form(form, options(fonts)).pdf
    found = runs(pdf)
    rel_runs = [r for r in found if r[0] in ("世帯主", "妻", "子")]
    assert [r[0] for r in rel_runs] == ["世帯主", "妻", "子"]  # 世帯主 on one line, not stacked
    assert len({r[1] for r in rel_runs}) == 1
    addr_sizes = {size for text, size, _ in found if "兵庫県" in text or "同上" in text or "グランド" in text}
    assert len(addr_sizes) == 1, found


def test_whole_name_in_mincho_including_adobe_sequences(fonts: FontSet) -> None:
    kuzu = "葛\U000e0100城　辻\U000e0100子"
    form = make_form(section("届出人", rows=[row(cell(spec("氏名", kind="name", width=4), kuzu))]))
    found = [r for r in runs(render_form(form, options(fonts)).pdf) if "城" in r[0] or "子" in r[0]
             or "\U000e0100" in r[0]]
    assert found and all("IPAmj" in r[2] for r in found), found
    # A text cell holding a variant character is set in the name font as a whole, too.
    form = make_form(section("届出人", rows=[row(cell(spec("筆頭者", width=4), "葛\U000e0102西　一郎"))]))
    fonts_used = {r[2] for r in runs(render_form(form, options(fonts)).pdf) if "一郎" in r[0] or "西" in r[0]}
    assert fonts_used and all("IPAmj" in f for f in fonts_used), fonts_used


def test_undrawable_sequence_is_reported(fonts: FontSet) -> None:
    answers = {"household": {"members": [
        {"family_name": "葛\U000e010f城", "given_name": "太郎"},
        {"family_name": "葛\U000e0100城", "given_name": "邉\U000e0110"},
    ]}, "survey_baseline": {"$comment": "葛\U000e010f"}}
    warnings = print_warnings(answers, fonts)
    assert [w.path for w in warnings] == ["household.members[0].family_name"]
    assert "U+E010F" in warnings[0].message and "基本の字「葛」" in warnings[0].message


def test_nationality_prints_the_japanese_country_name() -> None:
    assert apply_transform("country", "VN", {}) == "ベトナム"
    assert apply_transform("country", "jp", {}) == "日本"
    assert apply_transform("country", "XX", {}) == "XX"
    assert apply_transform("country", None, {}) == ""
