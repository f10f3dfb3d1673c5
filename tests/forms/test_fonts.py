"""Tests for app.forms.fonts: IVS variant glyphs, non-BMP names, text extraction, fallback.

The glyph checks look at what is really drawn: the content stream's codes are resolved
through the embedded subset font (extracted with pypdf, read with fontTools) and the
resulting outlines are compared with the source font's variant and base glyphs.
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import subprocess
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pytest
from fontTools.ttLib import TTFont
from pypdf import PdfReader
from pypdf.generic import ContentStream
from reportlab.pdfgen import canvas as rl_canvas

from app.forms import fonts as fonts_module
from app.forms.fonts import ROLE_NAME, ROLE_TEXT, FontSet, load_fonts

REPO_ROOT = Path(__file__).resolve().parents[2]
IPAMJ = Path("/usr/share/fonts/truetype/ipamj/ipamjm.ttf")
IPAEX_GOTHIC = Path("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf")

needs_ttf = pytest.mark.skipif(
    not (IPAMJ.is_file() and IPAEX_GOTHIC.is_file()),
    reason="fonts-ipamj-mincho / fonts-ipaexfont-gothic not installed",
)
needs_poppler = pytest.mark.skipif(
    shutil.which("pdftotext") is None or shutil.which("pdffonts") is None,
    reason="poppler-utils not installed",
)

KUZU_IVS = "葛\U000e0102"
TSUJI_IVS = "辻\U000e0102"
WATANABE_IVS = "邉\U000e0110"
UNKNOWN_IVS = "山\U000e01ef"
YOSHI = "\U00020bb7"  # 𠮷 (tsuchi-yoshi), outside the BMP

SAMPLES: list[tuple[str, str]] = [
    (f"{KUZU_IVS}城 太郎", ROLE_NAME),
    ("葛城 太郎", ROLE_NAME),
    (TSUJI_IVS, ROLE_NAME),
    (WATANABE_IVS, ROLE_NAME),
    (UNKNOWN_IVS, ROLE_NAME),
    (f"{YOSHI}田", ROLE_NAME),
    (f"{YOSHI}田", ROLE_TEXT),
    (f"住所 {KUZU_IVS}飾区", ROLE_TEXT),
]


# --- helpers -----------------------------------------------------------------------


def render(fontset: FontSet, lines: list[tuple[str, str]], *, size: float = 14) -> bytes:
    """Render one A4 page with one string per line and return the PDF bytes."""
    buf = io.BytesIO()
    canvas = rl_canvas.Canvas(buf, invariant=1)
    y = 800.0
    for text, role in lines:
        fontset.draw_string(canvas, 40, y, text, role=role, size=size)
        y -= size * 2
    canvas.showPage()
    canvas.save()
    return buf.getvalue()


def render_samples(perturb: bool = False) -> bytes:
    """Render SAMPLES; with perturb, first allocate unrelated aliases in a throwaway PDF."""
    fontset = load_fonts()
    if perturb:
        render(fontset, [("川\U000e01ee", ROLE_NAME), ("森\U000e01ed", ROLE_TEXT)])
    return render(fontset, SAMPLES)


def render_check_page() -> bytes:
    """Render the visual check page (base vs variant glyphs) saved as docs/fonts_ivs_check.png."""
    fontset = load_fonts()
    buf = io.BytesIO()
    canvas = rl_canvas.Canvas(buf, pagesize=(560, 520), invariant=1)
    rows = [
        ("葛 U+845B", "葛", KUZU_IVS),
        ("辻 U+8FBB", "辻", TSUJI_IVS),
        ("邉 U+9089", "邉", WATANABE_IVS),
        ("山 +E01EF (unknown)", "山", UNKNOWN_IVS),
        ("𠮷 U+20BB7 name/text", YOSHI + "田", YOSHI + "田"),
    ]
    fontset.draw_string(canvas, 20, 480, "文字", role=ROLE_TEXT, size=16)
    fontset.draw_string(canvas, 230, 480, "基底字", role=ROLE_TEXT, size=16)
    fontset.draw_string(canvas, 390, 480, "IVS", role=ROLE_TEXT, size=16)
    y = 400.0
    for label, base, variant in rows:
        fontset.draw_string(canvas, 20, y + 10, label, role=ROLE_TEXT, size=12)
        fontset.draw_string(canvas, 230, y, base, role=ROLE_NAME, size=56)
        role = ROLE_TEXT if base.startswith(YOSHI) else ROLE_NAME
        fontset.draw_string(canvas, 390, y, variant, role=role, size=56)
        y -= 85
    canvas.showPage()
    canvas.save()
    return buf.getvalue()


def format14(font: TTFont) -> dict[tuple[int, int], str]:
    """Return the font's variation sequences as {(base, selector): glyph name}."""
    best = font.getBestCmap()
    result: dict[tuple[int, int], str] = {}
    for table in font["cmap"].tables:
        if table.format == 14:
            for selector, pairs in table.uvsDict.items():
                for base, name in pairs:
                    result[(base, selector)] = best[base] if name is None else name
    return result


