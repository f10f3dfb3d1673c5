"""Tests for app.forms.render: what is drawn, where, and that nothing is cut or lost.

Forms are built by hand from the schema models (the fictional household of the model case).
Checks read the PDF back the way people and scanners do: poppler's text extraction (with
coordinates), pypdf's content streams, and pixels of pages rasterised with pdftoppm.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from pypdf.generic import ContentStream
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas as rl_canvas

from app.forms.fonts import FontSet
from app.forms.render import RenderOptions, RenderResult, render_bundle, render_form
from app.forms.resolved import ResolvedCell, ResolvedForm, ResolvedRow, ResolvedSection, ResolvedTable
from app.forms.schema import Choice, FormField, Layout, Placement, Row, Section, Table
from app.forms.wareki import format_wareki
from tests.conftest import MODEL_CASE

needs_poppler = pytest.mark.skipif(
    shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None or shutil.which("pdffonts") is None,
    reason="poppler-utils not installed",
)

CASE_NUMBER = "R8-000123"
VISIT = dt.date(2026, 4, 6)
KUZU = "葛\U000e0102城"
YOSHI = "\U00020bb7田"
DEFAULT_SIZE = 10.5
ROW_MM = 9.0


# --- building forms by hand ------------------------------------------------------------


@pytest.fixture(scope="module")
def members() -> list[dict[str, Any]]:
    return json.loads(MODEL_CASE.read_text(encoding="utf-8"))["household"]["members"]


def signature_png() -> bytes:
    pil = pytest.importorskip("PIL.Image")
    draw_mod = pytest.importorskip("PIL.ImageDraw")
    image = pil.new("RGBA", (300, 100), (255, 255, 255, 0))
    draw_mod.Draw(image).line([(10, 80), (80, 20), (150, 70), (290, 30)], fill=(0, 0, 0, 255), width=6)
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def options(fonts: FontSet, **kw: Any) -> RenderOptions:
    base: dict[str, Any] = {
        "fonts": fonts,
        "qr_url": "https://minato.example.jp/r/R8-000123",
        "city_name": "みなと市",
        "generated_label": "書かない窓口で作成 2026-04-06 定義 0bd8c578",
    }
    base.update(kw)
    return RenderOptions(**base)


def spec(label: str, **kw: Any) -> FormField:
    return FormField(label=label, **kw)


def cell(field: FormField, text: str = "", selected: Sequence[str] = ()) -> ResolvedCell:
    return ResolvedCell(field, text, tuple(selected))


def row(*cells: ResolvedCell, height: float = 1.0) -> ResolvedRow:
    return ResolvedRow(height, cells)


def table(columns: Sequence[FormField], items: Sequence[Sequence[str]], *, min_rows: int = 1,
          row_height: float = 1.0) -> ResolvedTable:
    rows = tuple(tuple(cell(c, v) for c, v in zip(columns, item, strict=True)) for item in items)
    return ResolvedTable(tuple(columns), rows, min_rows, row_height)


def section(title: str, rows: Sequence[ResolvedRow] = (), tbl: ResolvedTable | None = None,
            note: str | None = None) -> ResolvedSection:
    return ResolvedSection(title, note, tuple(rows), tbl)


def make_form(*sections: ResolvedSection, title: str = "住民異動届（転入届）", heading: str = "住民異動届",
              department: str = "市民課", page: str = "A4", orientation: str = "portrait") -> ResolvedForm:
    layout = Layout(
        page=page, orientation=orientation, row_mm=ROW_MM, heading=heading, recipient="市長あて",
        sections=[
            Section(
                title=s.title, note=s.note,
                rows=[Row(height=r.height, cells=[c.spec for c in r.cells]) for r in s.rows],
                table=None if s.table is None else Table(
                    each="household.members", min_rows=s.table.min_rows, row_height=s.table.row_height,
                    columns=list(s.table.columns)),
            )
            for s in sections
        ],
    )
    return ResolvedForm(
        instance_id="jumin_tennyu", title=title, heading=heading, recipient="市長あて", department_name=department,
        layout=layout, sections=tuple(sections), case_number=CASE_NUMBER, filed_on=VISIT,
    )


NAME = spec("氏名", kind="name", font="name", width=3)
KANA = spec("フリガナ", kind="kana", width=3)
BIRTH = spec("生年月日", kind="birth_date", width=2.4)
SEX = spec("性別", width=0.8)
MY_NUMBER = spec("個人番号", kind="my_number", style="comb", boxes=12, width=4)
MOVE_KIND = spec("異動の種別", style="check", width=3, options=[
    Choice(value="move_in", label="転入"), Choice(value="move_within", label="転居"),
    Choice(value="move_out", label="転出")])
SIGNATURE = spec("届出人 署名", style="signature", width=2)
ADDRESS = spec("新しい住所", kind="address", width=5)
NOTE = spec("備考", style="multiline", width=7)

SEXES = {"male": "男", "female": "女"}


def member_values(m: dict[str, Any]) -> tuple[str, str, str, str, str]:
    return (
        f"{m['family_name_kana']}\u3000{m['given_name_kana']}",
        f"{m['family_name']}\u3000{m['given_name']}",
        format_wareki(dt.date.fromisoformat(m["birth_date"])),
        SEXES[m["sex"]],
        m["my_number"],
    )


def family_form(members: list[dict[str, Any]], *, address: str | None = None, note: str = "") -> ResolvedForm:
    """The move-in form of the model household: header rows, address, one table row per member."""
    head = members[0]
    head_name = f"{head['family_name']}\u3000{head['given_name']}"
    columns = (KANA, NAME, BIRTH, SEX, MY_NUMBER)
    address = address or "〒661-0012\u3000兵庫県尼崎市南塚口町二丁目4番5号\u3000塚口コーポ202号室"
    rows = [
        row(cell(spec("届出年月日", kind="date", width=2), format_wareki(VISIT)),
            cell(spec("異動年月日", kind="date", width=2), format_wareki(dt.date(2026, 4, 1))),
            cell(MOVE_KIND, selected=("move_in",))),
        row(cell(spec("届出人 氏名", kind="name", font="name", width=3), head_name),
            cell(spec("届出人と異動者の関係", width=2), "本人・世帯主"),
            cell(SIGNATURE), height=1.6),
        row(cell(ADDRESS, address), cell(spec("世帯主", kind="name", width=2), head_name), height=1.4),
    ]
    if note:
        rows.append(row(cell(NOTE, note)))
    return make_form(
        section("届出", rows),
        section("異動した人", tbl=table(columns, [member_values(m) for m in members], min_rows=4, row_height=1.6)),
        section("関係する手続き（窓口記入）", [row(cell(spec("住民票コード", style="blank", width=2)),
                                                cell(spec("受付者", style="blank", width=1)))]),
    )


# --- reading PDFs back -----------------------------------------------------------------


def pdftotext(pdf: bytes, tmp_path: Path, *args: str, page: int | None = None) -> str:
    path = tmp_path / "in.pdf"
    path.write_bytes(pdf)
    pages = ["-f", str(page), "-l", str(page)] if page else []
    cmd = ["pdftotext", "-enc", "UTF-8", *args, *pages, str(path), "-"]
    return subprocess.run(cmd, check=True, capture_output=True).stdout.decode("utf-8")


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def norm(text: str) -> str:
    """Collapse runs of white space: pdftotext -layout turns U+3000 into spaces."""
    return re.sub(r"\s+", " ", text)


def bbox_words(pdf: bytes, tmp_path: Path, page: int = 1) -> list[tuple[float, float, float, float, str]]:
    """Words with their boxes in points from the top-left corner (xMin, yMin, xMax, yMax, text)."""
    html = pdftotext(pdf, tmp_path, "-bbox", page=page)
    pattern = r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>'
    return [(float(a), float(b), float(c), float(d), w) for a, b, c, d, w in re.findall(pattern, html)]


def operations(pdf: bytes, page: int) -> list[tuple[list[Any], bytes]]:
    reader = PdfReader(io.BytesIO(pdf))
    return ContentStream(reader.pages[page].get_contents(), reader).operations


def rects(pdf: bytes, page: int) -> list[tuple[float, float, float, float]]:
    return [tuple(float(v) for v in ops) for ops, op in operations(pdf, page) if op == b"re"]  # type: ignore[misc]


def text_sizes(pdf: bytes, page: int) -> list[tuple[str, float]]:
    """(text, font size) of every text run on a page, via pypdf's extraction visitor."""
    found: list[tuple[str, float]] = []

    def visit(text: str, cm: Any, tm: Any, font: Any, size: float) -> None:
        if text.strip():
            found.append((text, float(size)))

    PdfReader(io.BytesIO(pdf)).pages[page].extract_text(visitor_text=visit)
    return found


