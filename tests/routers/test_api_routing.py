"""Routing slip through the staff API: JSON, PDF, the HTML page, the exit check and closing the visit."""

from __future__ import annotations

import io
import shutil
import subprocess
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.forms.loader import DefinitionSet
from app.models import AuditEntry
from app.services import audit, departments
from app.services.definitions import DefinitionRegistry
from tests.conftest import login, make_user, page_login
from tests.routers.test_api_documents import _png

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")


@pytest.fixture
def defs(registry: DefinitionRegistry) -> DefinitionSet:
    return registry.current


@pytest.fixture
def case_id(client: TestClient, counter_headers: dict[str, str], model_case_raw: dict[str, Any]) -> str:
    res = client.post("/api/v1/cases", json=model_case_raw, headers=counter_headers)
    assert res.status_code == 201, res.text
    return res.json()["id"]


def _dept_headers(db: Session, defs: DefinitionSet, department: str) -> dict[str, str]:
    issued = departments.create_token(db, defs=defs, department_id=department, label="test")
    db.commit()
    return {"Authorization": f"Bearer {issued.token}"}


def test_slip_json_before_and_after_building(client: TestClient, counter_headers: dict[str, str], case_id: str,
                                             db: Session) -> None:
    empty = client.get(f"/api/v1/cases/{case_id}/routing-slip", headers=counter_headers)
    assert empty.status_code == 200 and empty.json()["created"] is False and empty.json()["steps"] == []
    built = client.post(f"/api/v1/cases/{case_id}/routing-slip", headers=counter_headers)
    assert built.status_code == 200, built.text
    body = built.json()
    assert body["case_status"] == "routing" and body["created"] is True
    steps = {s["department"]: s for s in body["steps"]}
    shimin, kodomo = steps["shimin"], steps["kodomo"]
    assert shimin["department_name"] == "市民課" and shimin["location"] == "本庁舎1階" and shimin["counters"] == ["1", "2", "3"]
    assert [a["id"] for a in shimin["applications"]] == ["jumin_tennyu", "mynumber_keizoku-m1"]
    assert shimin["applications"][0]["title"] == "住民異動届（転入届）"
    assert kodomo["depends_on"] == ["shimin"] and kodomo["depends_on_names"] == ["市民課"]
    assert kodomo["stage"] == shimin["stage"] + 1 and kodomo["parallel"] is False and kodomo["ready"] is False
    assert kodomo["waiting_for"] == ["shimin"] and kodomo["can_start_now"] is False and kodomo["answers_confirmed"]
    # 保育課 has only an ordering hint (`after`): listed after 市民課, but ready now, beside it.
    hoiku = steps["hoiku"]
    assert hoiku["depends_on"] == [] and hoiku["stage"] == shimin["stage"] and hoiku["position"] > shimin["position"]
    assert hoiku["parallel"] is True and shimin["parallel"] is True and hoiku["can_start_now"] is True
    assert [s["position"] for s in body["steps"]] == sorted(s["position"] for s in body["steps"])
    again = client.get(f"/api/v1/cases/{case_id}/routing-slip", headers=counter_headers).json()
    assert again["steps"] == body["steps"]
    actions = [e.action for e in db.scalars(select(AuditEntry).where(AuditEntry.case_id == case_id))]
    assert actions.count(audit.CASE_READ) >= 2 and audit.CASE_UPDATED in actions


def test_slip_pdf_is_one_page_with_the_case_number(client: TestClient, counter_headers: dict[str, str],
                                                   case_id: str, db: Session) -> None:
    missing = client.get(f"/api/v1/cases/{case_id}/routing-slip.pdf", headers=counter_headers)
    assert missing.status_code == 404 and "回付票" in missing.json()["message"]
    client.post(f"/api/v1/cases/{case_id}/routing-slip", headers=counter_headers)
    first = client.get(f"/api/v1/cases/{case_id}/routing-slip.pdf", headers=counter_headers)
    second = client.get(f"/api/v1/cases/{case_id}/routing-slip.pdf", headers=counter_headers)
    assert first.status_code == 200 and first.headers["content-type"] == "application/pdf"
    assert first.content == second.content
    assert len(PdfReader(io.BytesIO(first.content)).pages) == 1
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", "-", "-"], input=first.content, capture_output=True,
                          check=True).stdout.decode()
    slip = client.get(f"/api/v1/cases/{case_id}/routing-slip", headers=counter_headers).json()
    assert slip["case_number"] in text and "回付票" in text
    assert f"/q/{slip['status_token']}" in text
    fonts = subprocess.run(["pdffonts", "-"], input=first.content, capture_output=True).stdout.decode() \
        if shutil.which("pdffonts") else ""
    if fonts:
        assert "IPAex" in fonts or "Heisei" in fonts
    downloads = db.scalars(select(AuditEntry).where(AuditEntry.case_id == case_id,
                                                    AuditEntry.action == audit.PDF_DOWNLOAD))
    assert len(list(downloads)) == 2