def outline(font: TTFont, glyph_name: str) -> tuple:
    """Return a glyph's outline (points and contour ends), independent of glyph naming."""
    glyf = font["glyf"]
    coords, end_pts, _flags = glyf[glyph_name].getCoordinates(glyf)
    return tuple(coords), tuple(end_pts)


@dataclass(frozen=True)
class Drawn:
    """One glyph drawn by a text-showing operator."""

    base_font: str
    gid: int  # glyph id in the embedded subset; 0 is .notdef
    outline: tuple
    text: str  # what /ToUnicode maps the code to
    width: float  # advance in points from the font dict's /Widths


def parse_to_unicode(data: bytes) -> dict[int, str]:
    """Parse the bfchar entries of a one-byte /ToUnicode CMap."""
    result = {}
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", data, re.S):
        for code, dest in re.findall(rb"<([0-9A-Fa-f]{2})>\s*<([0-9A-Fa-f]+)>", block):
            result[int(code, 16)] = bytes.fromhex(dest.decode()).decode("utf-16-be")
    return result


def drawn_glyphs(pdf: bytes) -> list[Drawn]:
    """Resolve every drawn code through the embedded font programs of the first page."""
    reader = PdfReader(io.BytesIO(pdf))
    page = reader.pages[0]
    font_resources = page["/Resources"]["/Font"]
    programs: dict[str, tuple] = {}
    drawn: list[Drawn] = []
    current = None
    size = 0.0
    for operands, operator in ContentStream(page.get_contents(), reader).operations:
        if operator == b"Tf":
            current, size = str(operands[0]), float(operands[1])
            continue
        if operator == b"TJ":
            strings = [s for s in operands[0] if not isinstance(s, (int, float))]
        elif operator in (b"Tj", b"'", b'"'):
            strings = [operands[-1]]
        else:
            continue
        if current not in programs:
            font_dict = font_resources[current].get_object()
            program = TTFont(io.BytesIO(font_dict["/FontDescriptor"]["/FontFile2"].get_data()))
            to_unicode = parse_to_unicode(font_dict["/ToUnicode"].get_data())
            widths = [float(w) for w in font_dict["/Widths"]]
            programs[current] = (str(font_dict["/BaseFont"]), program, to_unicode, widths, int(font_dict["/FirstChar"]))
        base_font, program, to_unicode, widths, first_char = programs[current]
        cmap = program["cmap"].getcmap(1, 0).cmap
        for string in strings:
            data = string.original_bytes if hasattr(string, "original_bytes") else bytes(string)
            for code in data:
                name = cmap.get(code, ".notdef")
                drawn.append(
                    Drawn(
                        base_font=base_font,
                        gid=program.getGlyphID(name),
                        outline=outline(program, name),
                        text=to_unicode.get(code, ""),
                        width=widths[code - first_char] * size / 1000,
                    )
                )
    return drawn


def has_private_use(text: str) -> bool:
    """Return True if text contains a private-use code point (BMP or supplementary)."""
    return any(unicodedata.category(ch) == "Co" for ch in text)


def pdftotext(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "out.pdf"
    path.write_bytes(pdf)
    result = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], check=True, capture_output=True)
    return result.stdout.decode("utf-8")


def nonempty_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


# --- fixtures ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def fontset() -> FontSet:
    fs = load_fonts()
    assert not fs.fallback
    return fs


@pytest.fixture(scope="module")
def ipamj() -> TTFont:
    return TTFont(str(IPAMJ), lazy=True)


@pytest.fixture(scope="module")
def ipaexg() -> TTFont:
    return TTFont(str(IPAEX_GOTHIC), lazy=True)


# --- tests -------------------------------------------------------------------------