def grey_page(pdf: bytes, tmp_path: Path, page: int, dpi: int) -> tuple[int, int, bytes]:
    """Rasterise one page to 8-bit grey with pdftoppm and return (width, height, pixels)."""
    src = tmp_path / "raster.pdf"
    src.write_bytes(pdf)
    prefix = tmp_path / "raster"
    subprocess.run(["pdftoppm", "-gray", "-r", str(dpi), "-f", str(page), "-l", str(page), "-singlefile",
                    str(src), str(prefix)], check=True)
    data = (tmp_path / "raster.pgm").read_bytes()
    match = re.match(rb"P5\s+(\d+)\s+(\d+)\s+(\d+)\s", data)
    assert match
    width, height = int(match[1]), int(match[2])
    return width, height, data[match.end():]


def dark_fraction(raster: tuple[int, int, bytes], box_pt: tuple[float, float, float, float], dpi: int) -> float:
    """Share of dark pixels inside a box given in points from the bottom-left corner."""
    width, height, pixels = raster
    scale = dpi / 72
    x0, y0, x1, y1 = box_pt
    cols = range(int(x0 * scale), int(x1 * scale))
    lines = range(int(height - y1 * scale), int(height - y0 * scale))
    dark = sum(1 for r in lines for c in cols if pixels[r * width + c] < 128)
    return dark / max(1, len(cols) * len(lines))


