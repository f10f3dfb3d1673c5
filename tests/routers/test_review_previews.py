"""The review shows the actual form pages as PNG images before signing: one image per page of every form,
rendered on the server, cached per case version, behind the same staff login as the PDFs."""

from __future__ import annotations

import io
import re
from typing import Any

from fastapi.testclient import TestClient
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import AuditEntry, CaseEvent
from tests.conftest import make_user, page_login

HTML = {"Accept": "text/html"}
IMG = re.compile(r'<img class="page-image" src="(/counter/visits/[^"]+\.png)"[^>]*loading="lazy"[^>]*'
                 r'width="(\d+)" height="(\d+)" alt="([^"]+)"')


def test_the_review_links_one_png_per_form_page(client: TestClient, counter_headers: dict[str, str],
                                                model_case_raw: dict[str, Any], db: Session) -> None:
    created = client.post("/api/v1/cases", json=model_case_raw, headers=counter_headers).json()
    case_id, version = created["id"], created["version"]
    make_user(db, "preview-clerk", "counter")
    page_login(client, "preview-clerk")
    review = client.get(f"/counter/visits/{case_id}/review", headers=HTML)
    assert review.status_code == 200
    images = IMG.findall(review.text)
    pngs = {}
    for src, *_ in images:
        res = client.get(src)
        assert res.status_code == 200 and res.headers["content-type"] == "image/png"
        assert res.headers["cache-control"] == "no-store"
        pngs[src] = res.content
    # On screen, My Numbers are masked in the page images too (the printed forms carry them in full).
    text = _ocr_free_text(client, case_id, version)
    digits = text.replace(" ", "")
    assert "9018" in digits and "12345678" not in digits  # only the last four, as on every screen
    # Rendering the previews is not printing.
    kinds = {e.kind for e in db.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id))}
    assert "form_printed" not in kinds and "bundle_printed" not in kinds
    # As many images as the forms have pages, in print order, each the shape of its page.
    apps = client.get(f"/api/v1/cases/{case_id}/applications", headers=counter_headers).json()["applications"]
    sizes = []
    for app in apps:
        pdf = client.get(f"/counter/visits/{case_id}/forms/{app['id']}.pdf")
        assert pdf.status_code == 200
        sizes += [(float(p.mediabox.width), float(p.mediabox.height), app["title"])
                  for p in PdfReader(io.BytesIO(pdf.content)).pages]
    assert len(images) == len(sizes) >= len(apps) >= 7
    for n, ((src, width, height, alt), (w_pt, h_pt, title)) in enumerate(zip(images, sizes, strict=True), start=1):
        assert src == f"/counter/visits/{case_id}/preview/{version}/{n}.png"  # no personal data in the URL
        assert alt.startswith(f"{title}の見本")
        image = Image.open(io.BytesIO(pngs[src]))
        assert image.format == "PNG" and image.size == (int(width), int(height))
        assert abs(image.size[1] / image.size[0] - h_pt / w_pt) < 0.01  # the form's page, its paper's shape
        dark = sum(image.convert("L").histogram()[:128])
        assert dark > 0.005 * image.size[0] * image.size[1]  # ruled lines and text, not a blank page
    targets = [a.target for a in db.scalars(select(AuditEntry).where(AuditEntry.case_id == case_id))]
    assert "preview page 1" in targets


def _ocr_free_text(client: TestClient, case_id: str, version: int) -> str:
    """The text of the PDFs the previews were drawn from (the same renderer, no OCR needed)."""
    from app.services import page_previews

    entries = [e for k, e in page_previews._CACHE.items() if k[0] == case_id and k[1] == version]
    assert entries, "the previews were not cached for this version"
    pdfs = {id(pdf): pdf for pdf, _ in entries[-1].pdfs}
    return "".join(page.extract_text() for pdf in pdfs.values() for page in PdfReader(io.BytesIO(pdf)).pages)


def test_previews_are_staff_only_and_of_the_current_version(client: TestClient, counter_headers: dict[str, str],
                                                            model_case_raw: dict[str, Any], db: Session) -> None:
    created = client.post("/api/v1/cases", json=model_case_raw, headers=counter_headers).json()
    case_id, version = created["id"], created["version"]
    src = f"/counter/visits/{case_id}/preview/{version}/1.png"
    assert client.get(src, follow_redirects=False).status_code in (401, 303)
    assert client.get(src, headers=counter_headers, follow_redirects=False).status_code in (401, 303)
    make_user(db, "preview-clerk2", "counter")
    page_login(client, "preview-clerk2")
    assert client.get(src).status_code == 200
    assert client.get(f"/counter/visits/{case_id}/preview/{version}/999.png").status_code == 404
    answers = client.get(f"/api/v1/cases/{case_id}?reveal=all", headers=counter_headers).json()["answers"]
    answers["phone"] = "06-1111-2222"
    assert client.put(f"/api/v1/cases/{case_id}/answers", json={"answers": answers, "version": version},
                      headers=counter_headers).status_code == 200
    stale = client.get(src)
    assert stale.status_code == 404 and "開き直してください" in stale.json()["message"]
    assert client.get(f"/counter/visits/{case_id}/preview/{version + 1}/1.png").status_code == 200