@needs_ttf
@pytest.mark.parametrize(
    "sequence",
    [f"{KUZU_IVS}城 太郎", TSUJI_IVS, WATANABE_IVS],
    ids=["kuzu-E0102", "tsuji-E0102", "watanabe-E0110"],
)
def test_ivs_draws_variant_glyph(fontset: FontSet, ipamj: TTFont, sequence: str) -> None:
    base, selector = sequence[0], sequence[1]
    uvs = format14(ipamj)
    assert (ord(base), ord(selector)) in uvs, "the font must define this sequence"
    variant_outline = outline(ipamj, uvs[(ord(base), ord(selector))])
    base_outline = outline(ipamj, ipamj.getBestCmap()[ord(base)])
    assert variant_outline != base_outline, "variant and base glyph must differ for the test to mean anything"

    with_ivs = drawn_glyphs(render(fontset, [(sequence, ROLE_NAME)]))
    plain = drawn_glyphs(render(fontset, [(sequence.replace(selector, ""), ROLE_NAME)]))

    assert with_ivs[0].outline == variant_outline
    assert with_ivs[0].text == base + selector
    assert "IPAmjMincho" in with_ivs[0].base_font
    assert plain[0].outline == base_outline
    # The selector is not drawn as a glyph of its own.
    assert len(with_ivs) == len(plain) == len(sequence) - 1
    assert all(g.gid != 0 for g in with_ivs + plain)


@needs_ttf
def test_ivs_in_text_role_uses_ipamj_variant(fontset: FontSet, ipamj: TTFont, ipaexg: TTFont) -> None:
    assert (0x845B, 0xE0102) not in format14(ipaexg)
    glyphs = drawn_glyphs(render(fontset, [(f"{KUZU_IVS}飾区", ROLE_TEXT)]))
    assert [g.text for g in glyphs] == [KUZU_IVS, "飾", "区"]
    assert "IPAmjMincho" in glyphs[0].base_font
    assert glyphs[0].outline == outline(ipamj, format14(ipamj)[(0x845B, 0xE0102)])
    assert all("IPAexGothic" in g.base_font for g in glyphs[1:])


@needs_ttf
def test_sequence_only_in_other_font(fontset: FontSet, ipamj: TTFont, ipaexg: TTFont) -> None:
    """Adobe-Japan1 sequences exist only in IPAex: a real variant is borrowed, a default one is not."""
    mj, ex = format14(ipamj), format14(ipaexg)
    variant_key, default_key = (0x845B, 0xE0100), (0x845B, 0xE0101)
    if variant_key in mj or default_key in mj or variant_key not in ex or default_key not in ex:
        pytest.skip("font versions differ from the ones this test was written for")
    assert ex[default_key] == ipaexg.getBestCmap()[0x845B], "E0101 is a default sequence in IPAex"

    borrowed, default = drawn_glyphs(render(fontset, [("葛\U000e0100", ROLE_TEXT), ("葛\U000e0101", ROLE_NAME)]))
    assert "IPAexGothic" in borrowed.base_font
    assert borrowed.outline == outline(ipaexg, ex[variant_key])
    assert borrowed.text == "葛\U000e0100"
    # In a name the same glyph comes from IPAmj's equivalent Moji_Joho sequence: one typeface per name.
    (same,) = drawn_glyphs(render(fontset, [("葛\U000e0100", ROLE_NAME)]))
    assert "IPAmjMincho" in same.base_font
    assert same.outline == outline(ipamj, mj[(0x845B, 0xE0102)])
    assert same.text == "葛\U000e0100"
    assert "IPAmjMincho" in default.base_font
    assert default.outline == outline(ipamj, ipamj.getBestCmap()[0x845B])
    assert default.text == "葛\U000e0101"


@needs_ttf
@needs_poppler
def test_missing_character_draws_placeholder(fontset: FontSet, ipamj: TTFont, ipaexg: TTFont, tmp_path: Path) -> None:
    missing = "\ua66e"  # CYRILLIC LETTER MULTIOCULAR O: in neither IPA font
    assert ord(missing) not in ipamj.getBestCmap() and ord(missing) not in ipaexg.getBestCmap()
    pdf = render(fontset, [(f"山{missing}田", ROLE_NAME)])
    glyphs = drawn_glyphs(pdf)
    assert glyphs[1].gid != 0
    assert glyphs[1].outline == outline(ipamj, ipamj.getBestCmap()[0x3013])  # GETA MARK
    assert nonempty_lines(pdftotext(pdf, tmp_path)) == [f"山{missing}田"]


