"""Page sizes, measures and the drawing primitives the layout pass produces and the drawer replays."""

from __future__ import annotations

from dataclasses import dataclass, field

from reportlab.lib.units import mm

PAGE_SIZES: dict[str, tuple[float, float]] = {
    "A4": (210 * mm, 297 * mm),
    "A3": (297 * mm, 420 * mm),
    "B4": (257 * mm, 364 * mm),
    "B5": (182 * mm, 257 * mm),
}
A4 = PAGE_SIZES["A4"]

MARGIN_X = 12 * mm
MARGIN_TOP = 10 * mm
MARGIN_BOTTOM = 12 * mm
HEADER_H = 22 * mm
BAND_H = 6 * mm
TABLE_HEAD_H = 6 * mm
QR_SIZE = 16 * mm
TEMPLATE_QR_SIZE = 12 * mm
TEMPLATE_QR_INSET = 4 * mm
QR_BORDER = 2  # quiet zone in modules

RULE = 0.5
BAND_FILL = 0.88
BLANK_FILL = 0.93
LABEL_GREY = 0.35
LABEL_SIZE = 6.5
HEADER_LABEL_SIZE = 7.0
TEXT_SIZE = 10.5
NAME_SIZE = 11.5
OPTION_SIZE = 8.5
CHECK_SQUARE = 3 * mm
COMB_MAX_W = 7 * mm
COMB_MIN_H = 4 * mm
PAD_X = 1.2 * mm
PAD_Y = 0.6 * mm
LABEL_BAND = 0.7 * mm + LABEL_SIZE + 0.4 * mm  # label line height at the top of a cell
# The em box of the IPA fonts spans 0.88 em above and 0.12 em below the baseline.
ASCENT = 0.88
LEADING = 1.2
ADDENDUM_TITLE = "別紙（記入しきれなかった内容）"
CONTINUED = "（続き）"

# ---------------------------------------------------------------------------------------------
# Drawing primitives (points, origin bottom-left, as reportlab draws)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def top(self) -> float:
        return self.y + self.h

    @property
    def right(self) -> float:
        return self.x + self.w

    def inset(self, dx: float, dy: float) -> Box:
        return Box(self.x + dx, self.y + dy, max(0.0, self.w - 2 * dx), max(0.0, self.h - 2 * dy))


@dataclass(frozen=True)
class Rect:
    box: Box
    stroke: float = 0.0  # line width; 0 draws no outline
    fill: float | None = None  # grey level


@dataclass(frozen=True)
class Poly:
    points: tuple[tuple[float, float], ...]
    width: float


@dataclass(frozen=True)
class Text:
    x: float
    y: float  # baseline
    text: str
    role: str
    size: float
    align: str = "left"
    grey: float = 0.0


@dataclass(frozen=True)
class Image:
    box: Box
    data: bytes | None = None  # a PNG; None: the render options' signature


@dataclass(frozen=True)
class QR:
    box: Box  # the whole square, quiet zone included
    data: str


Prim = Rect | Poly | Text | Image | QR


@dataclass
class Page:
    size: tuple[float, float]
    kind: str  # first | continued | addendum | template | cover
    prims: list[Prim] = field(default_factory=list)

