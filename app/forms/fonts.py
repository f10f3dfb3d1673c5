"""Fonts for pre-filled PDF forms: IPAex Gothic for text, IPAmj Mincho for residents' names.

Residents' names may contain ideographic variation sequences (IVS, a kanji followed
by U+E0100..U+E01EF or U+FE00..U+FE0F) and characters outside the BMP (e.g. U+20BB7).
reportlab knows nothing about variation selectors: it maps every code point through
the font's cmap on its own, so a selector becomes a .notdef box and the variant glyph
is never reached.

How we get the variant glyphs drawn without rebuilding the 30 MB IPAmj font:
reportlab resolves code point -> glyph through the parsed ``face.charToGlyph`` dict
(and widths through ``face.charWidths``) both when drawing and when subsetting, and
the embedded subset gets its own cmap keyed by one-byte codes. So "adding cmap
entries" only means adding dict entries: each glyph that has no code point of its own
(IVS variants, the base glyph of an unknown sequence, the placeholder for a missing
character) gets an alias code point in the Supplementary Private Use Areas, and the
text is rewritten to use those aliases just before it is handed to reportlab.
reportlab's own HarfBuzz support uses the same trick (``TTFont.__addPrivate``).
Loading therefore costs one reportlab parse plus one lazy fontTools read of cmap,
glyph order and hmtx (about 0.2 s for both fonts), and no second 30 MB copy of IPAmj
has to be compiled and kept in memory.

The alias code points never reach the PDF: the subset font's cmap and the content
stream use one-byte codes, and we replace reportlab's /ToUnicode CMap so each code
maps back to the exact stored sequence (base + selector), with non-BMP characters
written as UTF-16 surrogate pairs (reportlab writes e.g. ``<20BB7>``, which is not
valid UTF-16BE). Text extraction therefore never yields private-use code points, and
the PDF bytes do not depend on the order in which aliases were allocated.

Never log the text being drawn: it is personal data.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import threading
import time
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from fontTools.ttLib import TTFont as FontToolsFont
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont

__all__ = [
    "DEFAULT_DIRS",
    "PLACEHOLDER",
    "ROLE_NAME",
    "ROLE_TEXT",
    "FontSet",
    "is_variation_selector",
    "load_fonts",
    "strip_variation_selectors",
]

logger = logging.getLogger(__name__)

ROLE_TEXT = "text"
ROLE_NAME = "name"
ROLES = (ROLE_TEXT, ROLE_NAME)

TEXT_FONT_FILE = "ipaexg.ttf"
NAME_FONT_FILE = "ipamjm.ttf"
# Debian's fonts-ipaexfont-gothic / fonts-ipamj-mincho locations first, so the usual
# case needs no directory walk; the generic roots are walked only when those miss.
DEFAULT_DIRS: tuple[Path, ...] = (
    Path("/usr/share/fonts/opentype/ipaexfont-gothic"),
    Path("/usr/share/fonts/truetype/ipamj"),
    Path("/usr/share/fonts"),
    Path("/usr/local/share/fonts"),
)

CID_TEXT_FONT = "HeiseiKakuGo-W5"
CID_NAME_FONT = "HeiseiMin-W3"

# GETA MARK: the customary Japanese placeholder for a kanji the typeface lacks; a
# visible mark is safer on an official form than a blank or box that may go unnoticed.
PLACEHOLDER = "\u3013"

# Supplementary PUA-A then PUA-B; plane 15 alone holds all 11,474 IPAmj sequences.
_ALIAS_RANGES = ((0xF0000, 0xFFFFD), (0x100000, 0x10FFFD))
# Characters with no glyph that are better dropped than replaced by a placeholder.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Mn"})


# Adobe-Japan1 sequences (what IPAex knows) and the Moji_Joho sequence with the same glyph in IPAmj,
# so that a name keeps one typeface: 葛+U+E0100 (JIS90 form, 人 at the bottom) is MJ022335, 辻+U+E0100
# (one-dot しんにょう) is MJ025760. Checked by drawing both glyphs side by side.
EQUIVALENT_SEQUENCES: dict[str, str] = {
    "\u845b\U000e0100": "\u845b\U000e0102",
    "\u8fbb\U000e0100": "\u8fbb\U000e0102",
}


def is_variation_selector(char: str) -> bool:
    """Return True for a Unicode variation selector (VS1-VS16 or VS17-VS256)."""
    cp = ord(char)
    return 0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF


def strip_variation_selectors(text: str) -> str:
    """Return text without variation selectors (base characters only)."""
    return "".join(ch for ch in text if not is_variation_selector(ch))


def _clusters(text: str) -> Iterator[str]:
    """Split text into base characters, each with the selectors that follow it."""
    cluster = ""
    for ch in text:
        if cluster and is_variation_selector(ch):
            cluster += ch
            continue
        if cluster:
            yield cluster
        cluster = ch
    if cluster:
        yield cluster


def _utf16_hex(text: str) -> str:
    return text.encode("utf-16-be").hex().upper()


def _to_unicode_cmap(font_name: str, subset: Sequence[int], alias_text: dict[int, str]) -> str:
    """Build a /ToUnicode CMap for one 256-code subset, expanding alias code points."""
    entries = [
        (index, alias_text.get(code) or chr(code))
        for index, code in enumerate(subset)
        # Code 0 is .notdef / unused filler and must not extract as U+0000.
        if code
    ]
    lines = [
        "/CIDInit /ProcSet findresource begin",
        "12 dict begin",
        "begincmap",
        "/CIDSystemInfo",
        f"<< /Registry ({font_name})",
        f"/Ordering ({font_name})",
        "/Supplement 0",
        ">> def",
        f"/CMapName /{font_name} def",
        "/CMapType 2 def",
        "1 begincodespacerange",
        "<00> <FF>",
        "endcodespacerange",
    ]
    # The CMap format allows at most 100 entries per bfchar block.
    for start in range(0, len(entries), 100):
        chunk = entries[start : start + 100]
        lines.append(f"{len(chunk)} beginbfchar")
        lines.extend(f"<{index:02X}> <{_utf16_hex(text)}>" for index, text in chunk)
        lines.append("endbfchar")
    lines += [
        "endcmap",
        "CMapName currentdict /CMap defineresource pop",
        "end",
        "end",
    ]
    return "\n".join(lines)


def _read_variation_sequences(
    path: Path, char_to_glyph: dict[int, int]
) -> dict[tuple[int, int], tuple[int, int, bool]]:
    """Read the font's cmap format 14 as {(base, selector): (glyph id, advance in font units, is default)}."""
    # lazy=True: only cmap, glyph order and hmtx are parsed, not the 30 MB glyf table.
    font = FontToolsFont(str(path), lazy=True)
    try:
        glyph_order = font.getGlyphOrder()
        glyph_ids = font.getReverseGlyphMap()
        hmtx = font["hmtx"]
        sequences: dict[tuple[int, int], tuple[int, int, bool]] = {}
        for table in font["cmap"].tables:
            if table.format != 14:
                continue
            for selector, pairs in table.uvsDict.items():
                for base, glyph_name in pairs:
                    # None marks a "default" sequence: the base character's own glyph.
                    is_default = glyph_name is None
                    gid = char_to_glyph.get(base) if is_default else glyph_ids.get(glyph_name)
                    if gid:
                        sequences[(base, selector)] = (gid, hmtx[glyph_order[gid]][0], is_default)
        return sequences
    finally:
        font.close()


