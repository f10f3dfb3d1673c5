"""The review's preview of the actual form pages, as PNG images rendered on the server.

Each form of the visit is rendered as it will print (documents.render_form_pdfs, no print recorded) and
each page is turned into a PNG (app/forms/page_images.py). Both are kept in this process per case
version, definitions fingerprint and signatures, for a few visits only: the review loads the images
lazily, one request each, and a reload costs nothing. The images hold personal data, so the cache lives
in memory only (never on disk), the URLs carry only the case id, version and page number, and the
responses are not stored by the browser.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.forms.loader import DefinitionSet
from app.forms.page_images import PREVIEW_WIDTH, page_png, page_sizes
from app.models import Case, Signature
from app.services.cases import get_case_or_raise
from app.services.documents import render_form_pdfs

MAX_CASES = 6  # visits whose previews are kept (a counter works on one or two at a time)


@dataclass(frozen=True)
class PreviewPage:
    """One page image of the review: which form, which of its pages, and its size in pixels."""

    index: int  # 1-based across the visit's forms (the image's URL)
    instance_id: str
    title: str
    page: int  # 1-based within the form
    pages: int
    width: int
    height: int


@dataclass
class _Entry:
    pages: list[PreviewPage]
    pdfs: list[tuple[bytes, int]]  # per page: the form's PDF and the page's index in it
    pngs: dict[int, bytes] = field(default_factory=dict)


_CACHE: OrderedDict[tuple[object, ...], _Entry] = OrderedDict()
_LOCK = threading.Lock()


def _key(session: Session, defs: DefinitionSet, case: Case, city_name: str) -> tuple[object, ...]:
    signed = tuple(session.execute(select(Signature.signer, Signature.signed_at)
                                   .where(Signature.case_id == case.id).order_by(Signature.signer)).all())
    return (case.id, case.version, defs.fingerprint, city_name, signed)


def _entry(session: Session, defs: DefinitionSet, case: Case, city_name: str) -> _Entry:
    key = _key(session, defs, case, city_name)
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    pages: list[PreviewPage] = []
    pdfs: list[tuple[bytes, int]] = []
    for inst, result in render_form_pdfs(session, defs=defs, case=case, city_name=city_name):
        sizes = page_sizes(result.pdf)
        for i, (w, h) in enumerate(sizes):
            pages.append(PreviewPage(len(pages) + 1, inst.instance_id, inst.title, i + 1, len(sizes),
                                     PREVIEW_WIDTH, math.ceil(PREVIEW_WIDTH * h / w)))  # as PDFium sizes it
            pdfs.append((result.pdf, i))
    entry = _Entry(pages, pdfs)
    with _LOCK:
        _CACHE[key] = entry
        while len(_CACHE) > MAX_CASES:
            _CACHE.popitem(last=False)
    return entry


def preview_pages(session: Session, *, defs: DefinitionSet, case: Case, city_name: str) -> list[PreviewPage]:
    """The page images of every form of the visit, in print order."""
    return _entry(session, defs, case, city_name).pages


def preview_png(session: Session, *, defs: DefinitionSet, case_id: str, version: int, index: int,
                city_name: str) -> bytes:
    """One page image (PNG) of the visit's forms at `version`; NotFound once the answers have changed."""
    case = get_case_or_raise(session, case_id)
    if version != case.version:
        raise NotFound("この版の申請書の見本はもうありません。確認の画面を開き直してください")
    entry = _entry(session, defs, case, city_name)
    if not 1 <= index <= len(entry.pages):
        raise NotFound("この申請書の見本のページはありません")
    with _LOCK:
        png = entry.pngs.get(index)
    if png is None:
        pdf, page = entry.pdfs[index - 1]
        png = page_png(pdf, page)
        with _LOCK:
            entry.pngs[index] = png
    return png
