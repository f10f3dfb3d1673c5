"""The drawing pass: replay page primitives on a reportlab canvas and write deterministic PDFs."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence

import segno
from pypdf import PdfReader, PdfWriter, Transformation
from pypdf.generic import ArrayObject, ByteStringObject
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen.canvas import Canvas

from app.forms.fonts import ROLE_TEXT
from app.forms.layout import FormPlan
from app.forms.primitives import QR, QR_BORDER, RULE, Image, Page, Poly, Prim, Rect, Text
from app.forms.render_options import RenderOptions


class Drawer:
    """Replays page prims on one reportlab canvas."""

    def __init__(self, options: RenderOptions, first_size: tuple[float, float], title: str) -> None:
        self.fonts = options.fonts
        self.fonts.register()
        self.buffer = io.BytesIO()
        # initialFontName: a TrueType initial font keeps reportlab from declaring an
        # unembedded Helvetica in every page preamble.
        self.canvas = Canvas(self.buffer, pagesize=first_size, invariant=1, pageCompression=1,
                             initialFontName=self.fonts.font_name(ROLE_TEXT), lang="ja")
        self.canvas.setTitle(title)
        self.canvas.setCreator("kakanai")
        self.canvas.setAuthor("")
        self.canvas.setSubject("")
        # One ImageReader for every signature cell: reportlab then embeds one image XObject.
        png = options.signature_png
        self.signature = ImageReader(io.BytesIO(png)) if png is not None else None
        self._qr: dict[str, tuple[bytearray, ...]] = {}
        # One ImageReader per signer's PNG, so each signature is embedded once per PDF.
        self._images: dict[bytes, ImageReader] = {}

    def draw(self, pages: Sequence[Page]) -> None:
        for page in pages:
            self.canvas.setPageSize(page.size)
            for prim in page.prims:
                self._prim(prim)
            self.canvas.showPage()

    def finish(self) -> bytes:
        self.canvas.save()
        return self.buffer.getvalue()

    def _prim(self, prim: Prim) -> None:
        c = self.canvas
        if isinstance(prim, Text):
            c.setFillGray(prim.grey)
            draw = {"left": self.fonts.draw_string, "center": self.fonts.draw_centred_string,
                    "right": self.fonts.draw_right_string}[prim.align]
            draw(c, prim.x, prim.y, prim.text, role=prim.role, size=prim.size)
        elif isinstance(prim, Rect):
            b = prim.box
            if prim.fill is not None:
                c.setFillGray(prim.fill)
            c.setStrokeGray(0)
            c.setLineWidth(prim.stroke or RULE)
            c.rect(b.x, b.y, b.w, b.h, stroke=1 if prim.stroke else 0, fill=1 if prim.fill is not None else 0)
        elif isinstance(prim, Poly):
            c.setStrokeGray(0)
            c.setLineWidth(prim.width)
            c.setLineJoin(1)
            c.setLineCap(1)
            path = c.beginPath()
            path.moveTo(*prim.points[0])
            for point in prim.points[1:]:
                path.lineTo(*point)
            c.drawPath(path, stroke=1, fill=0)
            c.setLineJoin(0)
            c.setLineCap(0)
        elif isinstance(prim, Image):
            image = self.signature
            if prim.data is not None:
                image = self._images.get(prim.data)
                if image is None:
                    image = self._images[prim.data] = ImageReader(io.BytesIO(prim.data))
            if image is not None:
                b = prim.box
                c.drawImage(image, b.x, b.y, b.w, b.h, mask="auto")
        elif isinstance(prim, QR):
            self._draw_qr(prim)

    def _draw_qr(self, prim: QR) -> None:
        matrix = self._qr.get(prim.data)
        if matrix is None:
            matrix = self._qr[prim.data] = tuple(segno.make_qr(prim.data, error="m").matrix)
        c = self.canvas
        b = prim.box
        module = b.w / (len(matrix) + 2 * QR_BORDER)
        # White ground first: on a template page the corner may not be empty.
        c.setFillGray(1)
        c.rect(b.x, b.y, b.w, b.h, stroke=0, fill=1)
        path = c.beginPath()
        for r, row in enumerate(matrix):
            for col, dark in enumerate(row):
                if dark:
                    path.rect(b.x + (QR_BORDER + col) * module, b.top - (QR_BORDER + r + 1) * module, module, module)
        c.setFillGray(0)
        c.drawPath(path, stroke=0, fill=1)


def write_pdf(writer: PdfWriter, title: str, seed: bytes) -> bytes:
    """Serialise a pypdf writer deterministically (content-derived /ID, fixed metadata)."""
    writer.add_metadata({"/Title": title, "/Creator": "kakanai", "/Producer": "kakanai (reportlab, pypdf)"})
    digest = ByteStringObject(hashlib.sha256(seed).digest()[:16])
    # pypdf has no public setter; without an /ID it would not write one, with encryption a random one.
    writer._ID = ArrayObject([digest, digest])
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def finish_plan(plan: FormPlan, options: RenderOptions) -> bytes:
    """Draw one planned form; merge the overlay onto its template when it has one."""
    drawer = Drawer(options, plan.pages[0].size, plan.form.title)
    drawer.draw(plan.pages)
    overlay = drawer.finish()
    if plan.template is None or plan.form.values_only:
        return overlay
    assert plan.form.template is not None
    overlay_reader = PdfReader(io.BytesIO(overlay))
    writer = PdfWriter()
    count = len(plan.template.pages)
    for index, template_page in enumerate(plan.template.pages):
        page = writer.add_page(template_page)
        box = template_page.mediabox
        # Overlay pages start at (0, 0); a template's media box need not.
        page.merge_transformed_page(overlay_reader.pages[index],
                                    Transformation().translate(float(box.left), float(box.bottom)))
        page.compress_content_streams()
    for extra in overlay_reader.pages[count:]:
        writer.add_page(extra)
    return write_pdf(writer, plan.form.title, plan.form.template + overlay)