class _TableView:
    """A read-only window on one table of a font file: slicing copies only the slice."""

    __slots__ = ("_view",)

    def __init__(self, view: memoryview) -> None:
        self._view = view

    def __getitem__(self, key: slice) -> bytes:
        return self._view[key].tobytes()

    def __len__(self) -> int:
        return len(self._view)


def _share_glyf_table(face: Any) -> None:
    """Serve the glyf table to reportlab's subsetter as a view instead of a fresh copy.

    reportlab's makeSubset calls get_table('glyf'), which slices the whole table out of the
    font file (28 MB for IPAmj) for every 256-glyph subset of every PDF, then only slices
    single glyphs out of that copy. Profiling the bundle showed this copy as its largest
    single cost; a view whose slices are bytes gives makeSubset exactly the same data.
    """
    if not hasattr(face, "_ttf_data") or not hasattr(face, "get_table_pos"):
        return
    original = face.get_table
    try:
        pos, length = face.get_table_pos("glyf")
    except KeyError:
        return
    glyf = _TableView(memoryview(face._ttf_data)[pos:pos + length])

    def get_table(tag: str) -> Any:
        return glyf if tag == "glyf" else original(tag)

    face.get_table = get_table


class _FormTTFont(TTFont):
    """reportlab TTFont that can also draw glyphs with no code point of their own."""

    def __init__(self, name: str, path: Path) -> None:
        super().__init__(name, str(path))
        self.path = path
        _share_glyf_table(self.face)
        self._alias_text: dict[int, str] = {}
        # Keyed by (text, glyph) so an alias can never draw a glyph other than the one asked for.
        self._alias_code: dict[tuple[str, int], int] = {}
        self._free_codes = itertools.chain.from_iterable(range(lo, hi + 1) for lo, hi in _ALIAS_RANGES)
        self._alias_lock = threading.Lock()
        # Widths come from fontTools' hmtx: reportlab's face.hmetrics holds already
        # scaled advances for glyphs past numberOfHMetrics (most IPAmj glyphs).
        sequences = _read_variation_sequences(path, self.face.charToGlyph)
        self._variants = {key: (gid, self.pdfScale(advance)) for key, (gid, advance, _) in sequences.items()}
        # Sequences the font declares as "the base glyph" (default UVS); another font's
        # base glyph is just as right for them, so they must not pull in this font.
        self._default_sequences = {key for key, (_, _, is_default) in sequences.items() if is_default}
        # Known sequences get aliases in sorted order so numbering is reproducible; the
        # values never reach the PDF, this only makes debugging predictable.
        for (base, selector), (gid, width) in sorted(self._variants.items()):
            self.alias(chr(base) + chr(selector), gid, width)

    @property
    def variation_sequence_count(self) -> int:
        """Return how many (base, selector) pairs the font's format 14 cmap maps."""
        return len(self._variants)

    def glyph(self, char: str) -> int | None:
        """Return the font's own glyph id for char, or None if it has none."""
        cp = ord(char)
        if cp in self._alias_text:
            # An alias value occurring in input text is foreign private-use data, not ours.
            return None
        return self.face.charToGlyph.get(cp) or None

    def width(self, char: str) -> float:
        """Return the advance of one of the font's own characters in 1/1000 em."""
        return self.face.charWidths.get(ord(char), self.face.defaultWidth)

    def variant(self, base: str, selector: str, *, allow_default: bool = True) -> tuple[int, float] | None:
        """Return (glyph id, width) of a variation sequence, or None if the font lacks it."""
        key = (ord(base), ord(selector))
        if not allow_default and key in self._default_sequences:
            return None
        return self._variants.get(key)

    def alias(self, text: str, gid: int, width: float) -> str | None:
        """Return a code point drawing glyph gid that extracts as text, or None when exhausted."""
        with self._alias_lock:
            code = self._alias_code.get((text, gid))
            if code is None:
                face = self.face
                code = next((c for c in self._free_codes if c not in face.charToGlyph), None)
                if code is None:
                    return None
                face.charToGlyph[code] = gid
                face.glyphToChar.setdefault(gid, []).append(code)
                face.charWidths[code] = width
                self._alias_code[(text, gid)] = code
                self._alias_text[code] = text
            return chr(code)

    def addObjects(self, doc: Any) -> None:
        """Embed the subsets as reportlab does, then replace their /ToUnicode CMaps."""
        # reportlab deletes the per-document state inside addObjects, so read it first.
        state = self.state.get(doc)
        subsets = [list(subset) for subset in state.subsets] if state else []
        internal_name = state.internalName if state else None
        super().addObjects(doc)
        if internal_name is None:
            return
        pdf_fonts = doc.idToObject["BasicFonts"].dict
        for index, subset in enumerate(subsets):
            pdf_font = pdf_fonts[f"{internal_name}+{index}"]
            stream = doc.idToObject[pdf_font.ToUnicode.name]
            stream.content = _to_unicode_cmap(pdf_font.BaseFont, subset, self._alias_text)


