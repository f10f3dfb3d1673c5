"""Applications, pre-filled PDFs and writing saved, through the API, for the model household."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import zlib
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from tests.forms.test_determine import MODEL_EXPECTED

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")


def _png(width: int = 40, height: int = 12) -> bytes:
    """A tiny black-stroke PNG made by hand (no imaging library needed)."""
    raw = b"".join(b"\x00" + bytes([0 if (x + y) % 7 == 0 else 255 for x in range(width)]) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _text(pdf: bytes) -> str:
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", "-", "-"], input=pdf, capture_output=True, check=True)
    return out.stdout.decode("utf-8")


@pytest.fixture
def case_id(client: TestClient, counter_headers: dict[str, str], model_case_raw: dict[str, Any]) -> str:
    res = client.post("/api/v1/cases", json=model_case_raw, headers=counter_headers)
    assert res.status_code == 201, res.text
    return res.json()["id"]


def test_applications_with_reasons(client: TestClient, counter_headers: dict[str, str], case_id: str) -> None:
    body = client.get(f"/api/v1/cases/{case_id}/applications", headers=counter_headers).json()
    apps = {a["id"]: a for a in body["applications"]}
    assert sorted(apps) == sorted(MODEL_EXPECTED)
    school = apps["tennyu_gaku-m3"]
    assert school["member_id"] == "m3" and school["department"] == "gakumu"
    assert school["legal_basis"] and school["reasons"] and all(r["reason"] for r in school["reasons"])
    assert apps["jumin_tennyu"]["deadline"] == "2026-04-15"
    assert apps["jido_teate"]["after"] == ["jumin_tennyu"] or "jumin_tennyu" in apps["jido_teate"]["after"]


def test_bundle_is_filled_with_the_household(client: TestClient, counter_headers: dict[str, str], case_id: str,
                                             model_case_raw: dict[str, Any]) -> None:
    res = client.get(f"/api/v1/cases/{case_id}/bundle.pdf", headers=counter_headers)
    assert res.status_code == 200, res.text
    assert res.headers["content-type"] == "application/pdf"
    text = _text(res.content)
    flat = "".join(text.split())
    for m in model_case_raw["household"]["members"]:
        assert f"{m['family_name']}{m['given_name']}" in flat
        assert f"{m['family_name_kana']}{m['given_name_kana']}" in flat
    for wareki in ("平成2年6月15日", "平成4年11月3日", "平成29年9月20日", "令和5年12月1日"):
        assert wareki in flat
    assert "兵庫県尼崎市南塚口町二丁目4番5号" in flat
    assert "大阪府大阪市北区梅田一丁目2番3号" in flat
    # My Number comb boxes: every member's 12 digits in order on the page.
    for m in model_case_raw["household"]["members"]:
        assert m["my_number"] in flat
    reader = PdfReader(io.BytesIO(res.content))
    assert len(reader.pages) >= len(MODEL_EXPECTED) + 1
    cover = "".join(reader.pages[0].extract_text().split())
    assert "住民異動届" in cover


def test_same_answers_give_the_same_bytes(client: TestClient, counter_headers: dict[str, str], case_id: str) -> None:
    url = f"/api/v1/cases/{case_id}/applications/jumin_tennyu.pdf"
    first = client.get(url, headers=counter_headers)
    second = client.get(url, headers=counter_headers)
    assert first.status_code == 200
    assert first.content == second.content
    assert first.headers["x-definitions-fingerprint"]


def test_signature_is_placed_on_forms(client: TestClient, counter_headers: dict[str, str], case_id: str) -> None:
    url = f"/api/v1/cases/{case_id}/applications/jumin_tennyu.pdf"
    unsigned = client.get(url, headers=counter_headers).content
    res = client.put(f"/api/v1/cases/{case_id}/signature", content=_png(), headers={**counter_headers,
                                                                                     "Content-Type": "image/png"})
    assert res.status_code == 204
    signed = client.get(url, headers=counter_headers).content
    assert b"/Subtype /Image" in signed and b"/Subtype /Image" not in unsigned
    bad = client.put(f"/api/v1/cases/{case_id}/signature", content=b"GIF89a", headers=counter_headers)
    assert bad.status_code == 422


def test_unknown_instance_is_404(client: TestClient, counter_headers: dict[str, str], case_id: str) -> None:
    res = client.get(f"/api/v1/cases/{case_id}/applications/kokuho_shutoku.pdf", headers=counter_headers)
    assert res.status_code == 404
    assert res.json()["message"] == "この案件にはその申請書はありません"


def test_writing_saved_next_to_the_survey(client: TestClient, counter_headers: dict[str, str], case_id: str) -> None:
    body = client.get(f"/api/v1/cases/{case_id}/writing-saved", headers=counter_headers).json()
    assert body["forms"] == len(MODEL_EXPECTED)
    comparison = body["comparison"]
    assert comparison["name"]["written_before"] == 28
    assert comparison["address"]["written_before"] == 9
    assert comparison["name"]["prefilled_now"] == body["survey_headings"]["name"] > 0
    assert comparison["name"]["written_now"] == 0