# --- tests -----------------------------------------------------------------------------


@needs_poppler
def test_labels_and_values_extract(fonts: FontSet, members: list[dict[str, Any]], tmp_path: Path) -> None:
    result = render_form(family_form(members), options(fonts))
    assert result.pages == 1
    assert result.overflowed == ()
    layout_text = pdftotext(result.pdf, tmp_path, "-layout")
    pypdf_text = PdfReader(io.BytesIO(result.pdf)).pages[0].extract_text()
    for text in (norm(layout_text), norm(pypdf_text)):
        for expected in ("住民異動届", "みなと市長\u3000あて", "届出日", "令和8年4月6日", "令和8年4月1日",
                         "案件番号 R8-000123", "新しい住所", "兵庫県尼崎市南塚口町二丁目4番5号", "フリガナ",
                         "個人番号", "尼崎\u3000太郎", "アマガサキ\u3000ハナコ", "平成2年6月15日", "令和5年12月1日",
                         "page 1 / 1", "書かない窓口で作成"):
            assert norm(expected) in text, expected
    # The comb cells print one digit per box: each member's 12 digits appear in order on their row.
    lines = [squeeze(line) for line in layout_text.splitlines()]
    for m in members:
        assert any(m["my_number"] in line for line in lines), m["id"]


@needs_poppler
def test_only_embedded_ipa_fonts(fonts: FontSet, members: list[dict[str, Any]], tmp_path: Path) -> None:
    path = tmp_path / "form.pdf"
    path.write_bytes(render_form(family_form(members), options(fonts)).pdf)
    out = subprocess.run(["pdffonts", str(path)], check=True, capture_output=True, text=True).stdout
    rows = [line.split() for line in out.splitlines()[2:] if line.strip()]
    # No unembedded Helvetica from the canvas preamble: every font is an embedded IPA subset.
    assert rows
    assert all("IPA" in r[0] and r[-5:-2] == ["yes", "yes", "yes"] for r in rows), rows