_Font = _FormTTFont | UnicodeCIDFont

_ttf_cache: dict[Path, _FormTTFont] = {}
_cid_cache: dict[str, UnicodeCIDFont] = {}
_cache_lock = threading.RLock()


def _load_ttf(path: Path) -> _FormTTFont:
    """Return the process-wide font object for path, parsing the file on first use."""
    with _cache_lock:
        font = _ttf_cache.get(path)
        if font is None:
            # The registry name only needs to be unique per file; it never appears in the PDF.
            digest = hashlib.sha256(str(path).encode()).hexdigest()[:8]
            font = _ttf_cache[path] = _FormTTFont(f"Forms-{path.stem}-{digest}", path)
        return font


def _load_cid(name: str) -> UnicodeCIDFont:
    with _cache_lock:
        font = _cid_cache.get(name)
        if font is None:
            font = _cid_cache[name] = UnicodeCIDFont(name)
        return font


def _find_font_file(explicit: Path | None, filename: str, search_dirs: Sequence[Path]) -> Path | None:
    """Return the font file to use, or None; an explicit path is never second-guessed."""
    if explicit is not None:
        return explicit.resolve() if explicit.is_file() else None
    for directory in search_dirs:
        candidate = directory / filename
        if candidate.is_file():
            return candidate.resolve()
    for directory in search_dirs:
        if directory.is_dir():
            matches = sorted(directory.rglob(filename))
            if matches:
                return matches[0].resolve()
    return None