def test_slip_page_is_plain_accessible_html_without_personal_data(client: TestClient, counter_headers: dict[str, str],
                                                                  case_id: str, model_case_raw: dict[str, Any],
                                                                  db: Session) -> None:
    client.post(f"/api/v1/cases/{case_id}/routing-slip", headers=counter_headers)
    make_user(db, "slip-clerk", "counter")
    assert page_login(client, "slip-clerk")
    res = client.get(f"/cases/{case_id}/slip", headers={"Accept": "text/html"})
    assert res.status_code == 200, res.text
    html = res.text
    assert '<html lang="ja">' in html and "<caption>" in html and 'scope="col"' in html
    assert "こども福祉課" in html and "並行可" in html and "退庁前の確認" in html
    assert "<svg" in html  # the QR code to the resident page
    for member in model_case_raw["household"]["members"]:
        assert member["given_name"] not in html and member["my_number"] not in html
    assert model_case_raw["phone"] not in html
    client.cookies.clear()
    assert client.get(f"/cases/{case_id}/slip", follow_redirects=False).status_code in (401, 303)
    # The page is for signed-in browsers: a bearer token alone does not open it.
    assert client.get(f"/cases/{case_id}/slip", headers=counter_headers, follow_redirects=False).status_code in (401, 303)


def test_exit_check_and_close(client: TestClient, counter_headers: dict[str, str], case_id: str, db: Session,
                              defs: DefinitionSet) -> None:
    client.post(f"/api/v1/cases/{case_id}/routing-slip", headers=counter_headers)
    check = client.get(f"/api/v1/cases/{case_id}/exit-check", headers=counter_headers).json()
    assert check["ok"] is False
    kinds = {m["kind"] for m in check["missed"]}
    assert {"open_step", "unsigned", "not_printed"} <= kinds
    refused = client.post(f"/api/v1/cases/{case_id}/close", headers=counter_headers)
    assert refused.status_code == 409
    body = refused.json()
    assert body["error"] == "visit_not_finished" and body["missed"] == check["missed"]
    assert any(m["department_name"] == "こども福祉課" and "児童手当" in m["applications"] for m in body["missed"])

    assert client.put(f"/api/v1/cases/{case_id}/signature", content=_png(),
                      headers={**counter_headers, "Content-Type": "image/png"}).status_code == 204
    assert client.get(f"/api/v1/cases/{case_id}/bundle.pdf", headers=counter_headers).status_code == 200
    slip = client.get(f"/api/v1/cases/{case_id}/routing-slip", headers=counter_headers).json()
    order = sorted(slip["steps"], key=lambda s: s["position"])
    for step in order:
        if step["department"] == "hoiku":
            continue
        headers = _dept_headers(db, defs, step["department"])
        base = f"/api/v1/departments/{step['department']}/steps/{step['id']}"
        assert client.post(f"{base}/claim", headers=headers).status_code == 200
        assert client.post(f"{base}/done", headers=headers).status_code == 200
    check = client.get(f"/api/v1/cases/{case_id}/exit-check", headers=counter_headers).json()
    assert [(m["kind"], m["department"]) for m in check["missed"]] == [("open_step", "hoiku")]
    assert client.post(f"/api/v1/cases/{case_id}/close", headers=counter_headers).status_code == 409

    hoiku = next(s for s in order if s["department"] == "hoiku")
    headers = _dept_headers(db, defs, "hoiku")
    client.post(f"/api/v1/departments/hoiku/steps/{hoiku['id']}/claim", headers=headers)
    client.post(f"/api/v1/departments/hoiku/steps/{hoiku['id']}/done", headers=headers)
    assert client.get(f"/api/v1/cases/{case_id}/exit-check", headers=counter_headers).json() == {
        "case_id": case_id, "case_number": slip["case_number"], "case_status": "routing", "ok": True, "missed": []}
    closed = client.post(f"/api/v1/cases/{case_id}/close", headers=counter_headers)
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed" and closed.json()["missed"] == []
    assert client.post(f"/api/v1/cases/{case_id}/close", headers=counter_headers).status_code == 409
    # A closed visit's steps cannot move any more, and its slip cannot be rebuilt.
    assert client.post(f"/api/v1/cases/{case_id}/routing-slip", headers=counter_headers).status_code == 409


def test_department_staff_cannot_read_a_whole_slip(client: TestClient, counter_headers: dict[str, str], case_id: str,
                                                   db: Session) -> None:
    make_user(db, "kodomo_clerk", "department", "kodomo")
    headers = login(client, "kodomo_clerk")
    for path in ("routing-slip", "routing-slip.pdf", "exit-check"):
        assert client.get(f"/api/v1/cases/{case_id}/{path}", headers=headers).status_code == 403
    assert client.post(f"/api/v1/cases/{case_id}/close", headers=headers).status_code == 403
    assert client.get("/api/v1/cases/nope/routing-slip", headers=counter_headers).status_code == 404


def test_a_case_without_applications_gets_no_slip(client: TestClient, counter_headers: dict[str, str],
                                                  model_case_raw: dict[str, Any]) -> None:
    answers = {**model_case_raw, "life_events": []}
    res = client.post("/api/v1/cases?draft=true", json=answers, headers=counter_headers)
    assert res.status_code == 201, res.text
    built = client.post(f"/api/v1/cases/{res.json()['id']}/routing-slip", headers=counter_headers)
    assert built.status_code == 422 and built.json()["errors"][0]["field"] == "life_events"