@needs_ttf
def test_unknown_sequence_draws_base_glyph(fontset: FontSet, ipamj: TTFont) -> None:
    base, selector = UNKNOWN_IVS
    if (ord(base), ord(selector)) in format14(ipamj):
        pytest.skip("font unexpectedly defines the 'unknown' sequence")
    glyphs = drawn_glyphs(render(fontset, [(UNKNOWN_IVS, ROLE_NAME)]))
    assert len(glyphs) == 1
    assert glyphs[0].gid != 0
    assert glyphs[0].outline == outline(ipamj, ipamj.getBestCmap()[ord(base)])
    assert glyphs[0].text == UNKNOWN_IVS
    assert fontset.string_width(UNKNOWN_IVS, ROLE_NAME, 10) == fontset.string_width(base, ROLE_NAME, 10)


@needs_ttf
@pytest.mark.parametrize("role", [ROLE_NAME, ROLE_TEXT])
def test_non_bmp_character(fontset: FontSet, ipamj: TTFont, ipaexg: TTFont, role: str) -> None:
    assert 0x20BB7 not in ipaexg.getBestCmap(), "IPAex lacks 𠮷, so role text must fall back"
    glyphs = drawn_glyphs(render(fontset, [(f"{YOSHI}田", role)]))
    assert [g.text for g in glyphs] == [YOSHI, "田"]
    assert all(g.gid != 0 for g in glyphs)
    assert "IPAmjMincho" in glyphs[0].base_font
    assert glyphs[0].outline == outline(ipamj, ipamj.getBestCmap()[0x20BB7])
    expected_font = "IPAmjMincho" if role == ROLE_NAME else "IPAexGothic"
    assert expected_font in glyphs[1].base_font


@needs_ttf
def test_no_notdef_drawn(fontset: FontSet) -> None:
    glyphs = drawn_glyphs(render(fontset, SAMPLES))
    assert glyphs
    assert all(g.gid != 0 for g in glyphs)


@needs_ttf
@needs_poppler
def test_text_extraction_round_trips(fontset: FontSet, tmp_path: Path) -> None:
    pdf = render(fontset, SAMPLES)
    expected = [text for text, _role in SAMPLES]

    poppler = pdftotext(pdf, tmp_path)
    assert nonempty_lines(poppler) == expected
    assert not has_private_use(poppler)

    extracted = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert nonempty_lines(extracted) == expected
    assert not has_private_use(extracted)


@needs_ttf
@needs_poppler
def test_fonts_embedded_and_subset(fontset: FontSet, tmp_path: Path) -> None:
    path = tmp_path / "fonts.pdf"
    path.write_bytes(render(fontset, SAMPLES))
    out = subprocess.run(["pdffonts", str(path)], check=True, capture_output=True, text=True).stdout
    rows = [line.split() for line in out.splitlines()[2:] if line.strip()]
    # reportlab's canvas declares its initial Helvetica in every page preamble; it
    # draws nothing with it, so it is the only non-IPA font allowed here.
    assert {row[0] for row in rows if "IPA" not in row[0]} <= {"Helvetica"}
    rows = [row for row in rows if "IPA" in row[0]]
    assert {row[0].split("+", 1)[-1] for row in rows} == {"IPAmjMincho", "IPAexGothic"}
    for row in rows:
        emb, sub, uni = row[-5:-2]
        assert (emb, sub, uni) == ("yes", "yes", "yes"), row
        assert re.fullmatch(r"[A-Z]{6}\+\S+", row[0]), row


@needs_ttf
def test_output_is_deterministic(fontset: FontSet) -> None:
    first = render_samples()
    assert render_samples() == first
    # Another process that allocated other aliases first must still produce the same
    # bytes: private-use alias values must never leak into the PDF.
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    script = (
        "import sys\n"
        "from tests.forms.test_fonts import render_samples\n"
        "sys.stdout.buffer.write(render_samples(perturb=True))\n"
    )
    other = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=env, check=True, capture_output=True
    ).stdout
    assert other == first


@needs_ttf
def test_string_width_uses_variant_glyph(fontset: FontSet, ipamj: TTFont) -> None:
    variant_name = format14(ipamj)[(0x845B, 0xE0102)]
    advance = ipamj["hmtx"][variant_name][0]
    expected = advance * 10 / ipamj["head"].unitsPerEm
    width = fontset.string_width(KUZU_IVS, ROLE_NAME, 10)
    assert width > 0
    assert width == pytest.approx(expected)
    # One glyph only: no extra advance for the selector.
    assert width == pytest.approx(fontset.string_width("葛", ROLE_NAME, 10))


@needs_ttf
@pytest.mark.parametrize("text, role", SAMPLES)
def test_string_width_matches_drawn_advance(fontset: FontSet, text: str, role: str) -> None:
    glyphs = drawn_glyphs(render(fontset, [(text, role)], size=12))
    assert sum(g.width for g in glyphs) == pytest.approx(fontset.string_width(text, role, 12))