@needs_poppler
def test_variation_sequence_and_non_bmp_names_round_trip(fonts: FontSet, tmp_path: Path) -> None:
    names = (f"{KUZU}\u3000太郎", f"{YOSHI}\u3000花子")
    form = make_form(section("異動した人", tbl=table((NAME, KANA), [(names[0], "カツラギ\u3000タロウ"),
                                                                  (names[1], "ヨシダ\u3000ハナコ")])))
    pdf = render_form(form, options(fonts)).pdf
    for text in (pdftotext(pdf, tmp_path), PdfReader(io.BytesIO(pdf)).pages[0].extract_text()):
        for name in names:
            assert norm(name) in norm(text)
        assert not any(0xE000 <= ord(ch) <= 0xF8FF or ord(ch) >= 0xF0000 for ch in text)


@needs_poppler
def test_long_address_wraps_before_it_shrinks(fonts: FontSet, members: list[dict[str, Any]], tmp_path: Path) -> None:
    address = "〒661-0012\u3000兵庫県尼崎市南塚口町二丁目4番5号\u3000塚口コーポラティブハウス南棟グランドステージ1202号室"
    result = render_form(family_form(members, address=address), options(fonts))
    assert result.overflowed == ()
    runs = [(text, size) for text, size in text_sizes(result.pdf, 0)
            if any(part in text for part in ("兵庫県", "南塚口", "グランド", "1202"))]
    # Two lines of one size, larger than the ~7 pt the whole address would need on one line.
    sizes = {size for _, size in runs}
    assert len(sizes) == 1 and sizes.pop() >= 8.0, runs
    assert squeeze("".join(text for text, _ in runs)) == squeeze(address)


@needs_poppler
def test_very_long_text_goes_to_addendum(fonts: FontSet, members: list[dict[str, Any]], tmp_path: Path) -> None:
    note = "".join(f"{i:03d}番目の補足事項を窓口で聞き取りました。" for i in range(40))[:600]
    assert len(note) == 600
    result = render_form(family_form(members, note=note), options(fonts))
    assert result.overflowed == ("備考",)
    assert result.pages == 2
    first = pdftotext(result.pdf, tmp_path, page=1)
    assert "…※1" in first
    assert squeeze(note) not in squeeze(first)
    addendum = pdftotext(result.pdf, tmp_path, page=2)
    assert "別紙（記入しきれなかった内容）" in addendum
    assert "※1 〈備考〉" in addendum
    assert note in squeeze(addendum)  # nothing lost: the full text, in order
    assert "page 2 / 2" in addendum and CASE_NUMBER in addendum


@needs_poppler
def test_text_too_long_even_at_the_floor_is_never_cut(fonts: FontSet, tmp_path: Path) -> None:
    long_name = "尼崎" * 60
    form = make_form(section("届出", [row(cell(spec("氏名", kind="name", width=1), long_name),
                                          cell(spec("電話", width=3), "090-1234-5678"))]))
    result = render_form(form, options(fonts))
    assert result.overflowed == ("氏名",)
    assert long_name in squeeze(pdftotext(result.pdf, tmp_path, page=result.pages))
    # The floor is respected in the cell itself.
    assert min(size for _, size in text_sizes(result.pdf, 0)) >= 6.0


@needs_poppler
def test_wrapping_keeps_variation_sequences_whole(fonts: FontSet, tmp_path: Path) -> None:
    text = (KUZU + "市") * 30
    form = make_form(section("届出", [row(cell(spec("備考", style="multiline", kind="name", width=1), text),
                                          cell(spec("欄", width=3), "x"), height=3)]))
    result = render_form(form, options(fonts))
    assert result.overflowed == ()
    extracted = pdftotext(result.pdf, tmp_path)
    assert len([line for line in extracted.splitlines() if KUZU in line]) > 1  # it did wrap
    assert text in squeeze(extracted)


