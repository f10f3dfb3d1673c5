"""PDF pages as PNG images (the review's preview of the actual forms), with PDFium via pypdfium2.

Pure like the rest of app/forms: PDF bytes in, PNG bytes out. PDFium is not thread-safe, and FastAPI runs
sync routes in a thread pool (a tablet loads the preview images in parallel), so every call into it holds
one lock.
"""

from __future__ import annotations

import io
import threading

import pypdfium2 as pdfium

__all__ = ["PREVIEW_WIDTH", "page_png", "page_sizes"]

PREVIEW_WIDTH = 1000  # pixels across a page image, whatever the paper size (A4 or A3)
_LOCK = threading.Lock()


def page_sizes(pdf: bytes) -> list[tuple[float, float]]:
    """Width and height in points of each page."""
    with _LOCK:
        doc = pdfium.PdfDocument(pdf)
        try:
            return [tuple(doc[i].get_size()) for i in range(len(doc))]  # type: ignore[misc]
        finally:
            doc.close()


def page_png(pdf: bytes, index: int, *, width_px: int = PREVIEW_WIDTH) -> bytes:
    """Page `index` (0-based) rendered `width_px` wide on white, as PNG bytes."""
    with _LOCK:
        doc = pdfium.PdfDocument(pdf)
        try:
            page = doc[index]
            width_pt, _ = page.get_size()
            image = page.render(scale=width_px / width_pt, fill_color=(255, 255, 255, 255)).to_pil()
        finally:
            doc.close()
    out = io.BytesIO()
    image.convert("RGB").save(out, format="PNG", optimize=False)
    return out.getvalue()
