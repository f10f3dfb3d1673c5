"""Life events through the API: external steps, the handbook PDF, copies and the fee total on the slip."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.settings import PROJECT_ROOT
from tests.routers.test_api_documents import _png

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")


def _text(pdf: bytes) -> str:
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", "-", "-"], input=pdf, capture_output=True, check=True)
    return out.stdout.decode("utf-8")


def _create(client: TestClient, headers: dict[str, str], name: str) -> str:
    raw: dict[str, Any] = json.loads((PROJECT_ROOT / "bench" / "households" / f"{name}.json").read_text("utf-8"))
    res = client.post("/api/v1/cases", json=raw, headers=headers)
    assert res.status_code == 201, res.text
    return res.json()["id"]


def test_death_case_lists_city_forms_and_hands_out_a_handbook_with_external_steps(
    client: TestClient, counter_headers: dict[str, str],
) -> None:
    case_id = _create(client, counter_headers, "model_death")
    apps = client.get(f"/api/v1/cases/{case_id}/applications", headers=counter_headers).json()["applications"]
    ids = {a["id"] for a in apps}
    assert "sosaihi" in ids and not any(i.startswith("ext_") for i in ids)
    kaigo = next(a for a in apps if a["id"] == "kaigo_soshitsu")
    assert kaigo["legal_deadline"] == "2025-12-29" and kaigo["deadline"] == "2026-01-05"

    res = client.get(f"/api/v1/cases/{case_id}/handbook.pdf", headers=counter_headers)
    assert res.status_code == 200, res.text
    assert res.headers["content-type"] == "application/pdf"
    text = _text(res.content).replace("\n", "")
    assert "おくやみハンドブック" in text and "大庄" in text
    for words in ("相続放棄", "家庭裁判所", "準確定申告", "税務署", "相続登記", "法務局", "年金事務所", "葬祭費",
                  "令和8年1月5日まで", "令和8年3月16日まで", "令和8年4月15日まで", "令和8年10月15日まで"):
        assert words in text, words

    bundle = client.get(f"/api/v1/cases/{case_id}/bundle.pdf", headers=counter_headers)
    assert bundle.status_code == 200
    assert "相続放棄" not in _text(bundle.content)  # external steps get no form


def test_certificates_show_copies_and_the_fee_total_on_the_slip(
    client: TestClient, counter_headers: dict[str, str],
) -> None:
    case_id = _create(client, counter_headers, "model_certificates")
    apps = {a["id"]: a for a in client.get(f"/api/v1/cases/{case_id}/applications",
                                           headers=counter_headers).json()["applications"]}
    assert apps["juminhyo_seikyu"]["copies"] == 2 and apps["juminhyo_seikyu"]["fee_total"] == 600
    assert sum(a["fee_total"] for a in apps.values()) == 1650
    assert client.put(f"/api/v1/cases/{case_id}/signature", content=_png(),
                      headers={**counter_headers, "Content-Type": "image/png"}).status_code == 204
    built = client.post(f"/api/v1/cases/{case_id}/routing-slip", headers=counter_headers)
    assert built.status_code in (200, 201), built.text
    slip = client.get(f"/api/v1/cases/{case_id}/routing-slip.pdf", headers=counter_headers)
    assert slip.status_code == 200, slip.text
    text = _text(slip.content)
    assert "合計 1,650円" in text and "住民票の写し（2通・交付）" in text


def test_handbook_for_a_visit_without_steps_is_a_clear_error(
    client: TestClient, counter_headers: dict[str, str], model_case_raw: dict[str, Any],
) -> None:
    raw = {**model_case_raw, "life_events": ["certificates"], "certificates": {"purpose": "就職"}}
    res = client.post("/api/v1/cases", json=raw, headers=counter_headers)
    assert res.status_code == 201, res.text
    out = client.get(f"/api/v1/cases/{res.json()['id']}/handbook.pdf", headers=counter_headers)
    assert out.status_code == 422
    assert "案内する手続きがありません" in out.text