def table_row_count(pdf: bytes, page: int, height_mm: float, x_pt: float) -> int:
    """Rows drawn on a page: rects of the row height starting at the table's left edge."""
    return sum(1 for x, _, _, h in rects(pdf, page) if abs(h - height_mm * mm) < 0.01 and abs(x - x_pt) < 0.01)


@pytest.mark.parametrize(("items", "drawn"), [(7, 7), (2, 4), (0, 4)])
def test_table_draws_items_and_at_least_min_rows(fonts: FontSet, items: int, drawn: int) -> None:
    tbl = table((KANA, SEX), [(f"カナ{i}", "男") for i in range(items)], min_rows=4, row_height=1.3)
    result = render_form(make_form(section("異動した人", tbl=tbl)), options(fonts))
    assert table_row_count(result.pdf, 0, ROW_MM * 1.3, 12 * mm) == drawn


@needs_poppler
def test_long_table_continues_with_repeated_header(fonts: FontSet, tmp_path: Path) -> None:
    items = [(f"アマガサキ\u3000{i:02d}", f"尼崎\u3000太郎{i:02d}", "令和8年4月1日", "男", "123456789018")
             for i in range(30)]
    result = render_form(make_form(section("異動した人", tbl=table((KANA, NAME, BIRTH, SEX, MY_NUMBER), items,
                                                                    min_rows=4, row_height=1.6))), options(fonts))
    assert result.pages == 2
    first = table_row_count(result.pdf, 0, ROW_MM * 1.6, 12 * mm)
    second = table_row_count(result.pdf, 1, ROW_MM * 1.6, 12 * mm)
    assert first + second == 30 and second > 0
    page2 = norm(pdftotext(result.pdf, tmp_path, "-layout", page=2))
    assert "住民異動届（続き）" in page2
    assert "異動した人（続き）" in page2
    for label in ("フリガナ", "氏名", "生年月日", "性別", "個人番号"):
        assert label in page2
    assert "尼崎 太郎29" in page2 and "尼崎 太郎00" not in page2
    assert "尼崎 太郎00" in norm(pdftotext(result.pdf, tmp_path, page=1))


def check_squares(pdf: bytes, page: int) -> list[tuple[float, float, float, float]]:
    """The option squares of check cells (3 mm), left to right then top to bottom."""
    squares = [r for r in rects(pdf, page) if abs(r[2] - 3 * mm) < 0.01 and abs(r[3] - 3 * mm) < 0.01]
    return sorted(squares, key=lambda r: (-r[1], r[0]))


@needs_poppler
def test_selected_option_gets_a_tick(fonts: FontSet, tmp_path: Path) -> None:
    form = make_form(section("届出", [row(cell(MOVE_KIND, selected=("move_within",)), cell(spec("欄"), "x"))]))
    pdf = render_form(form, options(fonts)).pdf
    squares = check_squares(pdf, 0)
    assert len(squares) == 3
    dpi = 200
    raster = grey_page(pdf, tmp_path, 1, dpi)
    inside = [dark_fraction(raster, (x + w * 0.2, y + h * 0.2, x + w * 0.8, y + h * 0.8), dpi)
              for x, y, w, h in squares]
    assert inside[1] > 0.05  # 転居 is ticked
    assert inside[0] == 0 and inside[2] == 0
    assert all(label in pdftotext(pdf, tmp_path) for label in ("転入", "転居", "転出"))


@needs_poppler
def test_check_options_wrap_inside_the_cell(fonts: FontSet, tmp_path: Path) -> None:
    many = spec("理由", style="check", width=1, options=[Choice(value=f"v{i}", label=f"選択肢その{i}")
                                                          for i in range(6)])
    form = make_form(section("届出", [row(cell(many, selected=("v5",)), cell(spec("欄", width=1), "x"),
                                          height=2.5)]))
    result = render_form(form, options(fonts))
    assert result.overflowed == ()
    squares = [r for r in rects(result.pdf, 0) if abs(r[2] - r[3]) < 0.01 and 5 < r[2] < 3 * mm + 0.01]
    assert len(squares) == 6
    assert len({round(y) for _, y, _, _ in squares}) > 1  # more than one line of options


