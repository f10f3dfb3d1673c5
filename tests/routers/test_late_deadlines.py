"""A deadline passed by the visit date is flagged, with what follows, on the review before signing and on
the routing slip (HTML and PDF) — the same note as the interview's side panel."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.conftest import make_user, page_login

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
HTML = {"Accept": "text/html"}
LATE_TENNYU = "期限（令和8年4月15日、"  # moved in on 2026-04-01: 14 days


def _visit(client: TestClient, headers: dict[str, str], model: dict[str, Any], visit_date: str) -> str:
    answers = copy.deepcopy(model)
    answers["visit_date"] = visit_date  # tests may set it (the server owns it otherwise)
    res = client.post("/api/v1/cases", json=answers, headers=headers)
    assert res.status_code == 201, res.text
    case_id = res.json()["id"]
    assert client.post(f"/api/v1/cases/{case_id}/routing-slip", headers=headers).status_code == 200
    return case_id


def _pdf_text(pdf: bytes) -> str:
    return subprocess.run(["pdftotext", "-enc", "UTF-8", "-", "-"], input=pdf, capture_output=True,
                          check=True).stdout.decode()


def test_a_late_move_in_is_flagged_on_the_review_and_the_slip(client: TestClient, counter_headers: dict[str, str],
                                                              model_case_raw: dict[str, Any], db: Session) -> None:
    assert model_case_raw["move"]["moved_on"] == "2026-04-01"
    case_id = _visit(client, counter_headers, model_case_raw, "2026-04-20")
    apps = {a["id"]: a for a in client.get(f"/api/v1/cases/{case_id}/applications",
                                           headers=counter_headers).json()["applications"]}
    note = apps["jumin_tennyu"]["late_note"]  # what the side panel shows
    assert note.startswith(LATE_TENNYU) and "過料" in note

    make_user(db, "late-clerk", "counter")
    page_login(client, "late-clerk")
    review = client.get(f"/counter/visits/{case_id}/review", headers=HTML)
    assert review.status_code == 200
    assert 'id="late"' in review.text and "期限を過ぎた手続きがあります" in review.text
    assert f"<strong>住民異動届（転入届）</strong>：{note}" in review.text

    slip = client.get(f"/api/v1/cases/{case_id}/routing-slip", headers=counter_headers).json()
    assert {"id": "jumin_tennyu", "title": "住民異動届（転入届）", "note": note} in slip["late"]
    page = client.get(f"/cases/{case_id}/slip", headers=HTML)
    assert page.status_code == 200 and "期限を過ぎた手続きがあります" in page.text and note in page.text

    pdf = client.get(f"/api/v1/cases/{case_id}/routing-slip.pdf", headers=counter_headers)
    assert pdf.status_code == 200
    if os.environ.get("KAKANAI_RENDER_DIR"):  # to look at it: pdftoppm the file
        (Path(os.environ["KAKANAI_RENDER_DIR"]) / "late_slip.pdf").write_bytes(pdf.content)
    text = "".join(_pdf_text(pdf.content).split())  # the note wraps over lines in the box
    assert "期限を過ぎた手続きがあります" in text
    assert "".join(f"住民異動届（転入届）：{note}".split()) in text


def test_a_visit_in_time_shows_no_late_note(client: TestClient, counter_headers: dict[str, str],
                                            model_case_raw: dict[str, Any], db: Session) -> None:
    case_id = _visit(client, counter_headers, model_case_raw, "2026-04-06")
    make_user(db, "ontime-clerk", "counter")
    page_login(client, "ontime-clerk")
    assert 'id="late"' not in client.get(f"/counter/visits/{case_id}/review", headers=HTML).text
    assert client.get(f"/api/v1/cases/{case_id}/routing-slip", headers=counter_headers).json()["late"] == []
    pdf = client.get(f"/api/v1/cases/{case_id}/routing-slip.pdf", headers=counter_headers)
    assert "期限を過ぎた" not in _pdf_text(pdf.content)