class FontSet:
    """Fonts of one process: picks the font per role and character and draws with reportlab."""

    def __init__(self, fonts: dict[str, _Font], *, fallback: bool, load_seconds: float = 0.0) -> None:
        self._fonts = fonts
        self.fallback = fallback
        self.load_seconds = load_seconds
        ttfs = list(dict.fromkeys(f for f in fonts.values() if isinstance(f, _FormTTFont)))
        # Per-character fallback order: the role's own TTF first, then the other TTF.
        self._chains: dict[str, list[_FormTTFont]] = {
            role: [font] + [other for other in ttfs if other is not font]
            for role, font in fonts.items()
            if isinstance(font, _FormTTFont)
        }
        self._registered = False
        self._lock = threading.Lock()

    def undrawable_sequences(self, text: str) -> list[str]:
        """Variation sequences in text that no font can draw (they would print as the base character)."""
        out: list[str] = []
        for cluster in _clusters(text):
            if len(cluster) < 2 or not is_variation_selector(cluster[1]) or cluster in out:
                continue
            same = EQUIVALENT_SEQUENCES.get(cluster[:2])
            ttfs = [f for f in dict.fromkeys(self._fonts.values()) if isinstance(f, _FormTTFont)]
            if not any(f.variant(cluster[0], cluster[1]) or (same and f.variant(cluster[0], same[1])) for f in ttfs):
                out.append(cluster)
        return out

    def font_name(self, role: str) -> str:
        """Return the reportlab font name used for a role's own characters."""
        return self._font(role).fontName

    def register(self) -> None:
        """Register the fonts with reportlab (idempotent)."""
        if self._registered:
            return
        with self._lock:
            if self._registered:
                return
            for font in dict.fromkeys(self._fonts.values()):
                pdfmetrics.registerFont(font)
                if isinstance(font, _FormTTFont) and pdfmetrics.getFont(font.fontName) is not font:
                    # registerFont reuses any TTFont already registered for the same face
                    # name (e.g. a plain TTFont of IPAmj from elsewhere), which would lose
                    # our aliases and /ToUnicode handling; drawing looks fonts up by name.
                    pdfmetrics._fonts[font.fontName] = font
            self._registered = True

    def string_width(self, text: str, role: str, size: float) -> float:
        """Return the width in points of text as draw_string would draw it."""
        return sum(font.stringWidth(run, size) for font, run in self._runs(text, role))

    def draw_string(self, canvas: Any, x: float, y: float, text: str, *, role: str, size: float) -> None:
        """Draw text left-aligned with its baseline starting at (x, y)."""
        self._draw(canvas, x, y, self._runs(text, role), size)

    def draw_centred_string(self, canvas: Any, x: float, y: float, text: str, *, role: str, size: float) -> None:
        """Draw text centred on x with its baseline at y."""
        runs = self._runs(text, role)
        self._draw(canvas, x - self._width(runs, size) / 2, y, runs, size)

    def draw_right_string(self, canvas: Any, x: float, y: float, text: str, *, role: str, size: float) -> None:
        """Draw text right-aligned so that it ends at x, baseline at y."""
        runs = self._runs(text, role)
        self._draw(canvas, x - self._width(runs, size), y, runs, size)

    def _font(self, role: str) -> _Font:
        try:
            return self._fonts[role]
        except KeyError:
            raise ValueError(f"unknown font role {role!r}; expected one of {ROLES}") from None

    @staticmethod
    def _width(runs: list[tuple[_Font, str]], size: float) -> float:
        return sum(font.stringWidth(run, size) for font, run in runs)

    def _draw(self, canvas: Any, x: float, y: float, runs: list[tuple[_Font, str]], size: float) -> None:
        if not runs:
            return
        self.register()
        # One text object: PDF advances the pen after each run by the embedded widths,
        # the same widths string_width sums, and the canvas' own font stays untouched.
        text_object = canvas.beginText(x, y)
        for font, run in runs:
            text_object.setFont(font.fontName, size)
            text_object.textOut(run)
        canvas.drawText(text_object)

    def _runs(self, text: str, role: str) -> list[tuple[_Font, str]]:
        """Split text into (font, string to hand to reportlab) runs."""
        font = self._font(role)
        if not isinstance(font, _FormTTFont):
            drawn = "".join(self._cid_char(ch) for ch in text if not is_variation_selector(ch))
            return [(font, drawn)] if drawn else []
        chain = self._chains[role]
        first = chain[0]
        # Most strings (labels, dates, most names) are made only of the first font's own
        # characters: the loop below would return them as one run of the text unchanged, so
        # skip the per-cluster resolution (it was a quarter of the bundle's drawing time).
        if text and all(not is_variation_selector(ch) and first.glyph(ch) is not None for ch in text):
            return [(first, text)]
        runs: list[tuple[_Font, list[str]]] = []
        for cluster in _clusters(text):
            resolved = self._resolve(cluster, chain)
            if resolved is None:
                continue
            run_font, drawn = resolved
            if runs and runs[-1][0] is run_font:
                runs[-1][1].append(drawn)
            else:
                runs.append((run_font, [drawn]))
        return [(run_font, "".join(parts)) for run_font, parts in runs]

    @staticmethod
    def _cid_char(ch: str) -> str:
        # The UCS-2 CID encodings cannot address non-BMP characters (surrogates would
        # select unrelated CIDs), so those become the placeholder.
        if ord(ch) > 0xFFFF or unicodedata.category(ch) == "Cs":
            return PLACEHOLDER
        if unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
            return ""
        return ch

    @staticmethod
    def _resolve(cluster: str, chain: list[_FormTTFont]) -> tuple[_FormTTFont, str] | None:
        """Pick the font and the (possibly aliased) string for one base+selectors cluster."""
        base = cluster[0]
        if unicodedata.category(base) == "Cs":
            # A lone surrogate cannot be written to /ToUnicode as UTF-16.
            base = cluster = "\ufffd"
        if is_variation_selector(base):
            return None  # selectors with no base character: nothing to draw
        if len(cluster) > 1:
            # A variant from the other font beats the role font's base glyph: the shape of
            # a registered name matters more than mincho/gothic consistency (e.g. IPAmj
            # lacks the Adobe-Japan1 sequences 葛+U+E0100 that IPAex has).
            same = EQUIVALENT_SEQUENCES.get(cluster[:2])
            for font in chain:
                variant = font.variant(base, cluster[1], allow_default=font is chain[0])
                if variant is None and same is not None:
                    variant = font.variant(base, same[1])
                if variant is not None:
                    drawn = font.alias(cluster, *variant)
                    if drawn is not None:
                        return font, drawn
        for font in chain:
            gid = font.glyph(base)
            if gid is not None:
                if len(cluster) == 1:
                    return font, base
                # Unknown sequence: base glyph, but keep the selector for text extraction.
                return font, font.alias(cluster, gid, font.width(base)) or base
        if unicodedata.category(base) in _INVISIBLE_CATEGORIES:
            return None
        for font in chain:
            gid = font.glyph(PLACEHOLDER)
            if gid is not None:
                return font, font.alias(cluster, gid, font.width(PLACEHOLDER)) or PLACEHOLDER
        # Neither font has the character nor the placeholder: only .notdef is left.
        return chain[0], base