@needs_poppler
def test_comb_with_too_many_characters_goes_to_addendum(fonts: FontSet, tmp_path: Path) -> None:
    digits = "123456789012345"
    form = make_form(section("届出", [row(cell(spec("個人番号", style="comb", boxes=12, width=4), digits),
                                          cell(spec("欄", width=1), "x"))]))
    result = render_form(form, options(fonts))
    assert result.overflowed == ("個人番号",)
    assert result.pages == 2
    assert "※1" in pdftotext(result.pdf, tmp_path, page=1)
    assert digits in squeeze(pdftotext(result.pdf, tmp_path, page=2))


def image_draws(pdf: bytes) -> int:
    reader = PdfReader(io.BytesIO(pdf))
    return sum(1 for index in range(len(reader.pages)) for _, op in operations(pdf, index) if op == b"Do")


def test_signature_on_every_signature_cell(fonts: FontSet, members: list[dict[str, Any]]) -> None:
    form = make_form(
        section("届出", [row(cell(SIGNATURE), cell(spec("欄", width=1), "x"), height=1.6)]),
        section("同意", [row(cell(spec("同意者 署名", style="signature")), cell(spec("日付"), "令和8年4月6日"),
                             height=1.6)]),
    )
    with_png = render_form(form, options(fonts, signature_png=signature_png())).pdf
    assert image_draws(with_png) == 2
    images = [name for page in PdfReader(io.BytesIO(with_png)).pages for name in page.images]
    assert images  # embedded once, drawn twice
    assert image_draws(render_form(form, options(fonts)).pdf) == 0


def test_unreadable_signature_is_an_error(fonts: FontSet, members: list[dict[str, Any]]) -> None:
    with pytest.raises(ValueError, match="signature_png"):
        render_form(family_form(members), options(fonts, signature_png=b"not a png"))


@needs_poppler
def test_qr_code_on_every_page(fonts: FontSet, members: list[dict[str, Any]], tmp_path: Path) -> None:
    note = "聞き取り内容" * 100
    items = [member_values(members[i % 4]) for i in range(30)]
    form = make_form(
        section("届出", [row(cell(NOTE, note))]),
        section("異動した人", tbl=table((KANA, NAME, BIRTH, SEX, MY_NUMBER), items, row_height=1.6)),
    )
    result = render_form(form, options(fonts))
    assert result.pages == 3  # two form pages and the addendum
    dpi = 100
    width, height = 210 * mm, 297 * mm
    qr_box = (width - 12 * mm - 16 * mm, height - 10 * mm - 16 * mm, width - 12 * mm, height - 10 * mm)
    inner = (qr_box[0] + 2 * mm, qr_box[1] + 2 * mm, qr_box[2] - 2 * mm, qr_box[3] - 2 * mm)
    for page in range(result.pages):
        modules = [r for r in rects(result.pdf, page) if r[0] >= qr_box[0] - 0.01 and r[1] >= qr_box[1] - 0.01
                   and r[2] < 1 * mm]
        assert len(modules) > 100, page
        share = dark_fraction(grey_page(result.pdf, tmp_path, page + 1, dpi), inner, dpi)
        assert 0.25 < share < 0.75, (page, share)
        assert CASE_NUMBER in pdftotext(result.pdf, tmp_path, page=page + 1)


def test_same_input_same_bytes(fonts: FontSet, members: list[dict[str, Any]]) -> None:
    opts = options(fonts, signature_png=signature_png())
    form = family_form(members, note="補足" * 400)
    first = render_form(form, opts)
    assert render_form(form, opts) == first
    other = make_form(section("届出", [row(cell(spec("氏名", kind="name"), f"{KUZU}\u3000太郎"))]), title="印鑑登録")
    bundle = render_bundle([form, other], opts, cover_title="申請書一式", cover_lines=[("案件番号", CASE_NUMBER)])
    assert render_bundle([form, other], opts, cover_title="申請書一式",
                         cover_lines=[("案件番号", CASE_NUMBER)]) == bundle