@needs_ttf
def test_aligned_drawing_uses_string_width(fontset: FontSet) -> None:
    text = f"{KUZU_IVS}城 {YOSHI}田"
    width = fontset.string_width(text, ROLE_NAME, 12)
    for method, expected_x in (
        (fontset.draw_right_string, 300 - width),
        (fontset.draw_centred_string, 300 - width / 2),
    ):
        buf = io.BytesIO()
        canvas = rl_canvas.Canvas(buf, invariant=1)
        method(canvas, 300, 500, text, role=ROLE_NAME, size=12)
        canvas.showPage()
        canvas.save()
        reader = PdfReader(io.BytesIO(buf.getvalue()))
        page = reader.pages[0]
        origins = [ops for ops, op in ContentStream(page.get_contents(), reader).operations if op == b"Tm"]
        assert len(origins) == 1
        assert float(origins[0][4]) == pytest.approx(expected_x, abs=0.01)


@needs_ttf
def test_register_is_idempotent_and_role_checked(fontset: FontSet) -> None:
    fontset.register()
    fontset.register()
    assert load_fonts() is fontset
    with pytest.raises(ValueError):
        fontset.string_width("山田", "signature", 10)


@needs_ttf
def test_nothing_personal_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="app.forms.fonts")
    render(load_fonts(), SAMPLES)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for text, _role in SAMPLES:
        for word in text.split():
            assert word not in logged


@pytest.fixture
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget FontSets built earlier in this process so load-time warnings are observable."""
    monkeypatch.setattr(fonts_module, "_fontsets", {})


@pytest.mark.usefixtures("fresh_cache")
def test_fallback_to_cid_fonts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="app.forms.fonts")
    kwargs = {
        "text_font": tmp_path / "missing-gothic.ttf",
        "name_font": tmp_path / "missing-mincho.ttf",
        "search_dirs": (),
    }
    fs = load_fonts(**kwargs)
    assert fs.fallback
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert load_fonts(**kwargs) is fs
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1, "warn once"

    pdf = render(fs, [(KUZU_IVS, ROLE_NAME), (f"{YOSHI}田", ROLE_TEXT)])
    reader = PdfReader(io.BytesIO(pdf))
    page = reader.pages[0]
    shown = [
        ops[0].original_bytes if hasattr(ops[0], "original_bytes") else bytes(ops[0])
        for ops, op in ContentStream(page.get_contents(), reader).operations
        if op == b"Tj"
    ]
    # UCS-2 encoded base character only; the non-BMP character becomes the placeholder.
    assert shown[0] == "葛".encode("utf-16-be")
    assert shown[1] == "〓田".encode("utf-16-be")
    assert fs.string_width(KUZU_IVS, ROLE_NAME, 10) == pytest.approx(fs.string_width("葛", ROLE_NAME, 10))
    assert fs.string_width(KUZU_IVS, ROLE_NAME, 10) > 0
    assert all(KUZU_IVS not in r.getMessage() for r in caplog.records)


@pytest.mark.usefixtures("fresh_cache")
def test_fallback_when_search_dirs_empty(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="app.forms.fonts")
    fs = load_fonts(search_dirs=())
    assert fs.fallback
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert fs.string_width(KUZU_IVS, ROLE_TEXT, 10) > 0
    render(fs, [(KUZU_IVS, ROLE_TEXT), (UNKNOWN_IVS, ROLE_NAME)])


@needs_ttf
@pytest.mark.usefixtures("fresh_cache")
def test_broken_font_file_falls_back(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="app.forms.fonts")
    broken = tmp_path / "ipamjm.ttf"
    broken.write_bytes(b"this is not a font")
    fs = load_fonts(text_font=IPAEX_GOTHIC, name_font=broken)
    assert fs.fallback
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    render(fs, [(KUZU_IVS, ROLE_NAME), (f"{YOSHI}田", ROLE_TEXT)])


@needs_ttf
def test_partial_fallback_keeps_name_variants(tmp_path: Path, ipamj: TTFont) -> None:
    fs = load_fonts(text_font=tmp_path / "missing.ttf", name_font=IPAMJ)
    assert fs.fallback
    glyphs = drawn_glyphs(render(fs, [(KUZU_IVS, ROLE_NAME)]))
    assert glyphs[0].outline == outline(ipamj, format14(ipamj)[(0x845B, 0xE0102)])