_fontsets: dict[tuple[Any, ...], FontSet] = {}


def load_fonts(
    *,
    text_font: Path | None = None,
    name_font: Path | None = None,
    search_dirs: Sequence[Path] = DEFAULT_DIRS,
) -> FontSet:
    """Return the FontSet for these arguments, loading the fonts once per process."""
    key = (
        None if text_font is None else Path(text_font),
        None if name_font is None else Path(name_font),
        tuple(Path(d) for d in search_dirs),
    )
    with _cache_lock:
        fontset = _fontsets.get(key)
        if fontset is None:
            fontset = _fontsets[key] = _build_fontset(*key)
        return fontset


def _build_fontset(text_font: Path | None, name_font: Path | None, search_dirs: tuple[Path, ...]) -> FontSet:
    started = time.perf_counter()
    wanted = {
        ROLE_TEXT: (_find_font_file(text_font, TEXT_FONT_FILE, search_dirs), CID_TEXT_FONT),
        ROLE_NAME: (_find_font_file(name_font, NAME_FONT_FILE, search_dirs), CID_NAME_FONT),
    }
    fonts: dict[str, _Font] = {}
    problems: list[str] = []
    for role, (path, cid_name) in wanted.items():
        if path is None:
            problems.append(f"{role}: not found")
        else:
            try:
                fonts[role] = _load_ttf(path)
                continue
            except Exception as exc:
                # A broken font file must not stop form rendering: degrade to CID fonts.
                problems.append(f"{role}: cannot load {path} ({type(exc).__name__})")
        fonts[role] = _load_cid(cid_name)
    elapsed = time.perf_counter() - started
    if problems:
        # One warning per FontSet, and FontSets are cached: once per process and configuration.
        logger.warning(
            "TrueType fonts unavailable (%s; text_font=%s, name_font=%s, search_dirs=%s); using built-in CID "
            "fonts, which cannot draw variation glyphs or characters outside the BMP",
            "; ".join(problems),
            text_font,
            name_font,
            [str(d) for d in search_dirs],
        )
    logger.info("fonts loaded in %.3f s", elapsed)
    return FontSet(fonts, fallback=bool(problems), load_seconds=elapsed)