def test_metadata_has_title_and_no_personal_data(fonts: FontSet, members: list[dict[str, Any]]) -> None:
    pdf = render_form(family_form(members), options(fonts)).pdf
    info = PdfReader(io.BytesIO(pdf)).metadata
    assert info is not None
    assert info.title == "住民異動届（転入届）"
    assert info.creator == "kakanai"
    values = " ".join(str(v) for v in info.values())
    assert "尼崎" not in values and "アマガサキ" not in values and CASE_NUMBER not in values


@pytest.mark.parametrize(("page", "orientation", "size_mm"), [
    ("A4", "portrait", (210, 297)), ("A3", "landscape", (420, 297)), ("B4", "portrait", (257, 364)),
])
def test_page_size_follows_layout(fonts: FontSet, page: str, orientation: str, size_mm: tuple[int, int]) -> None:
    form = make_form(section("届出", [row(cell(spec("氏名"), "尼崎"))]), page=page, orientation=orientation)
    box = PdfReader(io.BytesIO(render_form(form, options(fonts)).pdf)).pages[0].mediabox
    assert (round(float(box.width) / mm), round(float(box.height) / mm)) == size_mm


@needs_poppler
def test_bundle_cover_lists_forms_and_counts_pages(fonts: FontSet, members: list[dict[str, Any]],
                                                   tmp_path: Path) -> None:
    forms = [
        family_form(members),
        family_form(members, note="補足" * 400),  # two pages with its addendum
        make_form(section("申請", [row(cell(spec("氏名", kind="name"), "尼崎\u3000太郎"))]),
                  title="印鑑登録申請書", heading="印鑑登録申請書", department="市民課 証明係"),
    ]
    singles = [render_form(f, options(fonts)) for f in forms]
    pdf = render_bundle(forms, options(fonts), cover_title="申請書一式",
                        cover_lines=[("案件番号", CASE_NUMBER), ("届出人", "尼崎\u3000太郎")])
    assert len(PdfReader(io.BytesIO(pdf)).pages) == 1 + sum(r.pages for r in singles) == 5
    cover = norm(pdftotext(pdf, tmp_path, "-layout", page=1))
    for expected in ("申請書一式", "提出書類一覧", "住民異動届（転入届）", "印鑑登録申請書", "市民課 証明係",
                     "尼崎 太郎", CASE_NUMBER):
        assert expected in cover
    assert re.search(r"3〜4", cover) and re.search(r"\b5\b", cover)
    assert "印鑑登録申請書" in pdftotext(pdf, tmp_path, page=5)


def blank_template(pages: int = 1) -> bytes:
    buf = io.BytesIO()
    c = rl_canvas.Canvas(buf, pagesize=(210 * mm, 297 * mm), invariant=1)
    for number in range(pages):
        c.setFont("Helvetica", 14)
        c.drawString(20 * mm, 280 * mm, f"OFFICIAL TEMPLATE PAGE{number + 1}")
        c.rect(30 * mm, 297 * mm - 70 * mm, 80 * mm, 10 * mm)
        c.showPage()
    c.save()
    return buf.getvalue()


def template_form(template: bytes, name: str = "尼崎\u3000太郎") -> ResolvedForm:
    placed = (
        (Placement(page=1, x=30, y=60, w=80, h=10), cell(spec("氏名", kind="name"), name)),
        (Placement(page=1, x=120, y=60, w=60, h=10), cell(spec("生年月日"), "平成2年6月15日")),
        (Placement(page=2, x=30, y=100, w=80, h=8),
         cell(MOVE_KIND, selected=("move_in",))),
    )
    return ResolvedForm(instance_id="tpl", title="国民健康保険 資格取得届", heading="国民健康保険 資格取得届",
                        recipient=None, department_name="保険年金課", layout=None, template=template,
                        placed=placed, case_number=CASE_NUMBER, filed_on=VISIT)


@needs_poppler
def test_template_values_land_in_their_boxes(fonts: FontSet, tmp_path: Path) -> None:
    form = template_form(blank_template(2))
    result = render_form(form, options(fonts))
    assert result.pages == 2 and result.overflowed == ()
    words = bbox_words(result.pdf, tmp_path, 1)
    assert any(w[4] == "OFFICIAL" for w in words)  # the template's own text survives the merge
    name = [w for w in words if "尼崎" in w[4]]
    assert name
    x0, y0, x1, y1, _ = name[0]
    assert 30 * mm <= x0 and x1 <= 110 * mm and 60 * mm <= y0 and y1 <= 70 * mm
    birth = [w for w in words if "平成2年6月15日" in w[4]]
    assert birth and 120 * mm <= birth[0][0] and birth[0][3] <= 70 * mm
    assert "転入" in pdftotext(result.pdf, tmp_path, page=2)
    for page in (1, 2):
        assert CASE_NUMBER in pdftotext(result.pdf, tmp_path, page=page)
        assert len([r for r in rects(result.pdf, page - 1) if r[2] < 1 * mm]) > 100  # QR modules
    assert render_form(form, options(fonts)) == result  # deterministic through pypdf too
    info = PdfReader(io.BytesIO(result.pdf)).metadata
    assert info is not None and info.title == "国民健康保険 資格取得届" and info.creator == "kakanai"


@needs_poppler
def test_template_overflow_adds_addendum(fonts: FontSet, tmp_path: Path) -> None:
    long_name = "尼崎" * 80
    result = render_form(template_form(blank_template(2), name=long_name), options(fonts))
    assert result.overflowed == ("氏名",)
    assert result.pages == 3
    assert long_name in squeeze(pdftotext(result.pdf, tmp_path, page=3))


def test_template_placement_beyond_last_page_is_an_error(fonts: FontSet) -> None:
    with pytest.raises(ValueError, match="page 2"):
        render_form(template_form(blank_template(1)), options(fonts))


@needs_poppler
def test_bundle_with_a_template_form(fonts: FontSet, members: list[dict[str, Any]], tmp_path: Path) -> None:
    forms = [family_form(members), template_form(blank_template(2))]
    opts = options(fonts)
    pdf = render_bundle(forms, opts, cover_title="申請書一式", cover_lines=[("案件番号", CASE_NUMBER)])
    assert len(PdfReader(io.BytesIO(pdf)).pages) == 1 + 1 + 2
    assert "国民健康保険 資格取得届" in pdftotext(pdf, tmp_path, page=1)
    assert "OFFICIAL TEMPLATE PAGE2" in pdftotext(pdf, tmp_path, page=4)
    assert render_bundle(forms, opts, cover_title="申請書一式", cover_lines=[("案件番号", CASE_NUMBER)]) == pdf


def test_result_type(fonts: FontSet, members: list[dict[str, Any]]) -> None:
    result = render_form(family_form(members), options(fonts))
    assert isinstance(result, RenderResult)
    assert result.pdf.startswith(b"%PDF-")


def test_same_bytes_in_another_process(fonts: FontSet, members: list[dict[str, Any]]) -> None:
    # Another interpreter (other hash seed, no aliases allocated yet) must produce the same PDF.
    script = (
        "import json, sys\n"
        "from tests.forms.test_render import MODEL_CASE, family_form, options, KUZU\n"
        "from app.forms.fonts import load_fonts\n"
        "from app.forms.render import render_form\n"
        "members = json.loads(MODEL_CASE.read_text(encoding='utf-8'))['household']['members']\n"
        "members[1] = {**members[1], 'family_name': KUZU}\n"
        "sys.stdout.buffer.write(render_form(family_form(members, note='補足' * 400), options(load_fonts())).pdf)\n"
    )
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run([sys.executable, "-c", script], cwd=repo, env=env, check=True, capture_output=True).stdout
    # Allocate unrelated aliases in this process first so its alias numbering differs.
    render_form(make_form(section("届出", [row(cell(NAME, "辻\U000e0102邉\U000e0110"))])), options(fonts))
    changed = [{**members[1], "family_name": KUZU} if i == 1 else m for i, m in enumerate(members)]
    assert render_form(family_form(changed, note="補足" * 400), options(fonts)).pdf == other
